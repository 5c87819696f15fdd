#!/bin/sh
# check_plb.sh: keepalived's vrrp_script for plb. Exit 0 when plb serves,
# non-zero when it is dead, hung, draining or taken out by hand, so that
# keepalived gives the floating address to the peer.
#
#   check_plb.sh [BASE_URL [MAINT_FILE]]
#
# BASE_URL default http://127.0.0.1:16000, MAINT_FILE default
# /etc/keepalived/plb.maintenance (also: $PLB_MGMT_URL, $PLB_MAINT_FILE).
# BASE_URL is plb's management service ([service.mgmt] role = "management",
# listen = "127.0.0.1:16000"). The check:
#   GET /healthz      200 -> healthy; 503 (plb is draining after SIGTERM or
#                     "shutdown graceful") or anything else -> unhealthy;
#                     404 (a plb without /healthz) -> fall back to:
#   GET /status.json  200 with a JSON object -> healthy, else unhealthy.
# No answer within 2 s (dead process, full accept queue, hung loop) or a
# refused connection -> unhealthy.
#
# Maintenance: while MAINT_FILE exists the check fails, so keepalived
# moves the address to the peer while plb still serves: touch it, wait
# fall*interval + 2 s, then stop or upgrade plb (docs/ha.md).
#
# $PLB_CHECK_TIMEOUT: curl's --max-time in seconds (default 2; keep it
# below the vrrp_script's timeout).

base=${1:-${PLB_MGMT_URL:-http://127.0.0.1:16000}}
maint=${2:-${PLB_MAINT_FILE:-/etc/keepalived/plb.maintenance}}
t=${PLB_CHECK_TIMEOUT:-2}

if [ -e "$maint" ]; then
	echo "check_plb: $maint exists (maintenance)" >&2
	exit 2
fi

# One request, no retry, no proxy from the environment; prints the status
# code ("000" when there was no HTTP answer) and keeps the body in $body.
get() {
	body=$(curl -q -s --noproxy '*' --connect-timeout 1 --max-time "$t" \
		-w '\n%{http_code}' "$base$1" 2>/dev/null)
	code=${body##*
}
	body=${body%
*}
}

get /healthz
case $code in
200)
	exit 0 ;;
404)
	get /status.json
	case $code:$body in
	'200:{'*) exit 0 ;;
	esac
	echo "check_plb: /healthz 404, /status.json $code" >&2
	exit 1 ;;
*)
	echo "check_plb: /healthz $code" >&2
	exit 1 ;;
esac
