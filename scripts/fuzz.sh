#!/usr/bin/env bash
# Runs each cargo-fuzz target of fuzz/ for the given seconds (default 60), one after another,
# starting from its seeds (fuzz/seeds/<target>; run_module also from tests/adversarial), and
# prints the executions each target ran. Crashes land in fuzz/artifacts/<target>/.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Only a stable toolchain is needed:
# RUSTC_BOOTSTRAP=1 lets it take the -Z flags cargo-fuzz passes (AddressSanitizer, coverage).
#
#   scripts/fuzz.sh            # every target, 60 s each
#   scripts/fuzz.sh 300        # every target, 5 minutes each
#   scripts/fuzz.sh 30 run_smith decode_response
set -euo pipefail

seconds="${1:-60}"
shift || true
cd "$(dirname "$0")/../fuzz"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(decode_request decode_response run_module run_smith compile_bounds parse_trace parse_cases)
fi
command -v cargo-fuzz >/dev/null || {
    echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2
    exit 1
}
export RUSTC_BOOTSTRAP=1

cargo fuzz build -O

for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    seeds=("seeds/$target")
    [ -d "seeds/$target" ] || seeds=()
    [ "$target" = run_module ] && seeds+=("../tests/adversarial")
    log="$(mktemp)"
    # -rss_limit_mb: a leak shows as an out-of-memory crash. -timeout: one input may not hang.
    status=0
    cargo fuzz run -O "$target" "corpus/$target" "${seeds[@]}" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    execs="$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')"
    rate="$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}')"
    cov="$(grep -E '#[0-9]+.*(DONE|pulse|NEW|REDUCE).*cov:' "$log" | tail -1 | sed -E 's/.*cov: ([0-9]+).*/\1/')"
    if [ "$status" -eq 0 ]; then
        echo "$target: ${execs:-?} executions in ${seconds}s (${rate:-?}/s), coverage ${cov:-?}, no crash"
    else
        echo "$target: CRASH after ${execs:-?} executions (exit $status); log below, input in fuzz/artifacts/$target/"
        grep -E -A30 'panicked|ERROR: libFuzzer|ERROR: AddressSanitizer|==ERROR' "$log" | head -60
    fi
    rm -f "$log"
done
