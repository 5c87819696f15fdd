#!/usr/bin/env bash
# plb's TLS benchmark: in one run, plb (role web_server, enable_ssl, 1 event
# loop) and nginx (worker_processes 1, ssl) serve the same 100-byte and
# 1 MiB files over HTTPS with the same certificate (ECDSA P-256, made here
# with openssl), on loopback only. wrk over keep-alive connections, and
# with "Connection: close" so that every request pays a new connection and
# handshake (wrk resumes its TLS session: SSL_clear keeps it). Prints a
# markdown table of requests/s, p99 latency and plb ÷ nginx, and writes it
# to bench/results/DATE-tls.md.
#
# nginx runs with "ssl_protocols TLSv1.2 TLSv1.3" (its default since
# 1.23.4, and what plb offers), so both speak TLS 1.3 to wrk. Debian 12's
# nginx 1.22 defaults to TLS 1.2 at most: the row nginx-tls12 keeps that
# default, for comparison (a TLS 1.2 session resumption skips the key
# exchange, a TLS 1.3 one does not).
#
#   bench/tls.sh                 (as root on Debian: installs wrk nginx)
#   DURATION=10 CONNS=50 ROUNDS=3 bench/tls.sh
#   KEY=rsa bench/tls.sh         (an RSA-2048 certificate instead)
#   PIN=1 bench/tls.sh           (servers on the last CPU, wrk on the others)
#   PROFILE=/tmp/plb.prof bench/tls.sh   (CPU profile of plb; go tool pprof)
#
# Each target is measured ROUNDS times, alternating, and the best round
# counts, so that a burst of noise on the shared cores does not decide.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-50}
ROUNDS=${ROUNDS:-3}
PIN=${PIN:-0}
KEY=${KEY:-ec}
. bench/lib.sh

need wrk nginx openssl

go build -o "$work/plb" ./cmd/plb

# The certificate both servers use.
case $KEY in
  rsa) keyopt=(-newkey rsa:2048); keyname="RSA-2048" ;;
  *) keyopt=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1); keyname="ECDSA P-256" ;;
esac
openssl req -x509 "${keyopt[@]}" -nodes -days 2 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

static_docroot
start_plb() { # $1 port
  plb_web "$1" "enable_ssl = true
ssl_cert_file = \"$work/cert.pem\"
ssl_key_file = \"$work/key.pem\""
}
start_nginx() { # $1 port, $2 protocols (empty: nginx's default)
  nginx_static "$1" ssl "ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem; ${2:+ssl_protocols $2;}"
}

# Cases: name, file, wrk options.
cases=(ka-100b new-100b ka-1m)
declare -A FILE=([ka-100b]=100b.txt [new-100b]=100b.txt [ka-1m]=1m.bin)
# new-*: "Connection: close", a new connection (and handshake) per request.
targets=(plb-1 nginx nginx-tls12)
declare -A RPS P99
for round in $(seq "$ROUNDS"); do
  for t in "${targets[@]}"; do
    port=$(freeport)
    case $t in
      plb-1) start_plb "$port" ;;
      nginx) start_nginx "$port" "TLSv1.2 TLSv1.3" ;;
      nginx-tls12) start_nginx "$port" "" ;;
    esac
    waitport "$port"
    for c in "${cases[@]}"; do
      url="https://127.0.0.1:$port/static/${FILE[$c]}"
      o=()
      [ "${c%%-*}" = new ] && o=(-H "Connection: close")
      wrk_best "round $round $t $c" "$t,$c" "$url" "${o[@]}"
    done
    stop_target
  done
done

date=$(date -u +%Y-%m-%d)
report="$OUT/$date-tls${pinned:+-$pinned}.md"
{
  echo "## HTTPS ($date, $(nproc) cores, $keyname, wrk -t1 -c$CONNS -d${DURATION}s, best of $ROUNDS${pinned:+, $pinned})"
  echo
  echo "| target | keep-alive 100 B req/s | p99 ms | new handshake 100 B req/s | p99 ms | keep-alive 1 MiB req/s | p99 ms |"
  echo "|---|---|---|---|---|---|---|"
  for t in "${targets[@]}"; do
    echo "| $t | ${RPS[$t,ka-100b]} | ${P99[$t,ka-100b]} | ${RPS[$t,new-100b]} | ${P99[$t,new-100b]} | ${RPS[$t,ka-1m]} | ${P99[$t,ka-1m]} |"
  done
  for n in nginx nginx-tls12; do
    echo "| plb-1 ÷ $n | $(ratio "${RPS[plb-1,ka-100b]}" "${RPS[$n,ka-100b]}") | | $(ratio "${RPS[plb-1,new-100b]}" "${RPS[$n,new-100b]}") | | $(ratio "${RPS[plb-1,ka-1m]}" "${RPS[$n,ka-1m]}") | |"
  done
} | tee "$report"
echo >&2
echo "report: $report" >&2
