#!/bin/bash
# test-ha.sh: an active/passive plb pair with a floating address, run in
# network namespaces, with keepalived.conf.example and check_plb.sh from
# this directory. Needs root, ip (iproute2), keepalived, curl and go.
#
#   sudo etc/keepalived/test-ha.sh        (from anywhere in the repository)
#
# Topology (all of it in namespaces this script creates and deletes; the
# host's own interfaces, addresses and routes are never touched):
#
#   ns "sw": bridge br0 --+-- eth0 in ns "a"       10.99.0.11  plb + keepalived (priority 150)
#                         +-- eth0 in ns "b"       10.99.0.12  plb + keepalived (priority 100)
#                         +-- eth0 in ns "client"  10.99.0.50  curl
#   floating address 10.99.0.100 (VRRP, unicast between a and b)
#
# In a and b plb runs a reverse proxy on 0.0.0.0:8080 over a web server on
# 127.0.0.1:8081 whose index.html says "host A" or "host B", and its
# management service on 127.0.0.1:16000 (which check_plb.sh asks).
#
# Phases: (1) A becomes master, the client gets "host A" from 10.99.0.100;
# (2) plb on A is killed (SIGKILL): the time until the client gets "host B"
# is the failover time; (3) plb on A comes back: with nopreempt B keeps the
# address; (4) planned move back: the maintenance file on B makes its check
# fail while plb on B still serves, and the address goes to A (a slow
# download through B is in flight: what happens to it is shown, not
# checked); (4b) plb on A gets TERM: shutdown_grace keeps it serving with
# /healthz at 503 until B has the address, no request fails; then back to
# A; (5) host A leaves the network (eth0 down): B takes over when A's
# advertisements stop.
#
# Environment: PLB (a plb binary; default: go build ./cmd/plb),
# HA_SUBNET (default 10.99.0; the /24 used inside the namespaces),
# HA_CONF (the keepalived configuration to run, written for host A as the
# example is; default: keepalived.conf.example beside this script).
#
# Not a Go test: it needs root, keepalived and network namespaces, so
# `go test ./...` does not run it; run it by hand after changing plb's
# management service, check_plb.sh or the example.
# Exit 0 when every phase behaved as expected.

set -u
set -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
net=${HA_SUBNET:-10.99.0}
conf=${HA_CONF:-$here/keepalived.conf.example}
ip_a=$net.11 ip_b=$net.12 ip_c=$net.50 vip=$net.100
tag=plbha$$
ns_sw=$tag-sw ns_a=$tag-a ns_b=$tag-b ns_c=$tag-client
all_ns=("$ns_a" "$ns_b" "$ns_c" "$ns_sw")
work=
started=$(date +%s%N)

# secs MS: MS milliseconds as seconds with three decimals.
secs() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }
log() { printf '[%6.2f] %s\n' "$(( ($(date +%s%N) - started) / 10000000 ))e-2" "$*"; }
die() { log "FAIL: $*"; exit 1; }

