#!/usr/bin/env bash
# A Perlbal user's first plb: the seed's Listing 2 exactly as printed
# (Perlbal syntax; persist_client, persist_backend and verify_backend on;
# Perlbal's defaults for everything else, backend_persist_cache 2 among
# them) in front of two nginx nodes, against HAProxy (nbthread 1, its
# defaults: http-reuse safe, keep-alive both sides, roundrobin; and again
# with http-reuse always) on the same nodes, in one run, on loopback. plb runs
# as the user would run it: a Perlbal-syntax file gives one event loop.
#
# For 100 B and 64 KiB files: keep-alive clients (wrk -c$CONNS), then a new
# client connection per request (wrk -H 'Connection: close'). Each target
# is measured ROUNDS times, alternating; the best round's requests/s
# counts, and the CPU the proxy spent per request (user + system, from
# /proc, over that round) is printed beside it.
#
#   bench/listing2.sh                   (as root on Debian: installs wrk haproxy nginx)
#   DURATION=10 CONNS=50 ROUNDS=3 bench/listing2.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-50}
ROUNDS=${ROUNDS:-3}
. bench/lib.sh

need wrk haproxy nginx
go build -o "$work/plb" ./cmd/plb

# Two nginx nodes (one worker each) serving the same files.
docroot="$work/www"
mkdir -p "$docroot"
head -c 100 /dev/urandom | base64 -w0 | head -c 100 > "$docroot/100b.txt"
head -c $((64 << 10)) /dev/urandom > "$docroot/64k.bin"
chmod -R a+rX "$work"
nodes=()
for i in 1 2; do
  port=$(freeport)
  mkdir -p "$work/nginx$i"
  cat > "$work/nginx$i.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx$i/nginx.pid;
error_log $work/nginx$i/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  client_body_temp_path $work/nginx$i/body;
  proxy_temp_path $work/nginx$i/proxy;
  fastcgi_temp_path $work/nginx$i/fcgi;
  uwsgi_temp_path $work/nginx$i/uwsgi;
  scgi_temp_path $work/nginx$i/scgi;
  types { text/plain txt; application/octet-stream bin; }
  server { listen 127.0.0.1:$port; root $docroot; }
}
EOF
  nginx -c "$work/nginx$i.conf" >/dev/null 2>&1 & pids+=($!)
  waitport "$port"
  nodes+=("$port")
done

start_plb() {
  cat > "$work/listing2.conf" <<EOF
CREATE POOL apache_pool
  POOL apache_pool ADD 127.0.0.1:${nodes[0]}
  POOL apache_pool ADD 127.0.0.1:${nodes[1]}

CREATE SERVICE balancer
  SET listen          = 127.0.0.1:$1
  SET role            = reverse_proxy
  SET pool            = apache_pool
  SET persist_client  = on
  SET persist_backend = on
  SET verify_backend  = on
ENABLE balancer
EOF
  "${srv[@]}" "$work/plb" -c "$work/listing2.conf" -d 3 & PIDS=($!); pids+=($!)
}
start_haproxy() {
  haproxy_cfg "$1" "${REUSE:+http-reuse $REUSE}" "${nodes[@]}"
  "${srv[@]}" haproxy -f "$work/haproxy.cfg" -db >/dev/null 2>&1 & PIDS=($!); pids+=($!)
}

# haproxy-always: HAProxy tuned to reuse idle server connections for any
# client's first request too (its default, safe, opens one per new client
# connection).
start_haproxy-always() { REUSE=always start_haproxy "$@"; }

# measure TARGET PATH MODE: one round of wrk; prints "req/s cpu-us/req".
measure() {
  local t=$1 path=$2 mode=$3 port out reqs c0 c1 rps
  port=$(freeport)
  "start_$t" "$port"
  waitport "$port"
  local hdr=()
  [ "$mode" = close ] && hdr=(-H 'Connection: close')
  "${cli[@]}" wrk -t1 -c"$CONNS" -d1s "${hdr[@]}" "http://127.0.0.1:$port/$path" >/dev/null 2>&1 || true
  c0=$(cpu_ticks "${PIDS[0]}")
  out=$("${cli[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" "${hdr[@]}" "http://127.0.0.1:$port/$path" 2>&1)
  c1=$(cpu_ticks "${PIDS[0]}")
  kill -TERM "${PIDS[@]}" 2>/dev/null || true
  wait "${PIDS[@]}" 2>/dev/null || true
  reqs=$(awk '/requests in/{print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  local errs; errs=$(awk '/Non-2xx|Socket errors/{print}' <<<"$out" | tr '\n' ' ')
  [ -n "$errs" ] && echo "  $t $path $mode: $errs" >&2
  awk -v r="$rps" -v n="$reqs" -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" \
    'BEGIN{ printf "%s %.1f\n", r, (n > 0 ? c / hz * 1e6 / n : 0) }'
}

declare -A RPS CPU
cases=("100b.txt keepalive" "64k.bin keepalive" "100b.txt close" "64k.bin close")
for c in "${cases[@]}"; do
  read -r path mode <<<"$c"
  for round in $(seq "$ROUNDS"); do
    for t in plb haproxy haproxy-always; do
      read -r r cpu < <(measure "$t" "$path" "$mode")
      echo "$t $path $mode round $round: $r req/s, $cpu CPU-us/req" >&2
      if better "$r" "${RPS[$t,$c]:-}"; then
        RPS[$t,$c]=$r; CPU[$t,$c]=$cpu
      fi
    done
  done
done

date=$(date -u +%Y-%m-%d)
report="$OUT/$date-listing2.md"
{
  echo "## Listing 2 in front of nginx ($date, $(nproc) cores${pinned:+, $pinned}, wrk -t1 -c$CONNS -d${DURATION}s, best of $ROUNDS)"
  echo
  echo "| case | plb-1 req/s | plb-1 CPU-µs/req | HAProxy req/s | HAProxy CPU-µs/req | plb ÷ HAProxy req/s | plb ÷ HAProxy CPU/req | HAProxy (http-reuse always) req/s | its CPU-µs/req |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for c in "${cases[@]}"; do
    echo "| $c | ${RPS[plb,$c]} | ${CPU[plb,$c]} | ${RPS[haproxy,$c]} | ${CPU[haproxy,$c]} | $(ratio "${RPS[plb,$c]}" "${RPS[haproxy,$c]}") | $(ratio "${CPU[plb,$c]}" "${CPU[haproxy,$c]}") | ${RPS[haproxy-always,$c]} | ${CPU[haproxy-always,$c]} |"
  done
} | tee "$report"
