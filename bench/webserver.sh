#!/usr/bin/env bash
# plb's web server benchmark: in one run, plb (role web_server, 1 event loop)
# and nginx (worker_processes 1) serve the same directory, holding a 100-byte
# and a 1 MiB file, on loopback only; wrk over keep-alive connections. Prints
# a markdown table of requests/s, p99 latency and plb ÷ nginx.
#
# nginx runs as its documentation recommends for static files (bench/lib.sh
# nginx_static): sendfile, tcp_nopush and open_file_cache, so that it too
# neither opens nor stats a file it served recently; plb runs its defaults.
#
#   bench/webserver.sh               (as root on Debian: installs wrk nginx)
#   DURATION=10 CONNS=50 ROUNDS=3 bench/webserver.sh
#   PROFILE=/tmp/plb.prof bench/webserver.sh   (CPU profile of plb)
#   PIN=1 bench/webserver.sh         (server on the last CPU, wrk on the others)
#
# Each target is measured ROUNDS times, alternating, and the best round
# counts, so that a burst of noise on the shared cores does not decide.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-50}
ROUNDS=${ROUNDS:-3}
PIN=${PIN:-0}
. bench/lib.sh

need wrk nginx

go build -o "$work/plb" ./cmd/plb

# With PIN=1 (bench/lib.sh) the server runs on the last CPU and wrk on
# the others, so that neither is scheduled onto the other's core (the
# figures vary less).

static_docroot
start_plb() { plb_web "$1"; } # $1 port
start_nginx() { nginx_static "$1"; } # $1 port

targets=(plb-1 nginx)
sizes=(100b.txt 1m.bin)
declare -A RPS P99
for round in $(seq "$ROUNDS"); do
  for t in "${targets[@]}"; do
    port=$(freeport)
    case $t in
      plb-1) start_plb "$port" ;;
      nginx) start_nginx "$port" ;;
    esac
    waitport "$port"
    for size in "${sizes[@]}"; do
      wrk_best "round $round $t $size" "$t,$size" "http://127.0.0.1:$port/static/$size"
    done
    stop_target
  done
done

date=$(date -u +%Y-%m-%d)
report="$OUT/$date-webserver${pinned:+-$pinned}.md"
{
  echo "## Static files over keep-alive ($date, $(nproc) cores, wrk -t1 -c$CONNS -d${DURATION}s, best of $ROUNDS${pinned:+, $pinned})"
  echo
  echo "| target | 100 B req/s | 100 B p99 ms | 1 MiB req/s | 1 MiB p99 ms |"
  echo "|---|---|---|---|---|"
  for t in "${targets[@]}"; do
    echo "| $t | ${RPS[$t,100b.txt]} | ${P99[$t,100b.txt]} | ${RPS[$t,1m.bin]} | ${P99[$t,1m.bin]} |"
  done
  echo "| plb-1 ÷ nginx | $(ratio "${RPS[plb-1,100b.txt]}" "${RPS[nginx,100b.txt]}") | | $(ratio "${RPS[plb-1,1m.bin]}" "${RPS[nginx,1m.bin]}") | |"
} | tee "$report"
echo >&2
echo "report: $report" >&2
