#!/usr/bin/env bash
# `leadtime fleet` on a made-up cluster of N workloads (not in CI): a real Prometheus holding two
# weeks of one-minute history per workload (promtool), N ScaledObjects as kubectl prints them
# (two in three with leadtime's external trigger, the rest KEDA's `prometheus` trigger), then the
# fleet run, timed. Prints the wall time, workloads per second and the fleet's table.
#
#   scripts/bench-fleet.sh [workloads=50] [days=14]
#
# Needs `prometheus` and `promtool` (`make setup`) and python3. Port 50190 on 127.0.0.1.
# PROFILE=dev builds the test profile instead of release.
set -euo pipefail
cd "$(dirname "$0")/.."
workloads=${1:-50}
days=${2:-14}
profile=${PROFILE:-release}
cargo build --profile "$profile" -q -p leadtime-cli
dir=$profile
[ "$profile" = dev ] && dir=debug
tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

end=$(( $(date +%s) / 60 * 60 - 120 ))
python3 - "$end" "$workloads" "$days" "$tmp" <<'PY'
import math, random, sys
end, n, days, tmp = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
random.seed(11)
om = open(f"{tmp}/history.om", "w")
om.write("# TYPE fleet_load gauge\n")
objects = ["apiVersion: v1", "kind: List", "items:"]
for w in range(n):
    # Shapes: a daily cycle of its own size, phase and noise; one in five with bursts; one in
    # seven flat.
    base, amp, phase = random.uniform(50, 500), random.uniform(0.2, 0.8), random.uniform(0, 1)
    noise, bursty, flat = random.uniform(0.01, 0.1), w % 5 == 4, w % 7 == 6
    for i in range(days * 1440, -1, -1):
        t = end - i * 60
        day = (t % 86400) / 86400
        v = base if flat else base * (1 + amp * math.sin(2 * math.pi * (day - phase)))
        if bursty and (t // 60) % 360 < 15:
            v *= 2.5
        v = max(0.0, v * (1 + random.gauss(0, noise)))
        om.write(f'fleet_load{{namespace="team-{w % 5}",workload="w{w}"}} {v:.3f} {t}\n')
    query = f'fleet_load{{namespace="team-{w % 5}",workload="w{w}"}}'
    per_pod = round(base / 8, 1)
    objects += [
        "- apiVersion: keda.sh/v1alpha1", "  kind: ScaledObject",
        f"  metadata: {{name: w{w}, namespace: team-{w % 5}}}",
        "  spec:", f"    scaleTargetRef: {{name: w{w}}}", "    maxReplicaCount: 100", "    triggers:",
    ]
    if w % 3 != 2:
        objects += [
            "    - type: external", "      metadata:",
            "        scalerAddress: leadtime-scaler.leadtime.svc:9090",
            f"        query: '{query}'", f'        targetPerPod: "{per_pod}"',
            f'        readySeconds: "{random.choice([60, 180, 300, 600])}"',
        ]
    else:
        objects += [
            "    - type: prometheus", "      metadata:",
            "        serverAddress: http://prometheus.monitoring.svc:9090",
            f"        query: '{query}'", f'        threshold: "{per_pod}"',
        ]
om.write("# EOF\n")
open(f"{tmp}/scaledobjects.yaml", "w").write("\n".join(objects) + "\n")
PY
promtool tsdb create-blocks-from openmetrics --max-block-duration=24h \
    "$tmp/history.om" "$tmp/data" >/dev/null
echo "scrape_configs: []" >"$tmp/prometheus.yml"
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
    --storage.tsdb.retention.time=30d --web.listen-address=127.0.0.1:50190 \
    --log.level=warn >"$tmp/prometheus.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
    curl -fsS 'http://127.0.0.1:50190/api/v1/query?query=count(fleet_load)' 2>/dev/null |
        grep -q "\"$workloads\"" && break
    sleep 0.2
done

start=$(date +%s.%N)
"target/$dir/leadtime" fleet "$tmp/scaledobjects.yaml" --prometheus http://127.0.0.1:50190 \
    --range "${days}d" --end "$end" >"$tmp/table.txt"
took=$(echo "$(date +%s.%N) - $start" | bc)
cat "$tmp/table.txt"
echo
printf '%s workloads, %s days each: %.1f s, %.2f workloads per second\n' \
    "$workloads" "$days" "$took" "$(echo "$workloads / $took" | bc -l)"
