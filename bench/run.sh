#!/usr/bin/env bash
# plb's end-to-end benchmark: one run measures the direct backend, plb with 1
# and N event loops, Perlbal, HAProxy (nbthread 1) and nginx
# (worker_processes 1) in front of the same two backends, on loopback only,
# and prints a markdown table of requests/s, p99 latency and ratios, then a
# slow-client case and an idle-connection case.
#
# The peers as their documentation recommends for a reverse proxy with
# backend keep-alive: HAProxy as shipped (nbthread 1 to match one plb loop)
# with "http-reuse always" (its documentation's advice when the backends
# are all the same application), nginx with an upstream "keepalive" pool,
# proxy_http_version 1.1 and an empty Connection header (its documentation's
# recipe for upstream keep-alive).
#
#   bench/run.sh            (as root on Debian: installs wrk perlbal haproxy nginx)
#   DURATION=10 CONNS=50 SLOW_N=200 IDLE_N=10000 bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-50}
SLOW_N=${SLOW_N:-200}
SLOW_RATE=${SLOW_RATE:-32768}
IDLE_N=${IDLE_N:-10000}
. bench/lib.sh

need wrk perlbal haproxy nginx

go build -o "$work/plb" ./cmd/plb
go build -o "$work/tool" ./bench/tool

# Two backends.
tool_backends
NCPU=$(nproc)
# Backend keep-alive: on for the throughput and idle cases; off for the
# slow-client case, so that an established backend connection is one held
# for a client (not an idle pooled one).
PERSIST=1

# start_NAME PORT: starts the proxy, sets PROXY_PIDS.
start_plb() { # $1 port, $2 workers
  proxy_toml "$work/plb-$2.toml" "$1" "$2" "$PERSIST" "$B1" "$B2"
  "$work/plb" -c "$work/plb-$2.toml" & PROXY_PIDS=($!); pids+=($!)
}
start_perlbal() {
  cat > "$work/perlbal.conf" <<EOF
CREATE POOL web
POOL web ADD 127.0.0.1:$B1
POOL web ADD 127.0.0.1:$B2
CREATE SERVICE proxy
SET proxy.role = reverse_proxy
SET proxy.listen = 127.0.0.1:$1
SET proxy.pool = web
SET proxy.persist_client = 1
SET proxy.persist_backend = $PERSIST
SET proxy.backend_persist_cache = 1000
ENABLE proxy
EOF
  perlbal --config="$work/perlbal.conf" >/dev/null 2>&1 & PROXY_PIDS=($!); pids+=($!)
}
start_haproxy() {
  haproxy_cfg "$1" "$([ "$PERSIST" = 1 ] && echo "http-reuse always" || echo "option http-server-close")" "$B1" "$B2"
  haproxy -f "$work/haproxy.cfg" -db >/dev/null 2>&1 & PROXY_PIDS=($!); pids+=($!)
}
start_nginx() {
  nginx_proxy "$1" "worker_rlimit_nofile 19000;" "worker_connections 18000;" "keepalive_requests 1000000;" \
    "$([ "$PERSIST" = 1 ] && echo "keepalive 1000;")" "$B1" "$B2"
}
stop_proxy() { for p in "${PROXY_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${PROXY_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done; }
all_pids() { # the proxy and its children (nginx workers)
  local p; for p in "${PROXY_PIDS[@]}"; do echo "$p"; pgrep -P "$p" || true; done
}


# start_target NAME: starts a proxy on a free port (sets port, PROXY_PIDS).
start_target() {
  PROXY_PIDS=()
  case $1 in
    direct) port=$B1 ;;
    plb-*) port=$(freeport); start_plb $port ${1#plb-} ;;
    perlbal) port=$(freeport); start_perlbal $port ;;
    haproxy) port=$(freeport); start_haproxy $port ;;
    nginx) port=$(freeport); start_nginx $port ;;
  esac
  waitport $port
}

