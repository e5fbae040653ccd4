#!/usr/bin/env bash
# `npm run check:types`: the published types work for every kind of consumer. Packs the tarball and
#  1. runs @arethetypeswrong/cli on it (every entry point under node10, node16 from CJS and from ESM,
#     and bundler resolution), failing on any problem it reports;
#  2. type-checks a small consumer against the unpacked tarball as CommonJS (`module: commonjs`, so
#     node10 resolution), as node16 `.cts` and `.mts` files, and with `moduleResolution: bundler`:
#     the three entry points resolve, and command params are typed by subscribe's generic, not `any`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
work="$(mktemp -d "${TMPDIR:-/tmp}/iottly-types.XXXXXX")"
trap 'rm -rf "$work"' EXIT
say() { echo "check-types: $*"; }

tarball="$(npm pack --silent --pack-destination "$work" | tail -n 1)"
tarball="$work/$tarball"
[ -f "$tarball" ] || {
  echo "check-types: npm pack made no tarball" >&2
  exit 1
}

say "attw $(basename "$tarball")"
node_modules/.bin/attw --no-color --profile strict "$tarball"

app="$work/app"
mkdir -p "$app/node_modules/iottly-sdk"
tar xzf "$tarball" -C "$app/node_modules/iottly-sdk" --strip-components 1
ln -s "$root/node_modules/@types" "$app/node_modules/@types"
ln -s "$root/node_modules/piscina" "$app/node_modules/piscina"
echo '{ "name": "types-check", "version": "1.0.0", "private": true }' >"$app/package.json"

# One body for every kind of consumer; only the imports differ.
imports="import { IottlySDK } from 'iottly-sdk';
import { IottlySDK as JsSDK } from 'iottly-sdk/js';
import { AgentSimulator } from 'iottly-sdk/sim';"
body='
const sdk = new IottlySDK("types-check", { socketPath: "/tmp/x.sock" });
let threshold = 0;
sdk.subscribe<{ value: number }>("set_threshold", ({ value }) => {
  threshold = value;
});
sdk.subscribe("typed_by_annotation", (params: { value: number }) => {
  threshold = params.value;
});
// @ts-expect-error params are unknown, not any, unless subscribe is told their type
sdk.subscribe("untyped", (params) => params.value);
const sim: AgentSimulator = new AgentSimulator({ socketPath: "/tmp/x.sock" });
const js: JsSDK = new JsSDK("types-check");
const kind: "js" | "native" = js.transport;
void [sim, kind, threshold];
'
printf '%s\n%s' "$imports" "$body" >"$app/consumer.ts"
cp "$app/consumer.ts" "$app/consumer.cts"
printf '%s\n%s\n%s' "$imports" "import sdkDefault from 'iottly-sdk';" "$body" >"$app/consumer.mts"
echo 'const fromDefault: typeof IottlySDK = sdkDefault.IottlySDK; void fromDefault;' >>"$app/consumer.mts"

tsc="$root/node_modules/.bin/tsc"
common=(--noEmit --strict --skipLibCheck --types node --target es2022)
say "tsc: module commonjs (node10 resolution)"
(cd "$app" && "$tsc" "${common[@]}" --module commonjs consumer.ts)
say "tsc: module node16, .cts and .mts"
(cd "$app" && "$tsc" "${common[@]}" --module node16 consumer.cts consumer.mts)
say "tsc: moduleResolution bundler"
(cd "$app" && "$tsc" "${common[@]}" --module esnext --moduleResolution bundler consumer.ts)
say "ok: attw found no problem; the types resolve and check for every kind of consumer"
