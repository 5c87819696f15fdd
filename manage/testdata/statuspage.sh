#!/usr/bin/env bash
# Renders plb's status page in headless Chromium after some traffic and
# writes the screenshot (default docs/status-page.png), failing if it is
# missing or blank. Needs: go, curl, chromium (apt-get install chromium).
#   manage/testdata/statuspage.sh [OUT.png]
# Uses 127.0.0.1 ports 18180-18189.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-docs/status-page.png}
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
go build -o "$tmp/plb" ./cmd/plb
mkdir -p "$tmp/www"
echo hello > "$tmp/www/index.html"
cat > "$tmp/plb.conf" <<CONF
CREATE POOL web
  POOL web ADD 127.0.0.1:18181
  POOL web ADD 127.0.0.1:18182
  POOL web ADD 127.0.0.1:18183
  SET web.balance_method = round_robin
  SET web.server_retry = 2
CREATE POOL spare
  POOL spare ADD 127.0.0.1:18181
CREATE SERVICE balancer
  SET role = reverse_proxy
  SET listen = 127.0.0.1:18180
  SET pool = web
  SET persist_backend = on
ENABLE balancer
CREATE SERVICE files_a
  SET role = web_server
  SET listen = 127.0.0.1:18181
  SET docroot = $tmp/www
ENABLE files_a
CREATE SERVICE files_b
  SET role = web_server
  SET listen = 127.0.0.1:18182
  SET docroot = $tmp/www
ENABLE files_b
CREATE SERVICE standby
  SET role = reverse_proxy
  SET pool = spare
CREATE SERVICE mgmt
  SET role = management
  SET listen = 127.0.0.1:18189
ENABLE mgmt
CONF
"$tmp/plb" -c "$tmp/plb.conf" &
pid=$!
for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:18189/metrics && break; sleep 0.1; done
# Traffic: pages, misses, and a dead node (:18183) that goes down.
for i in $(seq 40); do
  curl -s -o /dev/null http://127.0.0.1:18180/
  curl -s -o /dev/null http://127.0.0.1:18180/missing-$i
done
chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
  --disable-sync --no-first-run --user-data-dir="$tmp/profile" --screenshot="$tmp/shot.png" \
  --window-size=1280,900 http://127.0.0.1:18189/ >/dev/null 2>&1 || true
size=$(stat -c %s "$tmp/shot.png" 2>/dev/null || echo 0)
if [ "$size" -lt 20000 ]; then
  echo "statuspage: screenshot missing or blank ($size bytes)" >&2
  exit 1
fi
cp "$tmp/shot.png" "$out"
echo "statuspage: wrote $out ($size bytes)"
