#!/usr/bin/env bash
# Times a 30-day trace at 1-minute steps (43,200 decisions) through the predictive policy (and the
# HPA for a ratio), 5-minute ready time, peak at ~20 pods. Prints the median of RUNS runs (default 3).
# Usage: scripts/bench-backtest.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
cargo build --release -q -p leadtime-cli
mkdir -p target/bench
trace=target/bench/30d-1m.csv
# A daily and weekly wave with noise and bursts, one point a minute for 30 days.
awk 'BEGIN { srand(7); print "ts,value";
  for (i = 0; i < 43200; i++) {
    day = sin(2 * 3.14159265 * (i % 1440) / 1440); week = ((int(i / 1440) % 7) >= 5) ? 0.6 : 1.0;
    burst = (i % 997 < 20) ? 300 : 0;
    printf "%d,%.3f\n", 1700000000 + 60 * i, (1000 + 700 * day) * week + burst + 80 * rand() } }' > "$trace"
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for policy in predictive hpa; do
  times=()
  for _ in $(seq "$runs"); do
    start=$(date +%s.%N)
    ./target/release/leadtime backtest --policy "$policy" --trace "$trace" --ready-time 5m \
      --peak-pods 20 --json > target/bench/$policy.json
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc -l)")
  done
  m=$(printf '%s\n' "${times[@]}" | median)
  steps=$(grep -o '"steps":[0-9]*' target/bench/$policy.json | cut -d: -f2)
  printf '%-12s %s decisions: median %.2f s over %s runs (%s)\n' "$policy" "$steps" "$m" "$runs" "${times[*]}"
done
