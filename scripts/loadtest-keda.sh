#!/usr/bin/env bash
# Load test of `leadtime serve` (not in CI): a real Prometheus scraping the scaler's own /metrics,
# then 10,000 GetMetrics calls at concurrency 100 against one server; prints p50, p99, errors.
#
#   scripts/loadtest-keda.sh [calls] [concurrency] [workloads]
#
# Needs `prometheus` on PATH (`make setup` installs it). Ports: 50051 (gRPC), 50052 (/metrics),
# 50090 (Prometheus), all on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-10000}
concurrency=${2:-100}
workloads=${3:-1}

cargo build --release -q -p leadtime-cli -p leadtime-serve --example loadtest
tmp=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

cat >"$tmp/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: leadtime
    static_configs:
      - targets: ['127.0.0.1:50052']
YAML
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
    --web.listen-address=127.0.0.1:50090 --log.level=warn >"$tmp/prometheus.log" 2>&1 &
pids+=($!)
LEADTIME_LOG=warn target/release/leadtime serve --listen 127.0.0.1:50051 \
    --http-listen 127.0.0.1:50052 --prometheus http://127.0.0.1:50090 >"$tmp/serve.log" 2>&1 &
pids+=($!)

# Wait until Prometheus has scraped the scaler at least once.
for _ in $(seq 1 100); do
    if curl -fsS 'http://127.0.0.1:50090/api/v1/query?query=up' 2>/dev/null | grep -q '"value"'; then
        break
    fi
    sleep 0.2
done

target/release/examples/loadtest http://127.0.0.1:50051 "$calls" "$concurrency" "$workloads"
echo "scaler's own view:"
curl -fsS http://127.0.0.1:50052/metrics | grep -E '^leadtime_(decisions_total|desired_replicas|prometheus_errors_total)' || true
