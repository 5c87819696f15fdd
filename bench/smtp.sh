#!/usr/bin/env bash
# plb's SMTP relay and plain TCP benchmark: in one run, on loopback only,
# the same client against the same two backends, directly, through plb (1
# event loop: smtp_proxy, then tcp_proxy) and through HAProxy (nbthread 1,
# mode tcp; for SMTP `option smtpchk EHLO` and `balance leastconn`, `check`
# on the servers). Backends and clients are bench/tool's: smtpsink and
# smtpload (messages/s, one message per connection, as an MTA front sees,
# then ten), echo and tcpload (MB/s and round trips/s). Prints markdown
# tables and writes bench/results/DATE-smtp.md.
#
#   bench/smtp.sh                  (as root on Debian: installs haproxy)
#   DURATION=10 CONNS=50 SIZE=4096 TCP_SIZE=16384 ROUNDS=1 bench/smtp.sh
#   PROFILE=/tmp/plb-smtp.prof bench/smtp.sh   (then one more plb SMTP run
#                                  with a CPU profile, and its top 15)
#   PIN=1 bench/smtp.sh            (proxy on the last CPU, the rest elsewhere)
#
# With ROUNDS > 1 each target is measured that many times, alternating, and
# the best round counts.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-50}
SIZE=${SIZE:-4096}
TCP_SIZE=${TCP_SIZE:-16384}
ROUNDS=${ROUNDS:-1}
PIN=${PIN:-0}
PROFILE=${PROFILE:-}
. bench/lib.sh

need haproxy

go build -o "$work/plb" ./cmd/plb
go build -o "$work/tool" ./bench/tool

# With PIN=1 (bench/lib.sh) the proxy runs on the last CPU, the backends
# and the client on the others. TCK: clock ticks per second, for cpu_ticks.
TCK=$(getconf CLK_TCK)

# Two SMTP sinks, two echo servers.
S1=$(freeport); S2=$(freeport); E1=$(freeport); E2=$(freeport)
"${cli[@]}" "$work/tool" smtpsink -addr 127.0.0.1:$S1 >/dev/null & pids+=($!)
"${cli[@]}" "$work/tool" smtpsink -addr 127.0.0.1:$S2 >/dev/null & pids+=($!)
"${cli[@]}" "$work/tool" echo -addr 127.0.0.1:$E1 >/dev/null & pids+=($!)
"${cli[@]}" "$work/tool" echo -addr 127.0.0.1:$E2 >/dev/null & pids+=($!)
waitport $S1; waitport $S2; waitport $E1; waitport $E2

# start_plb PORT smtp|tcp [PROFILE]: sets PROXY_PID.
start_plb() {
  local b1=$S1 b2=$S2 role=smtp_proxy check=smtp
  if [ "$2" = tcp ]; then b1=$E1 b2=$E2 role=tcp_proxy check=tcp; fi
  cat > "$work/plb-$2.toml" <<EOF
[global]
workers = 1
log_level = 3
[pool.be]
nodes = ["127.0.0.1:$b1", "127.0.0.1:$b2"]
balance_method = "least_conn"
check = "$check"
check_interval = "2s"
[service.front]
role = "$role"
listen = "127.0.0.1:$1"
pool = "be"
EOF
  [ "$2" = smtp ] && echo 'smtp_hostname = "plb.bench"' >> "$work/plb-$2.toml"
  plb_bg "$work/plb-$2.toml" "${3:-}"; PROXY_PID=$!
  pids+=($PROXY_PID)
}
# start_haproxy PORT smtp|tcp: sets PROXY_PID.
start_haproxy() {
  local b1=$S1 b2=$S2 chk="option smtpchk EHLO haproxy.bench"
  if [ "$2" = tcp ]; then b1=$E1 b2=$E2 chk=""; fi
  cat > "$work/haproxy-$2.cfg" <<EOF
global
  nbthread 1
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend fe
  bind 127.0.0.1:$1
  default_backend be
backend be
  balance leastconn
  $chk
  server s1 127.0.0.1:$b1 check
  server s2 127.0.0.1:$b2 check
EOF
  "${srv[@]}" haproxy -f "$work/haproxy-$2.cfg" -db >/dev/null 2>&1 & PROXY_PID=$!
  pids+=($PROXY_PID)
}
# start_target NAME smtp|tcp [PROFILE]: sets port and PROXY_PID (empty for direct).
start_target() {
  PROXY_PID=""
  case $1 in
    direct) if [ "$2" = smtp ]; then port=$S1; else port=$E1; fi ;;
    plb-1) port=$(freeport); start_plb "$port" "$2" "${3:-}" ;;
    haproxy) port=$(freeport); start_haproxy "$port" "$2" ;;
  esac
  waitport "$port"
  sleep 0.3 # the first health checks
}
stop_target() {
  # plb: SIGINT (it writes its CPU profile then); HAProxy: SIGTERM (its
  # SIGINT is a soft stop). KILL after 10 s.
  [ -n "$PROXY_PID" ] || return 0
  local sig=INT
  [ "$(cat "/proc/$PROXY_PID/comm" 2>/dev/null)" = haproxy ] && sig=TERM
  kill -"$sig" "$PROXY_PID" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$PROXY_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$PROXY_PID" 2>/dev/null || true
  wait "$PROXY_PID" 2>/dev/null || true
}
# measure CMD...: runs the load, prints its line with the proxy's CPU use
# appended (cpu=PERCENT of one core, "-" for direct).
measure() {
  local t0=0 t1 out
  [ -n "$PROXY_PID" ] && t0=$(cpu_ticks "$PROXY_PID")
  out=$("${cli[@]}" "$work/tool" "$@")
  if [ -n "$PROXY_PID" ]; then
    t1=$(cpu_ticks "$PROXY_PID")
    out="$out cpu=$(awk -v a="$t0" -v b="$t1" -v h="$TCK" -v d="$DURATION" 'BEGIN{printf "%.0f", (b-a)*100/h/d}')"
  else
    out="$out cpu=-"
  fi
  echo "$out"
}
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

