# bench/lib.sh: what the bench scripts share. Sourced by each, from the
# repository's root, after its own settings:
#
#   OUT      where reports go (default bench/results; created)
#   PIN=1    srv=(taskset ...) runs a server on the last CPU, cli=(...) the
#            load and the backends on the others; pinned says so in reports
#
# It makes $work (a temp dir) and pids (killed at exit, with $work
# removed), raises the descriptor limit, and defines need, freeport,
# waitport, ratio, better, rss_kb, cpu_ticks, median, us_per_req, wrk_run, wrk_best,
# nginx_static, haproxy_cfg, stop_target, static_docroot, tool_backends,
# proxy_toml, plb_bg and plb_web.

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
better() { awk -v a="$1" -v b="${2:-0}" 'BEGIN{exit !(a > b)}'; } # A > B (B empty: 0)
rss_kb() { local t=0; for p in "$@"; do v=$(awk '/VmRSS/{print $2}' /proc/$p/status 2>/dev/null || echo 0); t=$((t + ${v:-0})); done; echo $t; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# median V...: the median of the values.
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{ if (NR%2) print v[(NR+1)/2]; else printf "%.2f\n", (v[NR/2]+v[NR/2+1])/2 }'; }
# us_per_req TICKS N: microseconds of CPU per request for TICKS clock
# ticks (cpu_ticks differences) over N requests.
us_per_req() { awk -v c="$1" -v n="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN{ if (n > 0) printf "%.2f", c * 1e6 / hz / n; else print 0 }'; }

# wrk_run URL [WRK OPTIONS]: wrk -t1 -c$CONNS -d${DURATION}s on URL (on the
# client CPUs with PIN=1) -> "requests/s p99-milliseconds"; errors wrk
# reports go to stderr.
wrk_run() {
  local url=$1; shift
  local out; out=$("${cli[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$@" "$url" 2>&1)
  local rps; rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  local p99; p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  local errs; errs=$(awk '/Non-2xx|Socket errors/{print}' <<<"$out" | tr '\n' ' ')
  [ -n "$errs" ] && echo "  $url $*: $errs" >&2
  local ms; ms=$(awk -v v="$p99" 'BEGIN{ if (v ~ /us$/) {sub(/us/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v); print v} else if (v ~ /s$/) {sub(/s/,"",v); print v*1000} else print "?" }')
  echo "$rps $ms"
}

# wrk_best LABEL KEY URL [WRK OPTIONS]: a 1 s warm-up, then wrk_run; logs
# "LABEL: ..." and keeps the figures in RPS[KEY] and P99[KEY] (the
# caller's associative arrays) when they beat the best round so far.
wrk_best() {
  local label=$1 key=$2 url=$3 r p; shift 3
  "${cli[@]}" wrk -t1 -c"$CONNS" -d1s "$@" "$url" >/dev/null 2>&1 || true # warm-up
  read -r r p < <(wrk_run "$url" "$@")
  echo "$label: $r req/s, p99 $p ms" >&2
  if better "$r" "${RPS[$key]:-}"; then
    RPS[$key]=$r; P99[$key]=$p
  fi
}

# nginx_static PORT [LISTEN FLAGS] [SERVER LINES]: nginx (worker_processes
# 1, on the server CPU with PIN=1) serving $docroot on 127.0.0.1:PORT;
# sets PIDS and adds it to pids. nginx as its documentation recommends for
# static files: sendfile and tcp_nopush on, and open_file_cache with the
# values of its documentation's example (descriptors, sizes and dates of
# files kept, checked again every 30 s; plb checks its cached files on
# every request with one statx, so nginx may serve a changed file for up
# to 30 s where plb does not).
nginx_static() {
  nginx_head "" "worker_connections 4096;" > "$work/nginx.conf"
  cat >> "$work/nginx.conf" <<EOF
  sendfile on;
  tcp_nopush on;
  open_file_cache max=1000 inactive=20s;
  open_file_cache_valid 30s;
  open_file_cache_min_uses 2;
  open_file_cache_errors on;
  keepalive_requests 1000000;
  types { text/plain txt; application/octet-stream bin; }
  server {
    listen 127.0.0.1:$1${2:+ $2};
    ${3:-}
    root $docroot;
  }
}
EOF
  "${srv[@]}" nginx -c "$work/nginx.conf" >/dev/null 2>&1 & PIDS=($!); pids+=($!)
}

# nginx_head MAIN_LINES EVENTS_LINES: the start of an nginx.conf for one
# foreground worker in $work/nginx (pid, logs, temporary files), through
# "http {" and its access_log off; the caller adds the rest.
nginx_head() {
  mkdir -p "$work/nginx"
  cat <<EOF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
$1
events { $2 }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
EOF
}

# nginx_proxy PORT MAIN_LINES EVENTS_LINES HTTP_LINES UPSTREAM_LINES
# NODE_PORT...: nginx (nginx_head) as a reverse proxy on 127.0.0.1:PORT
# over 127.0.0.1:NODE_PORT..., HTTP/1.1 to the upstream with an empty
# Connection header (its documentation's recipe for upstream keep-alive,
# which UPSTREAM_LINES turns on with "keepalive N;"); sets PROXY_PIDS and
# adds it to pids.
nginx_proxy() {
  local port=$1 main=$2 events=$3 http=$4 up=$5 n; shift 5
  {
    nginx_head "$main" "$events"
    printf '  %s\n  upstream be {' "$http"
    for n in "$@"; do printf ' server 127.0.0.1:%s;' "$n"; done
    printf ' %s }\n  server {\n    listen 127.0.0.1:%s;\n' "$up" "$port"
    printf '    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }\n  }\n}\n'
  } > "$work/nginx.conf"
  nginx -c "$work/nginx.conf" >/dev/null 2>&1 & PROXY_PIDS=($!); pids+=($!)
}

# haproxy_cfg PORT DEFAULTS_LINE NODE_PORT...: writes $work/haproxy.cfg,
# HAProxy (nbthread 1, mode http) on 127.0.0.1:PORT balancing roundrobin
# over 127.0.0.1:NODE_PORT..., with DEFAULTS_LINE (may be empty) added to
# its defaults.
haproxy_cfg() {
  local port=$1 extra=$2 i=0 n; shift 2
  {
    printf 'global\n  nbthread 1\ndefaults\n  mode http\n  timeout connect 5s\n'
    printf '  timeout client 120s\n  timeout server 120s\n  %s\n' "$extra"
    printf 'frontend fe\n  bind 127.0.0.1:%s\n  default_backend be\n' "$port"
    printf 'backend be\n  balance roundrobin\n'
    for n in "$@"; do i=$((i + 1)); printf '  server s%d 127.0.0.1:%s\n' "$i" "$n"; done
  } > "$work/haproxy.cfg"
}

# stop_target: stops the PIDS of the target measured (SIGINT: plb writes
# its CPU profile then; nginx stops at once).
stop_target() {
  for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}

# static_docroot: $docroot ($work/www) with static/100b.txt and
# static/1m.bin, one directory down as in a real site. A deployed site's
# files are old: they are dated an hour back, so that plb's cache of small
# files (which skips files changed in the last seconds) applies from the
# first request, as nginx's caches would.
static_docroot() {
  docroot="$work/www"
  mkdir -p "$docroot/static"
  head -c 100 /dev/urandom | base64 -w0 | head -c 100 > "$docroot/static/100b.txt"
  head -c $((1 << 20)) /dev/urandom > "$docroot/static/1m.bin"
  chmod -R a+rX "$work"
  touch -d '1 hour ago' "$docroot/static/"*
}

# tool_backends: two bench/tool backends ($work/tool, built by the caller)
# on free ports B1 and B2, answering 100 B, 64 KiB and 1 MiB bodies.
tool_backends() {
  B1=$(freeport); B2=$(freeport)
  "$work/tool" backend -addr 127.0.0.1:$B1 >/dev/null & pids+=($!)
  "$work/tool" backend -addr 127.0.0.1:$B2 >/dev/null & pids+=($!)
  waitport $B1; waitport $B2
}

# proxy_toml FILE PORT WORKERS PERSIST NODE_PORT...: writes plb's tuned
# reverse proxy (run.sh, ab.sh) to FILE: WORKERS loops, listening on
# 127.0.0.1:PORT, round_robin over 127.0.0.1:NODE_PORT..., keep-alive to
# clients, to backends when PERSIST is 1, 1000 idle backend connections
# kept, the spool in $work.
proxy_toml() {
  local file=$1 port=$2 workers=$3 persist=$4 nodes="" n; shift 4
  for n in "$@"; do nodes="$nodes${nodes:+, }\"127.0.0.1:$n\""; done
  cat > "$file" <<EOF
[global]
workers = $workers
log_level = 3
[pool.web]
nodes = [$nodes]
balance_method = "round_robin"
[service.proxy]
role = "reverse_proxy"
listen = "127.0.0.1:$port"
pool = "web"
persist_client = true
persist_backend = $([ "$persist" = 1 ] && echo true || echo false)
backend_persist_cache = 1000
buffer_dir = "$work"
EOF
}

# plb_bg CONFIG [PROFILE]: $work/plb -c CONFIG in the background (on the
# server CPU with PIN=1, writing a CPU profile to PROFILE when given); $!
# is its pid.
plb_bg() { env ${2:+"PLB_CPUPROFILE=$2"} "${srv[@]}" "$work/plb" -c "$1" & }

# plb_web PORT [TOML LINES]: plb (plb_bg, 1 loop, profiled to $PROFILE when
# set) as a web_server of $docroot on 127.0.0.1:PORT; sets PIDS and adds
# it to pids.
plb_web() {
  cat > "$work/plb.toml" <<EOF
[global]
workers = 1
log_level = 3
[service.web]
role = "web_server"
listen = "127.0.0.1:$1"
docroot = "$docroot"
persist_client = true
${2:-}
EOF
  plb_bg "$work/plb.toml" "${PROFILE:-}"; PIDS=($!); pids+=($!)
}
