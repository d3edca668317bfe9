#!/usr/bin/env bash
# Load test of the KEDA scaler (not in CI): a real Prometheus holding a week of one-minute
# history (backfilled with promtool, then scraping a static exporter for the live minutes), and
# the scaler polled as KEDA would for many ScaledObjects. Prints backfill time, Prometheus samples
# fetched per workload per steady-state poll, GetMetrics p50/p99 and resident memory per workload.
#
#   scripts/loadtest-keda.sh [workloads=2000] [polls=4] [interval-seconds=30] [policy=predictive]
#
# Needs `prometheus` and `promtool` on PATH (`make setup` installs them) and python3 (the static
# exporter). Ports: 50090 (Prometheus), 50091 (exporter), all on 127.0.0.1. PROFILE=dev builds
# the test profile instead of release (dependencies optimised, the scaler and engine not);
# LOOKBACK=1d shortens each workload's history (default 7d). SHAPE=quota plays the worst case the
# shipped limits admit (serve/examples/loadtest.rs; namespaces ns-0.. of PER_NAMESPACE=100
# workloads each) and
# writes the scaler's memory over time to target/loadtest-quota.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
workloads=${1:-2000}
polls=${2:-4}
interval=${3:-30}
policy=${4:-predictive}
lookback=${LOOKBACK:-7d}
shards=20
namespaces=loadtest
if [ "${SHAPE:-}" = quota ]; then
    shards=4
    per=${PER_NAMESPACE:-100}
    namespaces=$(seq -s, -f 'ns-%g' 0 $(((workloads + per - 1) / per - 1)))
    export LOADTEST_CSV=${LOADTEST_CSV:-$PWD/target/loadtest-quota.csv}
fi

profile=${PROFILE:-release}
# The whole workspace, as the tests build it: a subset would unify features differently and
# rebuild wasmtime.
cargo build --profile "$profile" -q --workspace --example loadtest
dir=$profile
[ "$profile" = dev ] && dir=debug
tmp=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# A week at one minute of `loadtest_load{shard}`: a daily cycle (peak 3x the trough) with noise,
# one series per shard, ending two minutes ago; then the live exporter carries on.
now=$(date +%s)
python3 - "$now" "$shards" "$namespaces" >"$tmp/history.om" <<'PY'
import math, random, sys
now, shards, namespaces = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(",")
end = now // 60 * 60 - 120
random.seed(7)
print("# TYPE loadtest_load gauge")
for namespace in namespaces:
    for shard in range(shards):
        for i in range(7 * 1440, 0, -1):
            t = end - (i - 1) * 60
            day = (t % 86400) / 86400
            v = 200 + 100 * math.sin(2 * math.pi * (day - 0.25)) + random.gauss(0, 8)
            print(f'loadtest_load{{namespace="{namespace}",shard="{shard}"}} {v:.2f} {t}')
print("# EOF")
PY
promtool tsdb create-blocks-from openmetrics --max-block-duration=24h \
    "$tmp/history.om" "$tmp/data" >/dev/null
mkdir -p "$tmp/exporter"
for namespace in ${namespaces//,/ }; do
    for shard in $(seq 0 $((shards - 1))); do
        echo "loadtest_load{namespace=\"$namespace\",shard=\"$shard\"} 200"
    done
done >"$tmp/exporter/metrics"
(cd "$tmp/exporter" && exec python3 -m http.server 50091 --bind 127.0.0.1 >/dev/null 2>&1) &
pids+=($!)

cat >"$tmp/prometheus.yml" <<YAML
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: loadtest
    static_configs:
      - targets: ['127.0.0.1:50091']
YAML
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
    --storage.tsdb.retention.time=30d --web.listen-address=127.0.0.1:50090 \
    --log.level=warn >"$tmp/prometheus.log" 2>&1 &
pids+=($!)

# Wait until Prometheus has scraped the exporter once (the history is then in place too).
for _ in $(seq 1 300); do
    if curl -fsS 'http://127.0.0.1:50090/api/v1/query?query=loadtest_load' 2>/dev/null |
        grep -q '"value"'; then
        break
    fi
    sleep 0.2
done

LEADTIME_LOG=warn "target/$dir/examples/loadtest" http://127.0.0.1:50090 \
    "$workloads" "$polls" "$interval" "$policy" "$shards" "$lookback"
