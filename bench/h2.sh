#!/usr/bin/env bash
# HTTP/2 from clients (issue 15): h2load, 50 clients with 10 streams each
# (h2c, prior knowledge), through plb (one loop; http2 = true), nginx
# (http2, one worker), HAProxy (proto h2, nbthread 1) and Caddy (h2c) in
# front of the same two backends (bench/tool, 100 B answers, HTTP/1.1
# kept alive to them), in alternating rounds that each start one target
# further, on loopback. Prints each target's median requests/s, the ratio
# to plb and the CPU the proxy spent per request.
#
# BACKEND=h2c makes the backends speak h2c and every proxy talk HTTP/2 to
# them, streams multiplexed: plb backend_protocol = "h2c", HAProxy
# "proto h2" on its servers, Caddy's h2c transport, nginx grpc_pass
# (nginx proxies HTTP/2 upstream only as gRPC; the bench's answers pass
# through it all the same).
#
#   bench/h2.sh                       (as root on Debian: installs h2load haproxy nginx caddy)
#   DURATION=10 CLIENTS=50 STREAMS=10 ROUNDS=3 BACKEND=h2c bench/h2.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-8}
CLIENTS=${CLIENTS:-50}
STREAMS=${STREAMS:-10}
ROUNDS=${ROUNDS:-3}
BACKEND=${BACKEND:-http1}
. bench/lib.sh

command -v h2load >/dev/null || need nghttp2-client
need haproxy nginx caddy
go build -o "$work/plb" ./cmd/plb
go build -o "$work/tool" ./bench/tool
if [ "$BACKEND" = h2c ]; then
  B1=$(freeport); B2=$(freeport)
  "$work/tool" backend -h2c -addr 127.0.0.1:$B1 >/dev/null & pids+=($!)
  "$work/tool" backend -h2c -addr 127.0.0.1:$B2 >/dev/null & pids+=($!)
  waitport $B1; waitport $B2
else
  tool_backends
fi

# start TARGET: the target on a free port (sets port, PROXY_PIDS).
start() {
  port=$(freeport)
  case $1 in
    plb)
      proxy_toml "$work/plb.toml" "$port" 1 1 "$B1" "$B2"
      printf 'http2 = true\nhttp2_max_concurrent_streams = 100\n' >> "$work/plb.toml"
      [ "$BACKEND" = h2c ] && printf 'backend_protocol = "h2c"\n' >> "$work/plb.toml"
      "${srv[@]}" "$work/plb" -c "$work/plb.toml" & PROXY_PIDS=($!) ;;
    nginx)
      {
        nginx_head "worker_rlimit_nofile 19000;" "worker_connections 18000;"
        printf '  keepalive_requests 1000000;\n  http2_max_concurrent_streams 100;\n'
        printf '  upstream be { server 127.0.0.1:%s; server 127.0.0.1:%s; keepalive 100; }\n' "$B1" "$B2"
        printf '  server {\n    listen 127.0.0.1:%s http2;\n' "$port"
        if [ "$BACKEND" = h2c ]; then
          printf '    location / { grpc_pass grpc://be; }\n  }\n}\n'
        else
          printf '    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }\n  }\n}\n'
        fi
      } > "$work/nginx.conf"
      "${srv[@]}" nginx -c "$work/nginx.conf" >/dev/null 2>&1 & PROXY_PIDS=($!) ;;
    haproxy)
      haproxy_cfg "$port" "http-reuse always" "$B1" "$B2"
      sed -i "s/^  bind 127.0.0.1:$port\$/  bind 127.0.0.1:$port proto h2/" "$work/haproxy.cfg"
      [ "$BACKEND" = h2c ] && sed -i "s/^\(  server s[0-9]* 127.0.0.1:[0-9]*\)\$/\1 proto h2/" "$work/haproxy.cfg"
      "${srv[@]}" haproxy -f "$work/haproxy.cfg" -db >/dev/null 2>&1 & PROXY_PIDS=($!) ;;
    caddy)
      cat > "$work/Caddyfile" <<EOF
{
  admin off
  servers {
    protocols h1 h2c
  }
}
http://127.0.0.1:$port {
  reverse_proxy 127.0.0.1:$B1 127.0.0.1:$B2 {
    $([ "$BACKEND" = h2c ] && printf 'transport http {\n      versions h2c\n    }')
  }
}
EOF
      GOMAXPROCS=1 "${srv[@]}" caddy run --config "$work/Caddyfile" --adapter caddyfile >/dev/null 2>&1 & PROXY_PIDS=($!) ;;
  esac
  pids+=("${PROXY_PIDS[@]}")
  waitport "$port"
}
stop() {
  for p in "${PROXY_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PROXY_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
# ticks: CPU ticks of the target's processes (nginx's workers too).
ticks() {
  local t=0 p
  for p in "${PROXY_PIDS[@]}" $(pgrep -P "${PROXY_PIDS[0]}" || true); do t=$((t + $(cpu_ticks "$p"))); done
  echo $t
}

targets=(plb nginx haproxy caddy)
declare -A RUNS CPU
for round in $(seq "$ROUNDS"); do
  for k in "${!targets[@]}"; do
    t=${targets[$(((round + k) % ${#targets[@]}))]}
    start "$t"
    url="http://127.0.0.1:$port/100b"
    h2load -c "$CLIENTS" -m "$STREAMS" -D 1 "$url" >/dev/null 2>&1 || true # warm-up
    c0=$(ticks)
    out=$("${cli[@]}" h2load -c "$CLIENTS" -m "$STREAMS" -D "$DURATION" "$url" 2>&1)
    c1=$(ticks)
    stop
    r=$(awk '/^finished in/{gsub(",", "", $4); print $4}' <<<"$out")
    n=$(awk '/^requests:/{print $8}' <<<"$out") # succeeded
    bad=$(awk '/^requests:/{print $10 + $12}' <<<"$out") # failed + errored
    us=$(us_per_req $((c1 - c0)) "$n")
    RUNS[$t]="${RUNS[$t]:-} $r"; CPU[$t]="${CPU[$t]:-} $us"
    echo "round $round $t: $r req/s, $us µs CPU/request, $bad failed" >&2
  done
done

date=$(date -u +%Y-%m-%d)
{
  echo "## HTTP/2 (h2c) to clients, $BACKEND to the backends ($date, $(nproc) cores, h2load -c$CLIENTS -m$STREAMS -D$DURATION, 100 B, $ROUNDS alternating rounds, medians)"
  echo
  echo "| target | req/s | ÷ plb | µs CPU/request |"
  echo "|---|---|---|---|"
  # shellcheck disable=SC2086
  p=$(median ${RUNS[plb]})
  for t in "${targets[@]}"; do
    # shellcheck disable=SC2086
    r=$(median ${RUNS[$t]})
    # shellcheck disable=SC2086
    echo "| $t | $r | $(ratio "$r" "$p") | $(median ${CPU[$t]}) |"
  done
} | tee "$OUT/$date-h2-$BACKEND.md"
