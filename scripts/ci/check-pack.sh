#!/usr/bin/env bash
# `npm run check:pack`: the published tarball gives the native transport on a machine without a
# compiler, and builds it on demand where no prebuild serves. Builds every prebuild that
# scripts/prebuild.js targets, packs the package and checks that the tarball carries each of them,
# then installs the tarball into a scratch project with every compiler and build tool hidden from
# PATH and checks that the install built nothing, brought no build tool (cmake-js, node-addon-api,
# node-api-headers), that the native transport is the one in use (CommonJS and ESM) and delivers a
# message to the simulator, and that `npx iottly-sdk-bench` runs there. Last, with the prebuild
# removed and the toolchain back on PATH, `npm rebuild iottly-sdk` (the command TransportUnavailable
# names) must build the addon, fetching the build tools for that build only. Slow-ish (real npm installs, one native build): run from CI.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
work="$(mktemp -d "${TMPDIR:-/tmp}/iottly-pack.XXXXXX")"
trap 'rm -rf "$work"' EXIT

say() { echo "check-pack: $*"; }
fail() {
  echo "check-pack: FAIL: $*" >&2
  exit 1
}

node scripts/prebuild.js
mapfile -t expected < <(node -e "const p = require('./scripts/prebuild.js'); for (const n of Object.keys(p.TARGETS)) console.log(p.prebuildPath(n))")
[ "${#expected[@]}" -ge 3 ] || fail "scripts/prebuild.js lists ${#expected[@]} targets"

say "npm pack"
tarball="$(npm pack --silent --pack-destination "$work" | tail -n 1)"
tarball="$work/$tarball"
[ -f "$tarball" ] || fail "npm pack made no tarball"
listing="$(tar tzf "$tarball")"
for want in "${expected[@]}"; do
  grep -qx "package/$want" <<<"$listing" || fail "the tarball has no $want"
done
shipped="$(grep -c '^package/prebuilds/.*\.node$' <<<"$listing" || true)"
[ "$shipped" -eq "${#expected[@]}" ] || fail "the tarball has $shipped prebuilds, scripts/prebuild.js targets ${#expected[@]}: $(grep '^package/prebuilds/' <<<"$listing" | tr '\n' ' ')"
if grep -q '^package/build/' <<<"$listing"; then fail "the tarball carries a local build (package/build/)"; fi
say "tarball $(du -k "$tarball" | cut -f1) KiB; prebuilds: $(grep -c '^package/prebuilds/.*\.node$' <<<"$listing")"

# A PATH with only what npm and its install scripts need: no cc, c++, g++, clang++, make, cmake.
bin="$work/bin"
mkdir -p "$bin"
for tool in node npm npx sh bash env cat cp mv rm mkdir ls ln chmod tar gzip git uname dirname basename sed grep; do
  p="$(command -v "$tool" || true)"
  [ -n "$p" ] && ln -sf "$p" "$bin/$tool"
done
for tool in cc c++ gcc g++ clang clang++ make cmake; do
  if PATH="$bin" command -v "$tool" >/dev/null 2>&1; then fail "$tool is still reachable on the hidden PATH"; fi
done

app="$work/app"
mkdir -p "$app"
echo '{ "name": "pack-check", "version": "1.0.0", "private": true }' >"$app/package.json"
say "npm install of the tarball with no compiler on PATH"
(
  cd "$app"
  env -u CXX -u CC -u IOTTLY_SDK_NATIVE_PATH -u IOTTLY_SDK_TRANSPORT -u IOTTLY_SDK_SKIP_NATIVE PATH="$bin" \
    npm install --no-audit --no-fund --foreground-scripts "$tarball" >"$work/install.log" 2>&1
) || {
  cat "$work/install.log" >&2
  fail "npm install failed"
}
# The install hook must have found the prebuild and built nothing.
grep -q 'native transport from the prebuild prebuilds/linux-x64/node.napi.glibc.node: nothing to build' "$work/install.log" || {
  cat "$work/install.log" >&2
  fail "the install script did not report the linux-x64 prebuild"
}
pkg="$app/node_modules/iottly-sdk"
[ ! -e "$pkg/build" ] || fail "the install built something into $pkg/build"
[ -f "$pkg/prebuilds/linux-x64/node.napi.glibc.node" ] || fail "the installed package has no linux-x64 prebuild"
installed="$(cd "$app" && PATH="$bin" npm ls --all --parseable | tail -n +2)"
for tool in cmake-js node-addon-api node-api-headers; do
  if grep -q "/node_modules/$tool\$" <<<"$installed"; then fail "the install brought the build tool $tool"; fi
done
say "installed: $(wc -l <<<"$installed") packages, $(du -sk "$app/node_modules" | cut -f1) KiB in node_modules"

