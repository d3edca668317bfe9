#!/usr/bin/env bash
# Runs each cargo-fuzz target of fuzz/ for the given seconds (default 60), one after another,
# starting from its seeds (fuzz/seeds/<target>; run_module also from tests/adversarial), and
# prints the executions each target ran. Crashes land in fuzz/artifacts/<target>/.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Only the stable toolchain is needed, and it must
# be stable (or whichever has the wasm32 target): RUSTC_BOOTSTRAP=1 lets it take the -Z flags
# cargo-fuzz passes (sanitizers, coverage), and the built-in policies the engine embeds are built
# for wasm32 by a nested cargo of the same toolchain, so `cargo +nightly fuzz` fails without
# nightly's wasm32 target.
#
# Targets are built with debug assertions (overflow checks) on, as the seeds run in tests/. The
# environment may set FUZZ_SANITIZER (address, the default, or none: AddressSanitizer over
# wasmtime and cranelift builds for a long time and halves the executions) and FUZZ_TARGET_DIR
# (default fuzz/target).
#
#   scripts/fuzz.sh            # every target, 60 s each
#   scripts/fuzz.sh 300        # every target, 5 minutes each
#   scripts/fuzz.sh 30 run_smith decode_response
#   FUZZ_SANITIZER=none scripts/fuzz.sh 300 parse_trace parse_cases compile_bounds
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
flags=(-O -a -s "${FUZZ_SANITIZER:-address}")
[ -n "${FUZZ_TARGET_DIR:-}" ] && flags+=(--target-dir "$FUZZ_TARGET_DIR")

cargo fuzz build "${flags[@]}"

for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    seeds=("seeds/$target")
    [ -d "seeds/$target" ] || seeds=()
    [ "$target" = run_module ] && seeds+=("../tests/adversarial")
    log="$(mktemp)"
    # -rss_limit_mb: a leak shows as an out-of-memory crash. -timeout: one input may not hang.
    status=0
    cargo fuzz run "${flags[@]}" "$target" "corpus/$target" "${seeds[@]}" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    # `|| true`: a target that crashes on a seed prints none of these, and under `pipefail` a
    # grep that finds nothing would end the script before it reports the crash.
    execs="$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)"
    rate="$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}' || true)"
    cov="$(grep -E '#[0-9]+.*(INITED|DONE|pulse|NEW|REDUCE).*cov:' "$log" | tail -1 | sed -E 's/.*cov: ([0-9]+).*/\1/' || true)"
    if [ "$status" -eq 0 ]; then
        echo "$target: ${execs:-?} executions in ${seconds}s (${rate:-?}/s), coverage ${cov:-?}, no crash"
    else
        echo "$target: CRASH after ${execs:-?} executions (exit $status); log below, input in fuzz/artifacts/$target/"
        grep -E -A30 'panicked|ERROR: libFuzzer|ERROR: AddressSanitizer|==ERROR' "$log" | head -60 || true
    fi
    rm -f "$log"
done
