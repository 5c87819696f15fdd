# bench/lib.sh: what the bench scripts share. Sourced by each, from the
# repository's root, after its own settings:
#
#   OUT      where reports go (default bench/results; created)
#   PIN=1    srv=(taskset ...) runs a server on the last CPU, cli=(...) the
#            load and the backends on the others; pinned says so in reports
#
# It makes $work (a temp dir) and pids (killed at exit, with $work
# removed), raises the descriptor limit, and defines need, freeport,
# waitport, ratio, rss_kb and cpu_ticks.

OUT=${OUT:-bench/results}
mkdir -p "$OUT"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# need COMMAND...: installs the Debian packages of those names when one of
# the commands is missing.
need() {
  local missing=()
  for c in "$@"; do command -v "$c" >/dev/null || missing+=("$c"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing ${missing[*]}" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

srv=() cli=() pinned=""
if [ "${PIN:-0}" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  last=$(( $(nproc) - 1 ))
  srv=(taskset -c "$last")
  cli=(taskset -c "0-$(( last - 1 ))")
  pinned=pinned
fi

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
waitport() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b+0 == 0) print "-"; else printf "%.2f", a/b }'; }
rss_kb() { local t=0; for p in "$@"; do v=$(awk '/VmRSS/{print $2}' /proc/$p/status 2>/dev/null || echo 0); t=$((t + ${v:-0})); done; echo $t; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
