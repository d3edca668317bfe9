#!/usr/bin/env bash
# Runs one stage of `make test` and records how long it took (target/stages.tsv), so that every
# run ends with a per-stage summary: `scripts/stage.sh NAME COMMAND...`, `scripts/stage.sh --summary`.
set -uo pipefail
log=target/stages.tsv
mkdir -p target

summary() {
    [ -f "$log" ] || return 0
    echo
    echo "== stages (wall seconds) =="
    # Stages may overlap (setup runs beside lint): the total is the wall time since --reset.
    local wall=$(($(date +%s) - $(cat target/stages.start 2>/dev/null || date +%s)))
    awk -F'\t' -v wall="$wall" '{ printf "%-16s %6d s  %s\n", $1, $2, $3 }
        END { printf "%-16s %6d s  (%d min %d s, wall)\n", "total", wall, wall / 60, wall % 60 }' "$log"
}

case "${1:-}" in
--summary) summary; exit 0 ;;
--reset) rm -f "$log"; date +%s >target/stages.start; exit 0 ;;
esac

name=$1
shift
start=$(date +%s)
"$@"
status=$?
echo -e "$name\t$(($(date +%s) - start))\t$([ $status -eq 0 ] && echo ok || echo "FAILED ($status)")" >>"$log"
if [ $status -ne 0 ]; then
    summary
fi
exit $status