targets=(direct plb-1 "plb-$NCPU" perlbal haproxy nginx)
declare -A RPS P99
for t in "${targets[@]}"; do
  start_target $t
  for size in 100b 64k; do
    wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$port/$size" >/dev/null 2>&1 || true # warm-up
    read -r r p < <(wrk_run "http://127.0.0.1:$port/$size")
    RPS[$t,$size]=$r; P99[$t,$size]=$p
    echo "$t $size: $r req/s, p99 $p ms" >&2
  done
  [ ${#PROXY_PIDS[@]} -gt 0 ] && stop_proxy
done

date=$(date -u +%Y-%m-%d)
report="$OUT/$date.md"
{
  echo "## Keep-alive throughput ($date, $(nproc) cores, wrk -t1 -c$CONNS -d${DURATION}s)"
  echo
  echo "| target | 100 B req/s | 100 B p99 ms | 64 KiB req/s | 64 KiB p99 ms | plb-1 ÷ target (100 B) | plb-1 ÷ target (64 KiB) |"
  echo "|---|---|---|---|---|---|---|"
  for t in "${targets[@]}"; do
    echo "| $t | ${RPS[$t,100b]} | ${P99[$t,100b]} | ${RPS[$t,64k]} | ${P99[$t,64k]} | $(ratio "${RPS[plb-1,100b]}" "${RPS[$t,100b]}") | $(ratio "${RPS[plb-1,64k]}" "${RPS[$t,64k]}") |"
  done
} | tee "$report"

# Slow clients: SLOW_N clients each fetching 1 MiB at SLOW_RATE bytes/s.
echo >&2
PERSIST=0
{
  echo
  echo "## Slow clients ($SLOW_N clients × 1 MiB at $((SLOW_RATE / 1024)) KiB/s)"
  echo
  echo "Backend keep-alive off here, so every established backend connection is held for a client."
  echo
  echo "| proxy | peak backend conns held | backend conns held after 5 s | peak RSS MiB | clients ok/failed |"
  echo "|---|---|---|---|---|"
} | tee -a "$report"
for t in plb-1 perlbal haproxy nginx; do
  start_target $t
  "$work/tool" slow -addr 127.0.0.1:$port -n "$SLOW_N" -rate "$SLOW_RATE" > "$work/slow.out" &
  sp=$!
  peak=0; peakrss=0; at5=""; start=$(date +%s)
  while kill -0 $sp 2>/dev/null; do
    held=$(ss -tnH state established "( dport = :$B1 or dport = :$B2 )" | wc -l)
    rss=$(rss_kb $(all_pids))
    [ "$held" -gt "$peak" ] && peak=$held
    [ "$rss" -gt "$peakrss" ] && peakrss=$rss
    if [ -z "$at5" ] && [ $(( $(date +%s) - start )) -ge 5 ]; then at5=$held; fi
    sleep 0.5
  done
  wait $sp || true
  res=$(awk '{print $1" "$2}' "$work/slow.out" | sed 's/ok=//; s/ failed=/\//')
  echo "| $t | $peak | ${at5:-?} | $((peakrss / 1024)) | $res |" | tee -a "$report"
  stop_proxy
done

# Idle keep-alive connections: RSS per connection.
PERSIST=1
{
  echo
  echo "## Idle keep-alive clients ($IDLE_N connections, one request each)"
  echo
  echo "| proxy | RSS before MiB | RSS with conns MiB | bytes per idle conn |"
  echo "|---|---|---|---|"
} | tee -a "$report"
for t in plb-1 perlbal haproxy nginx; do
  start_target $t
  wrk -t1 -c10 -d1s "http://127.0.0.1:$port/100b" >/dev/null 2>&1 || true
  sleep 1
  before=$(rss_kb $(all_pids))
  fifo="$work/idle.in"; rm -f "$fifo"; mkfifo "$fifo"
  "$work/tool" idle -addr 127.0.0.1:$port -n "$IDLE_N" -hold 120s < "$fifo" > "$work/idle.out" &
  ip=$!
  exec 4>"$fifo"
  for _ in $(seq 600); do grep -q ready "$work/idle.out" 2>/dev/null && break; sleep 0.2; done
  sleep 1
  after=$(rss_kb $(all_pids))
  open=$(sed -n 's/.*open=\([0-9]*\).*/\1/p' "$work/idle.out")
  echo >&4; exec 4>&-
  wait $ip || true
  per=$(awk -v a="$after" -v b="$before" -v n="${open:-0}" 'BEGIN{ if (n == 0) print "-"; else printf "%d", (a-b)*1024/n }')
  echo "| $t | $((before / 1024)) | $((after / 1024)) | $per (open: ${open:-0}) |" | tee -a "$report"
  stop_proxy
done
echo >&2
echo "report: $report" >&2
