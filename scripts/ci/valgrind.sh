#!/usr/bin/env bash
# A short memcheck run of the native transport: scripts/ci/valgrind-drive.js (no agent, connect, send,
# a command and a call, agent killed and restarted, graceful restart, 20 start/stop cycles, stop)
# under valgrind. Node and V8 are not valgrind-clean themselves, so scripts/ci/valgrind.supp hides what
# starts in them; what remains is reported, and the run fails on any error or definite leak whose
# stack passes through the addon. Installs valgrind (Debian) when missing. Log: build/valgrind/.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
out="$root/build/valgrind"
mkdir -p "$out"

if ! command -v valgrind >/dev/null 2>&1; then
  echo "valgrind.sh: installing valgrind"
  export DEBIAN_FRONTEND=noninteractive
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if ! $sudo apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 valgrind >"$out/apt.log" 2>&1; then
    $sudo apt-get update -o DPkg::Lock::Timeout=600 >>"$out/apt.log" 2>&1
    $sudo apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 valgrind >>"$out/apt.log" 2>&1 ||
      { cat "$out/apt.log" >&2; exit 1; }
  fi
fi
if [ ! -f dist/index.js ]; then npm run build >/dev/null; fi
if ! node -e "process.exit(require('./dist/index.js').nativeAvailable() ? 0 : 1)"; then
  echo "valgrind.sh: the native addon is not built; building it (npm run build:native)"
  npm run build:native >"$out/build.log" 2>&1 || { tail -30 "$out/build.log" >&2; exit 1; }
fi

log="$out/memcheck.log"
start=$(date +%s)
set +e
valgrind --tool=memcheck --trace-children=no --error-exitcode=99 \
  --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
  --suppressions="$root/scripts/ci/valgrind.supp" --num-callers=40 --log-file="$log" \
  node --max-old-space-size=256 scripts/ci/valgrind-drive.js
status=$?
set -e
secs=$(( $(date +%s) - start ))

summary="$(grep -E 'ERROR SUMMARY|definitely lost|indirectly lost|suppressed:' "$log" | sed 's/^==[0-9]*== *//')"
# A record is ours when a frame of its stack lies in the addon (iottly_native.node, namespace iottly).
ours="$(awk '/^==[0-9]+== $/ { if (rec ~ /iottly/) n++; rec=""; next } { rec = rec $0 "\n" } END { if (rec ~ /iottly/) n++; print n+0 }' "$log")"
echo "valgrind.sh: memcheck of the native transport took ${secs} s"
echo "$summary" | sed 's/^/  /'
echo "  records involving the addon: $ours"
if [ "$status" -ne 0 ] || [ "$ours" -ne 0 ]; then
  echo "valgrind.sh: not clean (exit $status); see $log" >&2
  exit 1
fi
echo "valgrind.sh: clean"
