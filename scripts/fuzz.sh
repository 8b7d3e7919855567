#!/usr/bin/env bash
# Runs every fuzz harness of BUILD (default build-fuzz, made by `make fuzz`) for SECONDS each
# (default 60), one after another, and prints a line per harness: executions, corpus size, and
# whether it crashed. The working corpus grows in BUILD/corpus/<harness>/ from the seeds in
# fuzz/seeds/<harness>/ (the pipeline harnesses also from pipelines/ and tests/errors/cases/).
# A crash (sanitizer report, uncaught non-Loom exception, signal, timeout, allocation above
# 2 GiB) leaves its input in BUILD/crashes/ and makes the script exit 1 after the others ran.
#
#   scripts/fuzz.sh [BUILD] [SECONDS] [HARNESS...]
#   FUZZ_RUNS=10000000 scripts/fuzz.sh ...   stops each harness after that many executions too
#   FUZZ_SEED=1 scripts/fuzz.sh ...           libFuzzer's random seed (CI fixes it, so that a CI
#                                             run can be repeated; long runs here leave it random)
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-fuzz}
seconds=${2:-60}
shift 2 2>/dev/null || shift $#
harnesses=("$@")
if [ ${#harnesses[@]} -eq 0 ]; then
  for h in "$build"/bin/fuzz_*; do harnesses+=("$(basename "$h")"); done
fi
mkdir -p "$build/crashes" "$build/logs"
failed=0
printf '%-18s %14s %10s %8s  %s\n' harness executions exec/s corpus result
for h in "${harnesses[@]}"; do
  corpus="$build/corpus/$h"
  mkdir -p "$corpus"
  seeds=("fuzz/seeds/$h")
  [ -d "fuzz/seeds/$h" ] || seeds=()
  case $h in
    fuzz_yaml | fuzz_pipeline) seeds+=(pipelines tests/errors/cases) ;;
  esac
  log="$build/logs/$h.log"
  # -timeout: one input taking longer than 20 s is a hang; -rss_limit_mb / -malloc_limit_mb:
  # a reader asking for more than 2 GiB because a header said so is a defect.
  ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$build/bin/$h" -max_total_time="$seconds" ${FUZZ_RUNS:+-runs=$FUZZ_RUNS} ${FUZZ_SEED:+-seed=$FUZZ_SEED} -timeout=20 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$build/crashes/$h-" "$corpus" "${seeds[@]}" >"$log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  size=$(find "$corpus" -type f | wc -l)
  if [ $rc -eq 0 ]; then
    result=ok
  elif [ $rc -eq 72 ]; then
    # libFuzzer's exit code when interrupted (Ctrl-C, SIGTERM): the harness stopped, not a crash.
    result="interrupted"
    failed=1
  else
    result="CRASH (exit $rc): $(grep -m1 -E 'ERROR|runtime error|deadly|terminate|Timeout|out-of-memory' "$log")"
    failed=1
  fi
  printf '%-18s %14s %10s %8s  %s\n' "$h" "${runs:-?}" "${rate:-?}" "$size" "$result"
done
if [ $failed -ne 0 ]; then
  echo "fuzz: crash inputs in $build/crashes/, logs in $build/logs/" >&2
fi
exit $failed
