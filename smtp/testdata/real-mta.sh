#!/usr/bin/env bash
# plb's smtp_proxy against a real MTA: swaks sends mail through plb into a
# private Postfix instance on loopback (its own config, queue and data
# directories under a temp dir, its own log file, listeners on free ports,
# every message discarded), and the script checks from Postfix's log that
# each message was accepted and discarded, and which client address Postfix
# saw:
#
#   a   client_ip_forwarding = none      Postfix sees plb (127.0.0.1)
#   b1  proxy_v1 (smtpd_upstream_proxy_protocol = haproxy)   the client
#   b2  proxy_v2 (same, Postfix >= 3.5)                      the client
#   c   xclient  (smtpd_authorized_xclient_hosts = 127.0.0.1) the client
#
# swaks connects from 127.0.0.2 (Linux routes all of 127/8 to lo), so the
# client's address differs from plb's own 127.0.0.1.
#
#   smtp/testdata/real-mta.sh          (as root on Debian: installs swaks postfix)
#   KEEP=1 smtp/testdata/real-mta.sh   (keep the temp dir, print its name)
#
# It does not touch /etc/postfix nor port 25: `postfix -c DIR` runs the
# private instance, stopped on exit with plb.
set -euo pipefail
cd "$(dirname "$0")/../.."
KEEP=${KEEP:-0}
CLIENT_IP=127.0.0.2
PLB_IP=127.0.0.1

need=()
command -v swaks >/dev/null || need+=(swaks)
[ -x /usr/sbin/postfix ] || need+=(postfix)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  # No system mail configuration: the package must not set up /etc/postfix's
  # main.cf nor start a system Postfix on port 25.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
export PATH=/usr/sbin:$PATH

