#!/usr/bin/env bash
# Before and after a change: two revisions of plb as a reverse proxy (the
# tuned TOML of bench/run.sh, one event loop) and HAProxy (nbthread 1,
# http-reuse always) in front of the same two backends (bench/tool
# backend), in one run, on loopback. Each target is measured ROUNDS times,
# alternating, each round starting one target further (old new haproxy,
# new haproxy old, ...), so that the machine's drift and the place in the
# order fall on all three alike; the table gives each one's median requests/s
# and the CPU it spent per request (user + system, from /proc) over its
# rounds, and the ratios new ÷ old and new ÷ HAProxy.
#
#   bench/ab.sh OLD_REV [NEW_REV]     (NEW_REV default: the working tree)
#   DURATION=10 CONNS=50 ROUNDS=5 SIZES="100b 64k" bench/ab.sh 206d5bb
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${1:?usage: bench/ab.sh OLD_REV [NEW_REV]}
NEW=${2:-}
DURATION=${DURATION:-10}
CONNS=${CONNS:-50}
ROUNDS=${ROUNDS:-5}
SIZES=${SIZES:-100b 64k}
. bench/lib.sh

need wrk haproxy

# build REV OUT: plb of REV (a clean worktree), or of the working tree.
build() {
  if [ -z "$1" ]; then
    go build -o "$2" ./cmd/plb
    return
  fi
  local tree="$work/tree-$1"
  git worktree add -f --detach "$tree" "$1" >/dev/null 2>&1
  (cd "$tree" && go build -o "$2" ./cmd/plb)
  git worktree remove -f "$tree"
}
build "$OLD" "$work/plb-old"
build "$NEW" "$work/plb-new"
go build -o "$work/tool" ./bench/tool

tool_backends

# start NAME: starts a target on a free port (sets port and PROXY_PID).
start() {
  port=$(freeport)
  case $1 in
    old | new)
      proxy_toml "$work/plb-$1.toml" "$port" 1 1 "$B1" "$B2"
      "${srv[@]}" "$work/plb-$1" -c "$work/plb-$1.toml" & PROXY_PID=$!
      ;;
    haproxy)
      haproxy_cfg "$port" "http-reuse always" "$B1" "$B2"
      "${srv[@]}" haproxy -f "$work/haproxy.cfg" -db >/dev/null 2>&1 & PROXY_PID=$!
      ;;
  esac
  pids+=($PROXY_PID)
  waitport "$port"
}
stop() { kill "$PROXY_PID" 2>/dev/null || true; wait "$PROXY_PID" 2>/dev/null || true; }

# median of the arguments.

targets=(old new haproxy)
declare -A RUNS CPU
for size in $SIZES; do
  for round in $(seq "$ROUNDS"); do
    for k in 0 1 2; do
      t=${targets[$(((round + k) % 3))]}
      start "$t"
      wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$port/$size" >/dev/null 2>&1 || true # warm-up
      c0=$(cpu_ticks "$PROXY_PID")
      out=$("${cli[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$port/$size" 2>&1)
      c1=$(cpu_ticks "$PROXY_PID")
      stop
      r=$(awk '/Requests\/sec/{print $2}' <<<"$out")
      n=$(awk '/requests in/{print $1}' <<<"$out")
      us=$(us_per_req $((c1 - c0)) "$n")
      RUNS[$t,$size]="${RUNS[$t,$size]:-} $r"
      CPU[$t,$size]="${CPU[$t,$size]:-} $us"
      echo "$size round $round $t: $r req/s, $us µs CPU/request" >&2
    done
  done
done

date=$(date -u +%Y-%m-%d)
new_label=${NEW:-$(git rev-parse --short HEAD)+tree}
report="$OUT/$date-ab.md"
{
  echo "## Before and after ($date, $(nproc) cores, wrk -t1 -c$CONNS -d${DURATION}s, $ROUNDS alternating rounds, medians)"
  echo
  echo "old = $OLD, new = $new_label, HAProxy nbthread 1 with http-reuse always; plb with 1 loop."
  echo
  echo "| size | old req/s | new req/s | HAProxy req/s | new ÷ old | new ÷ HAProxy | old µs CPU/req | new µs CPU/req | HAProxy µs CPU/req |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for size in $SIZES; do
    # shellcheck disable=SC2086
    o=$(median ${RUNS[old,$size]}); n=$(median ${RUNS[new,$size]}); h=$(median ${RUNS[haproxy,$size]})
    # shellcheck disable=SC2086
    echo "| $size | $o | $n | $h | $(ratio "$n" "$o") | $(ratio "$n" "$h") | $(median ${CPU[old,$size]}) | $(median ${CPU[new,$size]}) | $(median ${CPU[haproxy,$size]}) |"
  done
} | tee "$report"
