#!/usr/bin/env bash
# `npm run test:arm [-- arm64 | arm ...]`: cross-compiles the addon for aarch64 and armhf (the
# prebuilds that ship) and runs the tests on both transports under qemu user-mode emulation, with
# Node for that CPU from the npm registry. Everything it needs is installed on first use
# (scripts/arm-setup.sh); nothing has to be on the machine but Node, npm and apt.
#
# The whole suite takes far too long emulated, so by default a subset runs that covers every row of
# the protocol (hello, goodbye, telemetry and channels, call, error frames, sdkinit, agentstatus,
# connectionstatus, commands, skipped frames) plus the buffering and reconnect rules and the native
# transport's own tests. IOTTLY_ARM_TESTS="test/" (or any list of files) runs something else.
# After the tests, a short iottly-sdk-bench run on each arch checks the shipped bench command.
# Deadlines scale with IOTTLY_TEST_SLOWDOWN (default 10 here).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(arm64 arm)
default_tests=(
  test/handshake.test.mjs     # hello first, sdkinit, 'started' / handshake timeout, 'stopped', version per connection
  test/send.test.mjs          # telemetry frames, channels, send() checks
  test/signals.test.mjs       # agentstatus, connectionstatus, unknown signals ignored
  test/commands.test.mjs      # commands to callbacks, callback errors as error frames
  test/call-agent.test.mjs    # call frames, InvalidAgentVersion, DisconnectedSDK
  test/stop.test.mjs          # flush on stop, goodbye
  test/buffering.test.mjs     # maxBufferedMsgs while away, order on reconnect
  test/reconnect.test.mjs     # cut frames re-sent whole, kill/restart under a stream
  test/hostile-agent.test.mjs # invalid JSON / UTF-8, non-objects, oversize frames skipped
  test/native.test.mjs        # the native transport's own tests
)
# shellcheck disable=SC2206 # word splitting of the override is intended
tests=(${IOTTLY_ARM_TESTS:-${default_tests[*]}})

packages=(qemu-user-static cmake)
for arch in "${arches[@]}"; do
  case "$arch" in
    arm64) packages+=(g++-aarch64-linux-gnu) ;;
    arm) packages+=(g++-arm-linux-gnueabihf) ;;
    *) echo "test-arm: unknown arch '$arch' (arm64 | arm)" >&2; exit 2 ;;
  esac
done
bash scripts/arm-setup.sh apt "${packages[@]}"

[ -f dist/index.js ] || npm run build
targets=()
for arch in "${arches[@]}"; do targets+=("linux-$arch"); done
node scripts/prebuild.js "${targets[@]}"

# What the tests' environment must not carry over from the caller's.
unset IOTTLY_SDK_NATIVE_PATH IOTTLY_SDK_TRANSPORT
export IOTTLY_TEST_SLOWDOWN="${IOTTLY_TEST_SLOWDOWN:-10}"
export IOTTLY_REQUIRE_NATIVE=1

# Every arch runs even when an earlier one failed: a failure on one CPU only is worth knowing as such.
failed=()
for arch in "${arches[@]}"; do
  node_arm="$(bash scripts/arm-setup.sh node "$arch")"
  echo "== $arch: $("$node_arm" -p 'process.version + " " + process.arch') under $(basename "$(sed -n 's/^exec \([^ ]*\) .*/\1/p' "$node_arm")")"
  # The emulated Node must load the prebuild (build/ holds the host's addon, which it cannot load).
  "$node_arm" -e '
    const sdk = require("./dist/index.js");
    const { addonCandidates } = require("./dist/transport/addon.js");
    if (process.arch !== process.argv[1]) throw new Error(`emulated Node reports ${process.arch}`);
    if (!sdk.nativeAvailable()) throw new Error(`the prebuild does not load: ${sdk.nativeLoadError()?.message}`);
    const used = addonCandidates().find((f) => require.cache[f]);
    if (!used || !used.includes("/prebuilds/")) throw new Error(`native transport loaded from ${used}, not the prebuild`);
    console.log(`native transport from ${require("node:path").relative(process.cwd(), used)}`);
  ' "$arch"
  started=$SECONDS
  if "$node_arm" --test --test-concurrency=1 "${tests[@]}"; then
    echo "== $arch: passed in $((SECONDS - started)) s"
  else
    echo "== $arch: FAILED after $((SECONDS - started)) s"
    failed+=("$arch")
  fi
  # iottly-sdk-bench as a user on a board runs it: a tiny run whose senders (forked through the
  # wrapper) are emulated too; the native transport must come from the prebuild and lose nothing.
  started=$SECONDS
  bench_json="$(mktemp "${TMPDIR:-/tmp}/iottly-arm-bench.XXXXXX")"
  if "$node_arm" bin/iottly-sdk-bench.js --rate 100 --seconds 1 --burst 1000 --json >"$bench_json" &&
    node -e '
      const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
      const problems = [];
      if (r.board.arch !== process.argv[2]) problems.push(`arch ${r.board.arch}`);
      if (r.transports.native.origin !== "prebuild") problems.push(`native from ${r.transports.native.origin}: ${r.transports.native.error ?? r.transports.native.file}`);
      for (const f of r.failures) problems.push(`${f.sender} failed: ${f.message}`);
      for (const p of r.paced) if (p.sender.startsWith("sdk-") && p.median.delivered !== p.median.sent) problems.push(`${p.label}: ${p.median.delivered}/${p.median.sent} delivered`);
      for (const b of r.burst) if (b.sender.startsWith("sdk-") && b.median.delivered !== b.median.count) problems.push(`${b.label} burst: ${b.median.delivered}/${b.median.count} delivered`);
      if (!r.run.senders.includes("sdk-native")) problems.push("no native sender");
      if (problems.length) { console.error(problems.join("\n")); process.exit(1); }
      const rate = (s) => Math.round(r.burst.find((b) => b.sender === s).median.deliveredPerSec);
      console.log(`burst of 1000 delivered: js ${rate("sdk-js")} msg/s, native ${rate("sdk-native")} msg/s, naive ${rate("naive")} msg/s (emulated)`);
    ' "$bench_json" "$arch"; then
    echo "== $arch: iottly-sdk-bench smoke run passed in $((SECONDS - started)) s"
  else
    echo "== $arch: iottly-sdk-bench smoke run FAILED after $((SECONDS - started)) s"
    failed+=("$arch (iottly-sdk-bench)")
  fi
  rm -f "$bench_json"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "test-arm: failed on ${failed[*]}" >&2
  exit 1
fi