work=$(mktemp -d /tmp/plb-real-mta.XXXXXX)
chmod 755 "$work" # Postfix's unprivileged daemons reach the data directory by name
pf=$work/postfix
etc=$pf/etc
pids=()
failed=0
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -f "$pf/queue/pid/master.pid" ]; then
    local mp; mp=$(tr -d ' ' < "$pf/queue/pid/master.pid")
    timeout 30 postfix -c "$etc" stop >/dev/null 2>&1 || true
    for _ in $(seq 100); do kill -0 "$mp" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$mp" 2>/dev/null && { kill -KILL "$mp" 2>/dev/null || true; sleep 0.5; }
  fi
  if [ "$rc" != 0 ] || [ "$failed" != 0 ]; then
    echo "--- plb log (tail)" >&2; tail -n 30 "$work/plb.log" >&2 2>/dev/null || true
    echo "--- postfix log (tail)" >&2; tail -n 40 "$pf/maillog" >&2 2>/dev/null || true
  fi
  if [ "$KEEP" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

go build -o "$work/plb" ./cmd/plb

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# waitlisten PORT: bounded wait for a listener, without connecting to it (a
# probe connection would show up in Postfix's log, or make plb dial a
# backend).
waitlisten() {
  for _ in $(seq 150); do
    [ -n "$(ss -Hltn "sport = :$1")" ] && return 0
    sleep 0.1
  done
  echo "port $1 never opened" >&2; return 1
}

# Postfix >= 3.5 reads PROXY protocol version 2 too.
pfver=$(postconf -d -h mail_version)
v2=0
awk -v v="$pfver" 'BEGIN{ split(v, a, "."); exit !(a[1] > 3 || (a[1] == 3 && a[2] >= 5)) }' && v2=1
cases=(a b1 c)
[ "$v2" = 1 ] && cases=(a b1 b2 c)
declare -A FWD=([a]=none [b1]=proxy_v1 [b2]=proxy_v2 [c]=xclient)
declare -A OPTS=(
  [a]=""
  [b1]="-o smtpd_upstream_proxy_protocol=haproxy"
  [b2]="-o smtpd_upstream_proxy_protocol=haproxy"
  [c]="-o smtpd_authorized_xclient_hosts=$PLB_IP"
)
# What Postfix must log as the client of each case's message.
declare -A WANT=([a]=$PLB_IP [b1]=$CLIENT_IP [b2]=$CLIENT_IP [c]=$CLIENT_IP)
declare -A PFPORT PLBPORT
for c in "${cases[@]}"; do PFPORT[$c]=$(freeport); PLBPORT[$c]=$(freeport); done

# The private Postfix: everything it accepts is discarded.
mkdir -p "$etc" "$pf/queue" "$pf/data"
chown postfix "$pf/data"
{
  cat <<EOF
compatibility_level = 3.6
queue_directory = $pf/queue
data_directory = $pf/data
mynetworks = 127.0.0.0/8
maillog_file = $pf/maillog
maillog_file_prefixes = $work
EOF
  grep -v '^#' smtp/testdata/postfix-main.cf
} > "$etc/main.cf"
{
  echo "# service type  private unpriv  chroot  wakeup  maxproc command + args"
  for c in "${cases[@]}"; do
    echo "127.0.0.1:${PFPORT[$c]} inet n - n - - smtpd -o syslog_name=postfix/case-$c ${OPTS[$c]}"
  done
  grep -v '^#' smtp/testdata/postfix-master.cf
} > "$etc/master.cf"
timeout 60 postfix -c "$etc" check
timeout 60 postfix -c "$etc" start >/dev/null 2>&1 || { echo "postfix did not start" >&2; cat "$pf/maillog" >&2 2>/dev/null; exit 1; }
for c in "${cases[@]}"; do waitlisten "${PFPORT[$c]}"; done

# plb: one smtp_proxy service per case, each in front of its own listener.
{
  echo "[global]"
  echo "workers = 1"
  echo "log_level = 1"
  for c in "${cases[@]}"; do
    cat <<EOF
[pool.$c]
nodes = ["127.0.0.1:${PFPORT[$c]}"]
[service.mx_$c]
role = "smtp_proxy"
listen = "127.0.0.1:${PLBPORT[$c]}"
pool = "$c"
client_ip_forwarding = "${FWD[$c]}"
smtp_hostname = "plb.test"
EOF
  done
} > "$work/plb.toml"
# The config loader may still be in progress elsewhere: say so plainly.
if ! "$work/plb" -n -c "$work/plb.toml" >/dev/null 2>"$work/plb-n.err"; then
  echo "plb refuses the configuration:" >&2; cat "$work/plb-n.err" >&2; exit 1
fi
"$work/plb" -c "$work/plb.toml" 2>"$work/plb.log" & pids+=($!)
for c in "${cases[@]}"; do waitlisten "${PLBPORT[$c]}"; done

# waitlog REGEX: bounded wait for a line in Postfix's log.
waitlog() {
  for _ in $(seq 100); do
    grep -Eq "$1" "$pf/maillog" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
re() { sed 's/[.[\]]/\\&/g' <<<"$1"; } # escape an address for grep -E

declare -A RESULT
for c in "${cases[@]}"; do
  out=$(timeout 60 swaks --server 127.0.0.1 --port "${PLBPORT[$c]}" \
    --local-interface "$CLIENT_IP" --helo client.plb.test \
    --from "sender@plb.test" --to "rcpt-$c@plb.test" \
    --header "Subject: plb real-mta case $c (${FWD[$c]})" --timeout 20 2>&1) && rc=0 || rc=$?
  qid=$(sed -n 's/^ *<- *250 .*queued as \([0-9A-Za-z]*\).*/\1/p' <<<"$out" | head -n1)
  why=""
  if [ "$rc" != 0 ] || [ -z "$qid" ]; then
    why="swaks exit $rc, no '250 ... queued as' after DATA"
    echo "$out" | tail -n 15 >&2
  elif ! waitlog "postfix/case-$c/smtpd\[[0-9]+\]: $qid: client=[^ ]*\[$(re "${WANT[$c]}")\]"; then
    why="postfix logged another client for $qid: $(grep -Eo "$qid: client=[^ ,]*" "$pf/maillog" | head -n1)"
  elif ! waitlog "postfix/discard\[[0-9]+\]: $qid: to=<rcpt-$c@plb\.test>.*status=sent"; then
    why="$qid not discarded"
  fi
  # The connect lines of this listener: with PROXY the client's address is
  # the one connecting; with XCLIENT Postfix logs plb's connect, then the
  # client's address on the message and on the disconnect.
  connects=$(grep -Eo "postfix/case-$c/smtpd\[[0-9]+\]: connect from [^ ]*" "$pf/maillog" | sed 's/.*connect from //' | sort -u | tr '\n' ' ')
  if [ "${WANT[$c]}" = "$CLIENT_IP" ] && [ -z "$why" ]; then
    what=connect
    [ "${FWD[$c]}" = xclient ] && what=disconnect
    waitlog "postfix/case-$c/smtpd\[[0-9]+\]: $what from [^ ]*\[$(re "$CLIENT_IP")\]" ||
      why="no '$what from ...[$CLIENT_IP]'"
  fi
  if [ -z "$why" ]; then
    RESULT[$c]="ok    queued as $qid, client=${WANT[$c]}, connect from: ${connects% }"
    [ "${FWD[$c]}" = xclient ] && RESULT[$c]+=" (plb), then XCLIENT ADDR=$CLIENT_IP"
  else
    RESULT[$c]="FAIL  $why"; failed=1
  fi
done

echo "Postfix $pfver (private instance), plb smtp_proxy, swaks from $CLIENT_IP"
for c in "${cases[@]}"; do
  printf '  %-3s %-9s %s\n' "$c" "${FWD[$c]}" "${RESULT[$c]}"
done
[ "$v2" = 1 ] || echo "  b2  proxy_v2  skipped: Postfix $pfver < 3.5"
if [ "$failed" != 0 ]; then echo "FAIL"; exit 1; fi
echo "PASS"
