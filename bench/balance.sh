#!/usr/bin/env bash
# What a balance method costs: plb (the tuned TOML of run.sh, one loop)
# with round_robin, weighted round_robin (3:1), hash by URI and hash by
# cookie (bounded loads on), and round_robin with a sticky cookie, sent
# back by every client (sticky) or by none, so that every response sets
# it (sticky_new), in front of the same two backends, in alternating
# rounds that each start one method further, on loopback. Prints each
# method's median requests/s, its ratio to round_robin and the CPU plb
# spent per request.
#
#   bench/balance.sh                  (as root on Debian: installs wrk)
#   DURATION=10 CONNS=50 ROUNDS=5 bench/balance.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-50}
ROUNDS=${ROUNDS:-5}
. bench/lib.sh

need wrk curl
go build -o "$work/plb" ./cmd/plb
go build -o "$work/tool" ./bench/tool
tool_backends

methods=(round_robin weighted hash_uri hash_cookie sticky sticky_new)
# start METHOD: plb with that balance method on a free port (sets port,
# PROXY_PID).
start() {
  port=$(freeport)
  local nodes=("$B1" "$B2") extra=""
  proxy_toml "$work/plb.toml" "$port" 1 1 "${nodes[@]}"
  case $1 in
    weighted) sed -i "s/\"127.0.0.1:$B1\"/\"127.0.0.1:$B1 weight=3\"/" "$work/plb.toml" ;;
    hash_uri) extra='hash_key = "uri"' ;;
    hash_cookie) extra='hash_key = "cookie:sid"' ;;
    sticky*) printf 'sticky_cookie = "SRV"\n' >> "$work/plb.toml" ;;
  esac
  if [ -n "$extra" ]; then
    sed -i "s/^balance_method = .*/balance_method = \"hash\"\n$extra/" "$work/plb.toml"
  fi
  "${srv[@]}" "$work/plb" -c "$work/plb.toml" & PROXY_PID=$!
  pids+=($PROXY_PID)
  waitport "$port"
}
stop() { kill "$PROXY_PID" 2>/dev/null || true; wait "$PROXY_PID" 2>/dev/null || true; }

# The sticky clients' cookies: round robin's first two answers name the
# two nodes (a node's cookie is the same in every plb process).
start sticky
tokens=()
for _ in 1 2; do
  tokens+=("$(curl -sS -D - -o /dev/null "http://127.0.0.1:$port/100b" | tr -d '\r' | sed -n 's/^Set-Cookie: SRV=\([0-9a-f]*\);.*/\1/p')")
done
stop
[ -n "${tokens[1]}" ] && [ "${tokens[0]}" != "${tokens[1]}" ] || { echo "no sticky cookies: ${tokens[*]}" >&2; exit 1; }

# keys_lua NAME FILE: a Lua script for wrk in which every request carries
# a different session cookie and URI, as many clients would, and a cookie
# NAME naming either node, half the requests each: SRV for the sticky
# clients, XRV (which plb reads as no sticky cookie) for the others, so
# that every method gets requests of the same size.
keys_lua() {
  cat > "$2" <<EOF
counter = 0
cookies = {"$1=${tokens[0]}", "$1=${tokens[1]}"}
request = function()
  counter = counter + 1
  local path = "/100b?item=" .. (counter % 1000)
  return wrk.format("GET", path, {["Cookie"] = "theme=dark; " .. cookies[counter % 2 + 1] .. "; sid=s" .. (counter % 1000)})
end
EOF
}
keys_lua XRV "$work/keys.lua"
keys_lua SRV "$work/sticky.lua"

declare -A RUNS CPU
for round in $(seq "$ROUNDS"); do
  for k in "${!methods[@]}"; do
    m=${methods[$(((round + k) % ${#methods[@]}))]}
    start "$m"
    url="http://127.0.0.1:$port/100b"
    script=$work/keys.lua
    [ "$m" = sticky ] && script=$work/sticky.lua
    wrk -t1 -c"$CONNS" -d1s -s "$script" "$url" >/dev/null 2>&1 || true # warm-up
    c0=$(cpu_ticks "$PROXY_PID")
    out=$("${cli[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$script" "$url" 2>&1)
    c1=$(cpu_ticks "$PROXY_PID")
    stop
    r=$(awk '/Requests\/sec/{print $2}' <<<"$out")
    n=$(awk '/requests in/{print $1}' <<<"$out")
    us=$(us_per_req $((c1 - c0)) "$n")
    RUNS[$m]="${RUNS[$m]:-} $r"; CPU[$m]="${CPU[$m]:-} $us"
    echo "round $round $m: $r req/s, $us µs CPU/request" >&2
  done
done

date=$(date -u +%Y-%m-%d)
{
  echo "## Balance methods ($date, $(nproc) cores, wrk -t1 -c$CONNS -d${DURATION}s, 1000 keys, $ROUNDS alternating rounds, medians)"
  echo
  echo "| method | req/s | ÷ round_robin | µs CPU/request |"
  echo "|---|---|---|---|"
  # shellcheck disable=SC2086
  rr=$(median ${RUNS[round_robin]})
  for m in "${methods[@]}"; do
    # shellcheck disable=SC2086
    r=$(median ${RUNS[$m]})
    # shellcheck disable=SC2086
    echo "| $m | $r | $(ratio "$r" "$rr") | $(median ${CPU[$m]}) |"
  done
} | tee "$OUT/$date-balance.md"