cat >"$app/check.cjs" <<'EOF'
const assert = require('node:assert');
const { IottlySDK, nativeAvailable, nativeLoadError, defaultTransport } = require('iottly-sdk');
const { AgentSimulator } = require('iottly-sdk/sim');
assert.ok(nativeAvailable(), `the addon does not load: ${nativeLoadError()?.message}`);
assert.strictEqual(defaultTransport(), 'native');
(async () => {
  const socketPath = require('node:path').join(process.argv[2], 'agent.sock');
  const sim = new AgentSimulator({ socketPath });
  await sim.listen();
  const got = new Promise((resolve) => sim.on('telemetry', resolve));
  const sdk = new IottlySDK('pack-check', { socketPath });
  assert.strictEqual(sdk.transport, 'native');
  sdk.start();
  sdk.send({ from: 'the prebuild' });
  const timer = setTimeout(() => {
    console.error('no telemetry within 10 s');
    process.exit(1);
  }, 10_000);
  const t = await got;
  clearTimeout(timer);
  assert.deepStrictEqual(t.payload, { from: 'the prebuild' });
  await sdk.stop();
  await sim.close();
  console.log(`cjs: native transport from ${process.argv[3] ?? 'the prebuild'}, telemetry delivered`);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
EOF
cat >"$app/check.mjs" <<'EOF'
import { IottlySDK, defaultTransport } from 'iottly-sdk';
if (defaultTransport() !== 'native') throw new Error(`ESM import picks ${defaultTransport()}`);
if (new IottlySDK('pack-check-esm', { socketPath: '/nonexistent/agent.sock' }).transport !== 'native') throw new Error('ESM: not native');
console.log('esm: native transport');
EOF
(
  cd "$app"
  export PATH="$bin"
  env -u IOTTLY_SDK_NATIVE_PATH -u IOTTLY_SDK_TRANSPORT node check.cjs "$work"
  env -u IOTTLY_SDK_NATIVE_PATH -u IOTTLY_SDK_TRANSPORT node check.mjs
) || fail "the installed package does not give the native transport"

# The bench command, as a user runs it in their project: its dist and bin are in the tarball, it
# needs no dev dependency, its senders are forked processes, and it reports the prebuild.
say "npx iottly-sdk-bench (a tiny run)"
(
  cd "$app"
  export PATH="$bin"
  env -u IOTTLY_SDK_NATIVE_PATH -u IOTTLY_SDK_TRANSPORT \
    npx --no-install iottly-sdk-bench --rate 100 --seconds 1 --burst 1000 --json >"$work/bench.json" 2>"$work/bench.log"
) || {
  cat "$work/bench.log" >&2
  fail "npx iottly-sdk-bench failed in the installed project"
}
node -e '
  const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
  const problems = [];
  if (r.transports.native.origin !== "prebuild") problems.push(`the native transport came from ${r.transports.native.origin} (${r.transports.native.error ?? r.transports.native.file})`);
  if (r.run.senders.join() !== "sdk-js,sdk-native,naive,stringify") problems.push(`senders ${r.run.senders}`);
  for (const f of r.failures) problems.push(`${f.sender} failed: ${f.message}`);
  for (const p of r.paced) if (p.sender !== "naive" && p.median.delivered !== p.median.sent) problems.push(`${p.label}: ${p.median.delivered}/${p.median.sent} delivered`);
  for (const b of r.burst) if (b.sender !== "naive" && b.median.delivered !== b.median.count) problems.push(`${b.label} burst: ${b.median.delivered}/${b.median.count} delivered`);
  if (problems.length) {
    console.error(problems.join("\n"));
    process.exit(1);
  }
' "$work/bench.json" || fail "npx iottly-sdk-bench ran, but its report is wrong ($work/bench.json)"
say "npx iottly-sdk-bench: exit 0, every sender delivered everything, native from $(node -p 'require(process.argv[1]).transports.native.file' "$work/bench.json")"
say "no prebuild for this machine: npm rebuild iottly-sdk, with the toolchain on PATH"
rm -rf "$pkg/prebuilds"
(
  cd "$app"
  env -u IOTTLY_SDK_NATIVE_PATH -u IOTTLY_SDK_TRANSPORT -u IOTTLY_SDK_SKIP_NATIVE npm rebuild iottly-sdk --foreground-scripts >"$work/rebuild.log" 2>&1
) || {
  cat "$work/rebuild.log" >&2
  fail "npm rebuild iottly-sdk failed"
}
grep -q 'native transport built with cmake-js (no prebuild for linux-x64)' "$work/rebuild.log" || {
  cat "$work/rebuild.log" "$pkg/build/native-build.log" >&2 || true
  fail "npm rebuild iottly-sdk did not build the addon"
}
installed="$(cd "$app" && npm ls --all --parseable | tail -n +2)"
for tool in cmake-js node-addon-api node-api-headers; do
  if grep -q "/node_modules/$tool\$" <<<"$installed"; then fail "the build left $tool in the project"; fi
done
(cd "$app" && env -u IOTTLY_SDK_NATIVE_PATH -u IOTTLY_SDK_TRANSPORT node check.cjs "$work" 'the addon npm rebuild built') || fail "the addon built by npm rebuild does not serve"
say "ok: the tarball carries ${#expected[@]} prebuilds, installs without a compiler and runs on the native transport, and npm rebuild builds where no prebuild serves"
