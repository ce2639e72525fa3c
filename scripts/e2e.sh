#!/usr/bin/env bash
# Browser test of the built-in web client: starts a fresh `webchat` (SQLite in a temporary
# directory, on a free 127.0.0.1 port) and drives two headless Chromium users through it with
# tests/e2e/chat.test.mjs. Screenshots and the server log go to target/e2e/.
#
# Installs what it needs when missing: Debian's chromium (apt-get) and playwright-core (npm ci
# in tests/e2e). Settings (environment):
#   WEBCHAT_BIN   server binary (default target/debug/webchat, built or refreshed by cargo)
#   E2E_TIMEOUT   seconds for the server + browser run (default 300)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/target/e2e
RUN_TIMEOUT=${E2E_TIMEOUT:-300}
ACCESS_TTL=20   # short access tokens, so the run sees the client refresh them silently

say() { echo "e2e: $*" >&2; }

# --- Chromium (Debian's package; `npx playwright install` cannot download browsers here) ---
if [ ! -x /usr/bin/chromium ]; then
  say "installing chromium"
  export DEBIAN_FRONTEND=noninteractive
  sudo=""
  if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then sudo="sudo"; fi
  if ! timeout 900 $sudo apt-get install -y chromium >/dev/null; then
    timeout 300 $sudo apt-get update >/dev/null
    timeout 900 $sudo apt-get install -y chromium >/dev/null
  fi
fi

# --- playwright-core, pinned in tests/e2e/package.json and package-lock.json ---
if [ ! -d tests/e2e/node_modules/playwright-core ]; then
  say "installing playwright-core (npm)"
  (
    cd tests/e2e
    if [ -f package-lock.json ]; then
      timeout 300 npm ci --no-audit --no-fund
    else
      timeout 300 npm install --no-audit --no-fund
    fi
  ) >&2
fi

# --- the server binary ---
if [ -n "${WEBCHAT_BIN:-}" ]; then
  BIN=$WEBCHAT_BIN
  [ -x "$BIN" ] || { say "WEBCHAT_BIN=$BIN is not an executable file"; exit 1; }
else
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/webchat
  # Always through cargo: the page is embedded at build time, so a stale binary would test
  # an old client (a no-op when the binary is fresh).
  cargo build -q -p webchat-server --bin webchat >&2
fi
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac

# --- start the server ---
TMP=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  [ -f "$TMP/server.log" ] && cp "$TMP/server.log" "$OUT/server.log" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$OUT"
rm -f "$OUT"/*.png "$OUT"/failure-*

# --auth-rate 0: the test registers and logs in several times from one address.
extra=()
if "$BIN" --help 2>/dev/null | grep -q -- '--auth-rate'; then
  extra+=(--auth-rate 0)
else
  say "note: $BIN has no --auth-rate flag; running with its default login rate limit"
fi

free_port() {
  node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

started=""
for try in 1 2 3; do
  PORT=$(free_port)
  rm -f "$TMP"/webchat.db*
  "$BIN" --listen "127.0.0.1:$PORT" --database-url "sqlite://$TMP/webchat.db" --bcrypt-cost 4 \
    --access-ttl "${ACCESS_TTL}s" --log-format json "${extra[@]}" >"$TMP/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 150); do   # up to 30 s (migrations on a cold disk)
    if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/livez" 2>/dev/null; then started=1; break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.2
  done
  [ -n "$started" ] && break
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  say "the server did not come up on port $PORT (try $try); its log:"
  tail -n 20 "$TMP/server.log" >&2 || true
done
if [ -z "$started" ]; then say "FAILED: could not start $BIN"; exit 1; fi
BASE="http://127.0.0.1:$PORT"

# The page must come from the server itself (same origin as the API and /ws/).
ctype=$(curl -fsS -o /dev/null -w '%{content_type}' "$BASE/" 2>/dev/null || true)
case $ctype in
  text/html*) ;;
  *) say "FAILED: GET $BASE/ does not serve the web client (content type '${ctype:-none}')"; exit 1 ;;
esac

say "server $BIN on $BASE (log: $OUT/server.log)"
status=0
E2E_OUT=$OUT E2E_ACCESS_TTL=$ACCESS_TTL timeout --kill-after=10 "$RUN_TIMEOUT" \
  node tests/e2e/chat.test.mjs "$BASE" || status=$?
if [ "$status" = 124 ] || [ "$status" = 137 ]; then
  say "FAILED: the browser test did not finish within ${RUN_TIMEOUT} s"
  echo "e2e: 0 passed, 1 failed"
fi
if [ "$status" != 0 ]; then
  say "server log (last 30 lines):"
  tail -n 30 "$TMP/server.log" >&2 || true
fi
exit "$status"
