#!/usr/bin/env bash
# Builds the addon with -fsanitize=address,undefined into build-asan/ and runs the test suite against
# that build. Node itself is not sanitised, so the ASan runtime is preloaded and leak checking (which
# would report Node's own allocations at exit) is off; UBSan findings abort the run.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
node node_modules/cmake-js/bin/cmake-js compile --out build-asan --CDIOTTLY_SANITIZE=ON >build-asan.log 2>&1 || {
  cat build-asan.log >&2
  exit 1
}
addon="$root/build-asan/Release/iottly_native.node"
libasan="$(${CXX:-g++} -print-file-name=libasan.so)"
export LD_PRELOAD="$libasan"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export IOTTLY_SDK_NATIVE_PATH="$addon"
export IOTTLY_REQUIRE_NATIVE=1
# The same files as `npm test` (fixtures under test/ are not tests).
if [ "$#" -eq 0 ]; then set -- test/*.test.mjs; fi
exec node --test --test-concurrency=1 "$@"
