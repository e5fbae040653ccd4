#!/usr/bin/env bash
# Build-only check of binding.gyp: node-gyp builds the addon from native/sources.txt (as CMakeLists.txt
# does) in a scratch copy, so the cmake-js build in ./build is left alone; then the result is loaded once.
# Uses the machine's Node headers (npm's nodedir), never a download.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/iottly-gyp.XXXXXX")"
trap 'rm -rf "$work"' EXIT

gyp="${npm_config_node_gyp:-}"
if [ -z "$gyp" ] || [ ! -f "$gyp" ]; then
  gyp="$(dirname "$(command -v node)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
fi
nodedir="${npm_config_nodedir:-$(npm config get nodedir 2>/dev/null || true)}"
if [ -z "$nodedir" ] || [ "$nodedir" = "undefined" ] || [ "$nodedir" = "null" ]; then
  nodedir="$(dirname "$(dirname "$(command -v node)")")"
fi
if [ ! -f "$nodedir/include/node/node_api.h" ]; then
  echo "check-node-gyp: no Node headers under $nodedir/include/node; refusing to download them" >&2
  exit 1
fi

cp -r "$root/native" "$root/binding.gyp" "$root/package.json" "$work/"
ln -s "$root/node_modules" "$work/node_modules"
cd "$work"
node "$gyp" rebuild --nodedir="$nodedir" --jobs=2 >"$work/gyp.log" 2>&1 || { cat "$work/gyp.log" >&2; exit 1; }
node -e "const b = require('./build/Release/iottly_native.node'); if (typeof b.Transport !== 'function') process.exit(1)"
echo "check-node-gyp: binding.gyp builds and loads (node-gyp $(node "$gyp" --version), headers from $nodedir)"