targets=(direct plb-1 haproxy)
declare -A MSGS ERRS CPU RTS MBS TERR TCPU
for round in $(seq "$ROUNDS"); do
  for t in "${targets[@]}"; do
    start_target "$t" smtp
    for per in 1 10; do
      "${cli[@]}" "$work/tool" smtpload -addr 127.0.0.1:$port -c "$CONNS" -d 1s -size "$SIZE" -per-conn $per >/dev/null 2>&1 || true # warm-up
      line=$(measure smtpload -addr 127.0.0.1:$port -c "$CONNS" -d "${DURATION}s" -size "$SIZE" -per-conn $per)
      echo "round $round smtp $t per-conn $per: $line" >&2
      r=$(field msgs_per_s "$line")
      if better "$r" "${MSGS[$t,$per]:-}"; then
        MSGS[$t,$per]=$r; ERRS[$t,$per]=$(field errors "$line"); CPU[$t,$per]=$(field cpu "$line")
      fi
    done
    stop_target
  done
  for t in "${targets[@]}"; do
    start_target "$t" tcp
    "${cli[@]}" "$work/tool" tcpload -addr 127.0.0.1:$port -c "$CONNS" -d 1s -size "$TCP_SIZE" >/dev/null 2>&1 || true # warm-up
    line=$(measure tcpload -addr 127.0.0.1:$port -c "$CONNS" -d "${DURATION}s" -size "$TCP_SIZE")
    echo "round $round tcp $t: $line" >&2
    r=$(field mb_per_s "$line")
    if better "$r" "${MBS[$t]:-}"; then
      MBS[$t]=$r; RTS[$t]=$(field rt_per_s "$line"); TERR[$t]=$(field errors "$line"); TCPU[$t]=$(field cpu "$line")
    fi
    stop_target
  done
done

percpu() { awk -v r="$1" -v c="$2" 'BEGIN{ if (c+0 == 0) print "-"; else printf "%.0f", r*100/c }'; }
date=$(date +%F)
report="$OUT/$date-smtp${pinned:+-$pinned}.md"
{
  echo "## SMTP relay ($date, $(nproc) cores, smtpload -c $CONNS -d ${DURATION}s -size $SIZE, best of $ROUNDS${pinned:+, $pinned})"
  echo
  echo "Messages accepted (250 after the dot) per second; the proxy's CPU in % of one"
  echo "core, and messages per second of the proxy's CPU time (its cost per message)."
  echo
  echo "| target | 1 msg/conn msgs/s | errors | proxy CPU % | msgs per CPU-s | 10 msgs/conn msgs/s | errors | proxy CPU % | msgs per CPU-s |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for t in "${targets[@]}"; do
    echo "| $t | ${MSGS[$t,1]} | ${ERRS[$t,1]} | ${CPU[$t,1]} | $(percpu "${MSGS[$t,1]}" "${CPU[$t,1]}") | ${MSGS[$t,10]} | ${ERRS[$t,10]} | ${CPU[$t,10]} | $(percpu "${MSGS[$t,10]}" "${CPU[$t,10]}") |"
  done
  echo "| plb-1 ÷ haproxy | $(ratio "${MSGS[plb-1,1]}" "${MSGS[haproxy,1]}") | | | $(ratio "$(percpu "${MSGS[plb-1,1]}" "${CPU[plb-1,1]}")" "$(percpu "${MSGS[haproxy,1]}" "${CPU[haproxy,1]}")") | $(ratio "${MSGS[plb-1,10]}" "${MSGS[haproxy,10]}") | | | $(ratio "$(percpu "${MSGS[plb-1,10]}" "${CPU[plb-1,10]}")" "$(percpu "${MSGS[haproxy,10]}" "${CPU[haproxy,10]}")") |"
  echo
  echo "## TCP echo ($date, tcpload -c $CONNS -d ${DURATION}s -size $TCP_SIZE)"
  echo
  echo "Each connection writes a block and reads it back; MB/s is 10^6 payload bytes each way."
  echo
  echo "| target | MB/s | round trips/s | errors | proxy CPU % |"
  echo "|---|---|---|---|---|"
  for t in "${targets[@]}"; do
    echo "| $t | ${MBS[$t]} | ${RTS[$t]} | ${TERR[$t]} | ${TCPU[$t]} |"
  done
  echo "| plb-1 ÷ haproxy | $(ratio "${MBS[plb-1]}" "${MBS[haproxy]}") | $(ratio "${RTS[plb-1]}" "${RTS[haproxy]}") | | |"
} | tee "$report"

if [ -n "$PROFILE" ]; then
  echo >&2
  start_target plb-1 smtp "$PROFILE"
  line=$(measure smtpload -addr 127.0.0.1:$port -c "$CONNS" -d "${DURATION}s" -size "$SIZE" -per-conn 1)
  echo "profiled smtp plb-1 per-conn 1: $line" >&2
  stop_target
  cp "$work/plb" "$PROFILE.plb" # the binary, for pprof
  go tool pprof -top -nodecount=15 "$PROFILE.plb" "$PROFILE" 2>/dev/null | sed -n '1,25p' >&2 || true
  echo "profile: $PROFILE (binary $PROFILE.plb)" >&2
fi
echo >&2
echo "report: $report" >&2
