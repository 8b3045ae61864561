#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers: builds the targets in fuzz/ with cargo fuzz (nightly
# toolchain) and runs each for SECONDS (default 60), one after another on one core, starting
# from the seed corpus in fuzz/corpus/<target>/. Fails on a crash, a timeout or a memory
# blow-up (the input is left in fuzz/artifacts/<target>/), and when nightly or cargo-fuzz is
# missing: it never skips. New corpus entries go to a scratch directory, so the committed
# seeds stay small. The random seed is fixed (FUZZ_SEED, default 1) so that a run, CI's
# included, can be replayed; FUZZ_SEED=0 lets libFuzzer pick one.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz.sh: SECONDS must be a positive integer, not '$seconds'" >&2
  exit 2
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(jsonl json_array iof_xml updates route range)
fi

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz.sh: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: cargo-fuzz is missing (cargo install cargo-fuzz)" >&2
  exit 1
fi

# Optimized, with debug assertions and overflow checks (cargo fuzz's default), so an
# arithmetic overflow on outside input is a crash here rather than a silently wrong value.
(cd fuzz && cargo +nightly fuzz build)

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
summary=()
for target in "${targets[@]}"; do
  mkdir -p "$scratch/$target" "fuzz/artifacts/$target"
  log="$scratch/$target.log"
  echo "== $target: ${seconds}s"
  status=0
  (cd fuzz && cargo +nightly fuzz run "$target" "$scratch/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -seed="${FUZZ_SEED:-1}" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
    -print_final_stats=1) >"$log" 2>&1 || status=$?
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)"
  speed="$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)"
  if [ "$status" -ne 0 ]; then
    tail -n 60 "$log" >&2
    echo "fuzz.sh: $target failed (exit $status); the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  summary+=("$target: ${runs:-?} executions, ${speed:-?} exec/s")
done
printf '%s\n' "== no crash" "${summary[@]}"
