#!/usr/bin/env bash
# Fuzzes the native frame parser (native/line_splitter) and outbound queue (native/outbound_queue)
# with libFuzzer, under AddressSanitizer and UndefinedBehaviorSanitizer, using Debian's clang
# (installed here when missing).
#
#   npm run fuzz                      # CI size: 30 s per target
#   npm run fuzz -- --seconds 3600    # on demand: an hour per target (FUZZ_SECONDS works too)
#   npm run fuzz -- --merge           # afterwards, fold new coverage into fuzz/corpus/ (minimised)
#
# Every file in fuzz/regressions/<target>/ (inputs that once crashed) is replayed first; a crash
# found now is saved under build/fuzz/crashes/ and the run fails: copy the file into
# fuzz/regressions/<target>/ once fixed, so it is replayed forever after.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

seconds="${FUZZ_SECONDS:-30}"
merge=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --merge) merge=1; shift ;;
    *) echo "fuzz.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
# A target per source in native/sources.txt (the addon's one source list) that has a harness
# fuzz/<name>_fuzz.cc; a harness whose source is not listed there is an error, not a silent skip.
declare -A source_of=()
targets=()
while IFS= read -r src; do
  t="$(basename "$src" .cc)"
  if [ -f "fuzz/${t}_fuzz.cc" ]; then
    targets+=("$t")
    source_of[$t]="$src"
  fi
done < <(grep -E '^[^#[:space:]]' native/sources.txt)
for harness in fuzz/*_fuzz.cc; do
  t="$(basename "$harness" _fuzz.cc)"
  if [ -z "${source_of[$t]:-}" ]; then
    echo "fuzz.sh: $harness has no source native/$t.cc in native/sources.txt" >&2
    exit 2
  fi
done
out="$root/build/fuzz"
mkdir -p "$out/crashes"

can_build() {
  command -v clang++ >/dev/null 2>&1 || return 1
  echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' >"$out/probe.cc"
  clang++ -fsanitize=fuzzer "$out/probe.cc" -o "$out/probe" >/dev/null 2>&1
}

if ! can_build; then
  echo "fuzz.sh: installing clang and libFuzzer (Debian packages clang, libclang-rt-dev)"
  export DEBIAN_FRONTEND=noninteractive
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if ! $sudo apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 clang libclang-rt-dev >"$out/apt.log" 2>&1; then
    $sudo apt-get update -o DPkg::Lock::Timeout=600 >>"$out/apt.log" 2>&1
    $sudo apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 clang libclang-rt-dev >>"$out/apt.log" 2>&1 ||
      { cat "$out/apt.log" >&2; exit 1; }
  fi
  can_build || { echo "fuzz.sh: clang cannot build a libFuzzer target even after installing" >&2; exit 1; }
fi

flags=(-std=c++17 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Inative)
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
summary="$out/summary.txt"
: >"$summary"
for t in "${targets[@]}"; do
  bin="$out/$t"
  clang++ "${flags[@]}" "fuzz/${t}_fuzz.cc" "${source_of[$t]}" -o "$bin"
  if compgen -G "fuzz/regressions/$t/*" >/dev/null; then
    "$bin" fuzz/regressions/"$t"/* >"$out/$t-regressions.log" 2>&1 || {
      echo "fuzz.sh: $t fails on a saved regression input (see $out/$t-regressions.log)" >&2
      tail -30 "$out/$t-regressions.log" >&2
      status=1
      continue
    }
  fi
  # Work on a copy of the committed corpus, so a run never litters the repository.
  work="$out/corpus/$t"
  mkdir -p "$work"
  cp -n fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
  log="$out/$t.log"
  if "$bin" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$out/crashes/$t-" "$work" >"$log" 2>&1; then
    result="ok"
  else
    result="CRASH"
    status=1
  fi
  runs="$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo '?')"
  cov="$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | grep -Eo '[0-9]+' || echo '?')"
  corpus="$(find "$work" -type f | wc -l)"
  line="$t: $result, ${seconds} s, $runs executions, coverage $cov edges, corpus $corpus inputs"
  echo "$line" | tee -a "$summary"
  if [ "$result" != ok ]; then
    grep -E 'ERROR|_fuzz:|SUMMARY|Test unit written' "$log" | head -20 >&2
  fi
  if [ "$merge" -eq 1 ] && [ "$result" = ok ]; then
    mkdir -p "fuzz/corpus/$t"
    "$bin" -merge=1 "fuzz/corpus/$t" "$work" >"$out/$t-merge.log" 2>&1
  fi
done
exit "$status"