# ------------------------------------------------------------ cleanup ---
cleanup() {
	local rc=$? ns pid i
	trap - EXIT INT TERM
	set +e
	# keepalived first (it removes the floating address and says so), then plb.
	for pid in $(cat "$work"/*/keepalived.pid 2>/dev/null) $(cat "$work"/*/plb.pid 2>/dev/null); do
		kill -TERM "$pid" 2>/dev/null
	done
	for i in $(seq 30); do
		live=
		for ns in "${all_ns[@]}"; do
			[ -n "$(ip netns pids "$ns" 2>/dev/null)" ] && live=1
		done
		[ -z "$live" ] && break
		sleep 0.1
	done
	# Whatever still runs inside our namespaces was started by this script.
	for ns in "${all_ns[@]}"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null
		done
	done
	for ns in "${all_ns[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	if [ "$rc" -ne 0 ] && [ -n "$work" ] && [ -d "$work" ]; then
		for f in "$work"/*/keepalived.log "$work"/*/plb.log; do
			[ -s "$f" ] || continue
			echo "---- last lines of ${f#"$work"/}"
			tail -n 15 "$f"
		done
	fi
	[ -n "$work" ] && rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------- preconditions ---
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"
for c in ip keepalived curl; do
	command -v "$c" >/dev/null || die "$c not found (apt-get install -y keepalived iproute2 curl)"
done
ip netns list >/dev/null 2>&1 || die "ip netns does not work here"

# A root-owned, private directory: keepalived's enable_script_security
# refuses scripts in a directory that others may write to.
work=$(mktemp -d /run/plb-ha.XXXXXX 2>/dev/null || mktemp -d /tmp/plb-ha.XXXXXX) || die "mktemp"
chmod 0700 "$work"
mkdir -p "$work/a/www" "$work/b/www"

if [ -n "${PLB:-}" ]; then
	cp "$PLB" "$work/plb" || die "PLB=$PLB: cannot copy"
else
	command -v go >/dev/null || die "go not found (or set PLB=/path/to/plb)"
	(cd "$repo" && go build -o "$work/plb" ./cmd/plb) || die "go build ./cmd/plb failed (or set PLB=/path/to/plb)"
fi
log "plb: $("$work/plb" -v 2>&1 | head -n 1); $(keepalived --version 2>&1 | head -n 1); $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"

# ------------------------------------------------------------ network ---
for ns in "$ns_sw" "$ns_a" "$ns_b" "$ns_c"; do
	ip netns add "$ns" || die "ip netns add $ns"
	ip -n "$ns" link set lo up
done
ip -n "$ns_sw" link add br0 type bridge || die "bridge in namespace"
ip -n "$ns_sw" link set br0 up
for pair in "a:$ns_a:$ip_a" "b:$ns_b:$ip_b" "c:$ns_c:$ip_c"; do
	IFS=: read -r name ns addr <<<"$pair"
	# Both ends are created inside namespaces: nothing appears on the host.
	ip -n "$ns_sw" link add "port-$name" type veth peer name eth0 netns "$ns" || die "veth for $name"
	ip -n "$ns_sw" link set "port-$name" master br0 up
	ip -n "$ns" addr add "$addr/24" dev eth0
	ip -n "$ns" link set eth0 up
done
log "namespaces up: $ns_a ($ip_a), $ns_b ($ip_b), $ns_c ($ip_c), bridge in $ns_sw"

# ---------------------------------------------------------------- plb ---
for h in a b; do
	H=${h^^}
	echo "host $H" >"$work/$h/www/index.html"
	cat >"$work/$h/plb.toml" <<EOF
[global]
workers = 1
log_level = 1
shutdown_grace = 4

[pool.local]
nodes = ["127.0.0.1:8081"]

[service.balancer]
role = "reverse_proxy"
listen = "0.0.0.0:8080"
pool = "local"
persist_backend = true

[service.web]
role = "web_server"
listen = "127.0.0.1:8081"
docroot = "$work/$h/www"

[service.mgmt]
role = "management"
listen = "127.0.0.1:16000"
EOF
done

ns_of() { if [ "$1" = a ]; then echo "$ns_a"; else echo "$ns_b"; fi; }

start_plb() {
	ip netns exec "$(ns_of "$1")" "$work/plb" -c "$work/$1/plb.toml" \
		>>"$work/$1/plb.log" 2>&1 &
	echo $! >"$work/$1/plb.pid"
	disown # no "Killed" message from bash
}

# plb_back_on_a: plb started again on a, healthy, and a's keepalived out
# of FAULT.
plb_back_on_a() {
	start_plb a
	wait_for 10 "plb on a healthy again" check a
	wait_for 10 "keepalived on a leaves FAULT" is_state a BACKUP
}

# check HOST: check_plb.sh inside HOST's namespace (what keepalived runs).
check() { ip netns exec "$(ns_of "$1")" "$work/check_plb.sh" http://127.0.0.1:16000 "$work/$1/maintenance" 2>/dev/null; }

# wait_for SECONDS DESCRIPTION COMMAND...: poll every 0.1 s.
wait_for() {
	local n=$(($1 * 10)) what=$2 i
	shift 2
	for ((i = 0; i < n; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	die "timed out after ${n}00 ms: $what"
}

install -m 0755 "$here/check_plb.sh" "$work/check_plb.sh"
for h in a b; do start_plb "$h"; done
for h in a b; do wait_for 10 "plb on $h healthy (check_plb.sh)" check "$h"; done
# direct HOST: the client asks HOST's own address (through the bridge).
direct() { [ "$(ip netns exec "$ns_c" curl -q -s --noproxy '*' --max-time 1 "http://$2:8080/" 2>/dev/null)" = "host $1" ]; }
wait_for 10 "client gets 'host A' from $ip_a" direct A "$ip_a"
wait_for 10 "client gets 'host B' from $ip_b" direct B "$ip_b"
log "plb serving in a and b (check_plb.sh: /healthz 200; the client reaches both)"

# check_plb.sh's other answers, in a: a server whose /healthz is 404 (plb's
# web server on 8081, before plb had /healthz) is judged by /status.json;
# nothing listening, or the maintenance file, is a failure.
cp_a() { ip netns exec "$ns_a" "$work/check_plb.sh" "$@" 2>/dev/null; }
cp_a http://127.0.0.1:8081 "$work/a/maintenance" && die "check_plb.sh: /healthz 404 and /status.json 404 passed"
echo '{"services": {}}' >"$work/a/www/status.json"
cp_a http://127.0.0.1:8081 "$work/a/maintenance" || die "check_plb.sh: /healthz 404 and /status.json 200 failed"
rm -f "$work/a/www/status.json"
cp_a http://127.0.0.1:1 "$work/a/maintenance" && die "check_plb.sh: nothing listening passed"
touch "$work/a/maintenance"
cp_a http://127.0.0.1:16000 "$work/a/maintenance" && die "check_plb.sh: maintenance file passed"
rm -f "$work/a/maintenance"
log "check_plb.sh: /healthz 200 ok; 404 then /status.json 200 ok, 404 fails; refused fails; maintenance fails"

# ---------------------------------------------------------- keepalived ---
cat >"$work/notify.sh" <<EOF
#!/bin/sh
# notify.sh HOST INSTANCE NAME STATE PRIORITY (keepalived adds the last four)
echo "\$4" >"$work/\$1/state"
echo "\$(date +%s%N) \$1 \$4" >>"$work/transitions"
EOF
chmod 0755 "$work/notify.sh"

# The example with this test's addresses, paths and per-host lines.
make_conf() { # HOST SELF PEER PRIORITY
	sed -e "s/192\.0\.2\.11\b/@SELF@/g; s/192\.0\.2\.12\b/@PEER@/g" \
		-e "s/@SELF@/$2/g; s/@PEER@/$3/g; s/192\.0\.2\.100\b/$vip/g" \
		-e "s/^\( *priority\) 150\b/\1 $4/" \
		-e "s/^\( *router_id\) plb_a\b/\1 plb_$1/" \
		-e "s|\"/etc/keepalived/check_plb.sh\"|\"$work/check_plb.sh http://127.0.0.1:16000 $work/$1/maintenance\"|" \
		-e "s|^\( *\)# notify \"/etc/keepalived/notify_plb.sh\"|\1notify \"$work/notify.sh $1\"|" \
		"$conf" >"$work/$1/keepalived.conf"
	for want in "unicast_src_ip $2" "^ *$3\b" "$vip/24 dev eth0" "priority $4\b" "notify \"$work" "script \"$work/check_plb.sh"; do
		grep -q "$want" "$work/$1/keepalived.conf" || die "keepalived.conf.example changed: no '$want' after substitution"
	done
	keepalived -t -f "$work/$1/keepalived.conf" >"$work/$1/config-test.log" 2>&1 ||
		die "keepalived -t rejects the configuration of $1: $(tail -n 5 "$work/$1/config-test.log")"
}
make_conf a "$ip_a" "$ip_b" 150
make_conf b "$ip_b" "$ip_a" 100

start_keepalived() {
	# -n foreground, -l -D detailed log to the console, -G not to syslog;
	# pid files of our own, so that the two instances and the host's
	# keepalived (if any) never see each other's.
	ip netns exec "$(ns_of "$1")" keepalived -n -l -D -G --vrrp \
		-f "$work/$1/keepalived.conf" -p "$work/$1/keepalived.pid" -r "$work/$1/vrrp.pid" \
		-c "$work/$1/checkers.pid" -b "$work/$1/bfd.pid" \
		>>"$work/$1/keepalived.log" 2>&1 &
	disown
}
state() { cat "$work/$1/state" 2>/dev/null; }
is_state() { [ "$(state "$1")" = "$2" ]; }
has_vip() { [[ $(ip -n "$(ns_of "$1")" -4 addr show dev eth0) == *"inet $vip/"* ]]; }

# A first, so that A is master however the start-up timers fall; then B.
start_keepalived a
wait_for 15 "keepalived on a becomes MASTER" is_state a MASTER
wait_for 5 "$vip on a's eth0" has_vip a
start_keepalived b
wait_for 15 "keepalived on b becomes BACKUP" is_state b BACKUP
log "keepalived: a $(state a), b $(state b); $vip is on a"

# ------------------------------------------------------------- client ---
# get [CONNECT_TIMEOUT]: one request to the floating address from the
# client namespace (a new connection each time).
get() {
	local ct=${1:-1}
	ip netns exec "$ns_c" curl -q -s --noproxy '*' --connect-timeout "$ct" --max-time "$((${ct%.*} + 2))" \
		"http://$vip:8080/" 2>/dev/null
}
gets() { [ "$(get)" = "host $1" ]; }

wait_for 10 "client gets 'host A' from $vip" gets A
log "client: http://$vip:8080/ -> $(get)"

# until_host LETTER MAX_SECONDS CONNECT_TIMEOUT: a request every 0.2 s
# until one gets "host LETTER"; sets elapsed_ms (since t0), tries, failed
# (no answer), others (answers from the other host) and slowest_ms (the
# longest request).
until_host() {
	local want="host $1" limit=$(($2 * 1000000000)) body start
	tries=0 failed=0 others=0 slowest_ms=0
	while :; do
		start=$(date +%s%N)
		body=$(get "$3")
		tries=$((tries + 1))
		now=$(date +%s%N)
		[ $(((now - start) / 1000000)) -gt "$slowest_ms" ] && slowest_ms=$(((now - start) / 1000000))
		if [ "$body" = "$want" ]; then
			elapsed_ms=$(((now - t0) / 1000000))
			return 0
		fi
		if [ -z "$body" ]; then failed=$((failed + 1)); else others=$((others + 1)); fi
		[ $((now - t0)) -ge "$limit" ] && return 1
		sleep 0.2
	done
}

# Transitions logged by notify.sh since t0, as "+1.234s b MASTER".
transitions_since() {
	awk -v t0="$t0" '$1 >= t0 { printf "%s+%.3fs %s %s", sep, ($1 - t0) / 1e9, $2, $3; sep = ", " }' \
		"$work/transitions" 2>/dev/null
}

# ----------------------------------------------------- phase 2: crash ---
pid_a=$(cat "$work/a/plb.pid")
t0=$(date +%s%N)
kill -KILL "$pid_a" || die "kill plb on a"
log "SIGKILL plb on a (pid $pid_a)"
# A short connect timeout (0.5 s): while nobody holds the address the
# client's SYNs go unanswered; a new request every 0.7 s at most.
until_host B 20 0.5 || die "client did not get 'host B' within 20 s ($tries tries, $failed failed, $others other answers)"
failover_ms=$elapsed_ms
wait_for 5 "a in FAULT" is_state a FAULT
log "FAILOVER: 'host B' after $(secs "$failover_ms") s ($tries requests: $failed failed, $others other answers)"
log "          keepalived transitions: $(transitions_since)"
has_vip a && die "$vip still on a after the failover"
has_vip b || die "$vip not on b after the failover"

# ------------------------------------------- phase 3: plb back on a ---
t0=$(date +%s%N)
plb_back_on_a
log "plb restarted on a: keepalived a $(state a) after $(( ($(date +%s%N) - t0) / 1000000 )) ms, b $(state b)"
# nopreempt: b keeps the address although a has the higher priority.
answers=
# Watch for 5 s: longer than A's master-down interval (3 x 1 s + skew
# 0.41 s), after which a preempting A would have taken the address.
for i in $(seq 25); do
	answers="$answers $(get | tr -d ' ' || true)"
	sleep 0.2
done
log "client, 25 requests over 5 s:$(tr ' ' '\n' <<<"$answers" | grep . | sort | uniq -c | awk '{ printf " %s x%s", $2, $1 }')"
is_state b MASTER && has_vip b && ! has_vip a || die "b lost the address after a came back (nopreempt not in effect?)"
case $answers in *hostA*) die "client reached a after it came back (nopreempt not in effect?)" ;; esac
log "nopreempt: $vip stays on b (a BACKUP, priority 150 > 100)"

# ------------------------------- phase 4: planned move back to a ---
# A slow download through b (32 MiB at 4 MiB/s, 8 s: more than the
# socket buffers hold) is in flight when the address moves: it shows what
# happens to the connections open on the address.
truncate -s 32M "$work/b/www/big.bin" "$work/a/www/big.bin"
ip netns exec "$ns_c" curl -q -s --noproxy '*' -o /dev/null --limit-rate 4M --max-time 12 \
	-w '%{http_code} %{size_download}' "http://$vip:8080/big.bin" >"$work/download" 2>/dev/null &
dl_pid=$!
sleep 0.5
t0=$(date +%s%N)
touch "$work/b/maintenance"
log "maintenance file on b (plb on b still serving; a 32 MiB download from b in flight)"
# A patient client this time (connect timeout 3 s, as browsers and most
# libraries have more): a SYN sent while the address moves is retransmitted
# after 1 s and reaches A; such a request is slow, not failed.
until_host A 20 3 || die "client did not get 'host A' within 20 s of b's maintenance file"
move_ms=$elapsed_ms
log "PLANNED MOVE: 'host A' after $(secs "$move_ms") s ($tries requests: $failed failed, $others answered by B, slowest $slowest_ms ms)"
log "          keepalived transitions: $(transitions_since)"
rm -f "$work/b/maintenance"
wait_for 10 "b leaves FAULT" is_state b BACKUP
is_state a MASTER && has_vip a || die "a is not master after the planned move"
log "b back to $(state b); a $(state a)"
wait "$dl_pid"
dl_rc=$?
dl_code=000 dl_size=0
read -r dl_code dl_size <"$work/download" || true
case $dl_rc in
0) dl_what="complete" ;;
28) dl_what="stalled until curl's 12 s limit" ;;
56) dl_what="reset" ;;
*) dl_what="curl exit $dl_rc" ;;
esac
log "the download in flight during the move: $dl_what, HTTP $dl_code, $dl_size of 33554432 bytes"

# -------------------- phase 4b: graceful stop of plb on a (shutdown_grace) ---
# TERM to plb on the master: with shutdown_grace = 4 it goes on serving for
# 4 s while /healthz says 503, so its check fails and the address moves to
# b before a's listeners close; no request may fail. Then plb on a comes
# back and the address is moved back to a (maintenance file on b) for
# phase 5.
pid_a=$(cat "$work/a/plb.pid")
t0=$(date +%s%N)
kill -TERM "$pid_a" || die "TERM plb on a"
log "SIGTERM plb on a (shutdown_grace = 4: still serving, /healthz 503)"
until_host B 20 3 || die "client did not get 'host B' within 20 s of TERM to plb on a"
grace_ms=$elapsed_ms
log "GRACEFUL STOP: 'host B' after $(secs "$grace_ms") s ($tries requests: $failed failed, $others answered by A, slowest $slowest_ms ms)"
log "          keepalived transitions: $(transitions_since)"
[ "$failed" -eq 0 ] || die "$failed requests failed during the graceful stop"
for _ in $(seq 100); do kill -0 "$pid_a" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid_a" 2>/dev/null && die "plb on a still running 10 s after TERM"
plb_back_on_a
t0=$(date +%s%N)
touch "$work/b/maintenance"
until_host A 20 3 || die "client did not get 'host A' back within 20 s"
rm -f "$work/b/maintenance"
wait_for 10 "b leaves FAULT" is_state b BACKUP
is_state a MASTER && has_vip a || die "a is not master again before phase 5"
log "address back on a for the next phase"

# ---------------------------------- phase 5: host A leaves the network ---
# As if A lost power or its link: no priority-0 advertisement this time,
# B notices the missing advertisements (3 x advert_int + skew).
t0=$(date +%s%N)
ip -n "$ns_a" link set eth0 down
log "eth0 down in a (host A gone from the network)"
until_host B 20 0.5 || die "client did not get 'host B' within 20 s of A leaving the network"
gone_ms=$elapsed_ms
log "HOST LOSS: 'host B' after $(secs "$gone_ms") s ($tries requests: $failed failed)"
log "          keepalived transitions: $(transitions_since)"

log "PASS: failover after SIGKILL $(secs "$failover_ms") s, planned move $(secs "$move_ms") s, graceful stop with shutdown_grace $(secs "$grace_ms") s, host loss $(secs "$gone_ms") s"
