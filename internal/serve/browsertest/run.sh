#!/usr/bin/env bash
# Browser test of `mmadac serve`. It builds mmadac and starts the server with
# the small test models on a free loopback port. test.cjs then drives the page
# with Debian's headless Chromium through playwright-core. Last, the script
# stops the server with SIGTERM and checks that it shut down cleanly.
#
# Needs: go, node and npm, and /usr/bin/chromium (apt-get install -y chromium).
# playwright-core is installed into this folder without its install scripts,
# so no browser is downloaded.
#
# Environment:
#   ARTIFACTS    screenshot folder (default: out/browser-artifacts at the repository root)
#   CHROMIUM     browser executable (default: /usr/bin/chromium)
#   MMADAC_BIN   use this mmadac binary instead of building one
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
export ARTIFACTS=${ARTIFACTS:-$root/out/browser-artifacts}
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
export MMU_IMAGE=$root/testdata/images/dog.png

if [ ! -x "$CHROMIUM" ]; then
  echo "run.sh: $CHROMIUM not found; install Debian's chromium (apt-get install -y chromium) or set CHROMIUM" >&2
  exit 1
fi
for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is not installed" >&2; exit 1; }
done
if [ ! -f "$here/node_modules/playwright-core/package.json" ]; then
  (cd "$here" && npm install --ignore-scripts --no-audit --no-fund)
fi

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

bin=${MMADAC_BIN:-}
if [ -z "$bin" ]; then
  bin=$work/mmadac
  (cd "$root" && go build -o "$bin" ./cmd/mmadac)
fi
if ! "$bin" serve --help >/dev/null 2>&1; then
  echo "run.sh: $bin has no serve command; register serve.NewCommand() in internal/cli/root.go" >&2
  exit 1
fi

# Port 0 lets the kernel pick a free port; the server logs the address.
log=$work/server.log
: >"$log" # exists before the polling below reads it
(cd "$root" && exec "$bin" serve --model testdata/upstream-tiny/mmada --vq-model testdata/upstream-tiny/magvit \
  --backend interp --listen 127.0.0.1:0 --t2i-text-length 16 --preview-every 1) >"$log" 2>&1 &
server_pid=$!
address=
for _ in $(seq 1 300); do
  address=$(sed -n 's/.*msg="server started" address=\([0-9.:]*\).*/\1/p' "$log" | head -n 1)
  [ -n "$address" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "run.sh: the server exited:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$address" ]; then
  echo "run.sh: the server did not start within 30 s:" >&2
  cat "$log" >&2
  exit 1
fi
echo "server on http://$address"

status=0
MMADAC_URL="http://$address" node "$here/test.cjs" || status=$?

kill -TERM "$server_pid"
wait "$server_pid" || { echo "run.sh: the server exited with status $? after SIGTERM" >&2; status=1; }
server_pid=
if ! grep -q 'msg="server stopped"' "$log"; then
  echo "run.sh: the server log has no clean stop" >&2
  status=1
fi
cp "$log" "$ARTIFACTS/server.log" 2>/dev/null || true
echo "screenshots and server log in $ARTIFACTS"
exit "$status"
