#!/usr/bin/env bash
# Memory per idle keep-alive client: plb, nginx and HAProxy as reverse
# proxies in front of the same backend, in one run. For each N in IDLE_NS,
# N clients each make one request on a keep-alive connection and stay
# connected; the report gives each proxy's RSS growth divided by the
# connections it holds (its workers' RSS included).
#
#   bench/idle.sh                         (as root on Debian: installs haproxy nginx)
#   IDLE_NS="10000 50000" bench/idle.sh
#
# Peers as their documentation recommends for many idle clients: nginx
# with one worker, worker_connections and worker_rlimit_nofile raised to
# hold N, keepalive_timeout above the hold; HAProxy as shipped (nbthread
# 1), with maxconn raised to hold N and timeouts above the hold; plb with
# one loop and its defaults (its default client cap is half the descriptor
# limit). A proxy counts two descriptors per client (the client and its
# backend connection): a size whose 2N is above the hard descriptor limit
# (ulimit -Hn) is measured at the largest N that fits, and said so.
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE_NS=${IDLE_NS:-"10000 50000"}
HOLD=${HOLD:-600s}
. bench/lib.sh

need haproxy nginx

go build -o "$work/plb" ./cmd/plb
go build -o "$work/tool" ./bench/tool

B1=$(freeport)
"$work/tool" backend -addr 127.0.0.1:$B1 >/dev/null & pids+=($!)
waitport $B1
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576

start_plb() { # PORT N
  cat > "$work/plb.toml" <<EOF
[global]
workers = 1
log_level = 3
[pool.web]
nodes = ["127.0.0.1:$B1"]
[service.proxy]
role = "reverse_proxy"
listen = "127.0.0.1:$1"
pool = "web"
persist_client = true
persist_backend = true
persist_client_idle_timeout = "900s"
buffer_dir = "$work"
EOF
  "$work/plb" -c "$work/plb.toml" & PROXY_PIDS=($!); pids+=($!)
}
start_nginx() { # PORT N
  nginx_proxy "$1" "worker_rlimit_nofile $hard;" "worker_connections $(( $2 + 1000 ));" "keepalive_timeout 900s;" "keepalive 32;" "$B1"
}
start_haproxy() { # PORT N
  haproxy_cfg "$1" "timeout http-keep-alive 900s" "$B1"
  sed -i "s/^global$/global\n  maxconn $(( $2 + 100 ))/; s/timeout client 120s/timeout client 900s/" "$work/haproxy.cfg"
  haproxy -f "$work/haproxy.cfg" -db >/dev/null 2>"$work/haproxy.err" & PROXY_PIDS=($!); pids+=($!)
}
stop_proxy() { for p in "${PROXY_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${PROXY_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done; }
all_pids() { local p; for p in "${PROXY_PIDS[@]}"; do echo "$p"; pgrep -P "$p" || true; done; }

# idle_load PORT N: N idle clients over as many tool processes as the
# descriptor limit needs, dialing from several loopback addresses (one
# address has ~28k ephemeral ports); waits until all are ready and sets
# OPEN (connections held) and LOADS (the processes, released by
# release_load).
idle_load() {
  local port=$1 n=$2 per=$(( hard - 200 )) k i left
  k=$(( (n + per - 1) / per ))
  OPEN=0 LOADS=() FIFOS=()
  left=$n
  for i in $(seq 1 "$k"); do
    local m=$(( left < per ? left : per )); left=$(( left - m ))
    local fifo="$work/idle$i.in" outf="$work/idle$i.out"
    rm -f "$fifo" "$outf"; mkfifo "$fifo"
    local src="127.0.$i.1,127.0.$i.2,127.0.$i.3"
    "$work/tool" idle -addr 127.0.0.1:$port -n "$m" -hold "$HOLD" -src "$src" < "$fifo" > "$outf" &
    LOADS+=($!); pids+=($!)
    exec {fd}>"$fifo"; FIFOS+=($fd)
  done
  for i in $(seq 1 "$k"); do
    for _ in $(seq 1500); do grep -q ready "$work/idle$i.out" 2>/dev/null && break; sleep 0.2; done
    OPEN=$(( OPEN + $(sed -n 's/.*open=\([0-9]*\).*/\1/p' "$work/idle$i.out") ))
  done
}
release_load() {
  local fd p
  for fd in "${FIFOS[@]}"; do echo >&"$fd"; exec {fd}>&-; done
  for p in "${LOADS[@]}"; do wait "$p" 2>/dev/null || true; done
}

date=$(date -u +%Y-%m-%d)
report="$OUT/$date-idle.md"
{
  echo "## Idle keep-alive clients ($date, $(nproc) cores, hard descriptor limit $hard)"
  echo
  echo "| clients | proxy | RSS before KiB | RSS with clients KiB | open | bytes per idle client | plb ÷ proxy |"
  echo "|---|---|---|---|---|---|---|"
} | tee "$report"
for n in $IDLE_NS; do
  fit=$(( (hard - 400) / 2 ))
  if [ "$n" -gt "$fit" ]; then
    echo "| $n | all | - | - | - | not measurable here: 2 × $n descriptors are above the hard limit $hard; the largest size that fits is $fit | - |" | tee -a "$report"
    n=$fit
    case " ${done_ns:-} " in *" $n "*) continue ;; esac
  fi
  done_ns="${done_ns:-} $n"
  declare -A PER=()
  rows=()
  for t in plb nginx haproxy; do
    port=$(freeport)
    "start_$t" "$port" "$n"
    waitport "$port"
    "$work/tool" idle -addr 127.0.0.1:$port -n 50 -hold 1s >/dev/null # warm the backend path
    sleep 1
    before=$(rss_kb $(all_pids))
    idle_load "$port" "$n"
    sleep 2
    after=$(rss_kb $(all_pids))
    release_load
    stop_proxy
    per=$(awk -v a="$after" -v b="$before" -v o="$OPEN" 'BEGIN{ if (o == 0) print 0; else printf "%d", (a-b)*1024/o }')
    PER[$t]=$per
    rows+=("$t|$before|$after|$OPEN|$per")
    echo "$n $t: $before -> $after KiB, $OPEN open, $per B/client" >&2
  done
  for r in "${rows[@]}"; do
    IFS='|' read -r t b a o p <<<"$r"
    echo "| $n | $t | $b | $a | $o | $p | $(ratio "${PER[plb]}" "$p") |" | tee -a "$report"
  done
done
echo >&2
echo "report: $report" >&2
