#!/usr/bin/env bash
# Checks deploy/nginx.conf for real: two webchat nodes on one PostgreSQL database joined by
# NATS, behind nginx on 127.0.0.1:8090. HTTP through nginx, a WebSocket through nginx to
# each node, a message crossing nodes, then one node killed and the service still up.
# Needs PostgreSQL and NATS; installs Debian's nginx-light when nginx is missing. Bounded in time.
# WEBCHAT_BIN: the server binary (default target/debug/webchat, refreshed by cargo).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  echo "installing nginx-light" >&2
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 apt-get install -y nginx-light >/dev/null || { timeout 300 apt-get update >/dev/null; timeout 300 apt-get install -y nginx-light >/dev/null; }
  # The package's own service (port 80) is not ours to run.
  nginx -s stop 2>/dev/null || true
fi
export PATH="$PATH:/usr/sbin"
scripts/ensure-postgres.sh
scripts/ensure-nats.sh
bin=${WEBCHAT_BIN:-${CARGO_TARGET_DIR:-target}/debug/webchat}
[ -n "${WEBCHAT_BIN:-}" ] || cargo build -q -p webchat-server --bin webchat
db="webchat_nginx_$RANDOM$RANDOM"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  nginx -c "$PWD/deploy/nginx.conf" -s stop 2>/dev/null || true
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE \"$db\"" >/dev/null
url="postgres://postgres@127.0.0.1:5432/$db"
for port in 8081 8082; do
  BCRYPT_COST=4 RUST_LOG=warn "$bin" --listen "127.0.0.1:$port" --database-url "$url" \
    --bus nats://127.0.0.1:4222 >"/tmp/webchat-node-$port.log" 2>&1 &
  pids+=($!)
done
nginx -c "$PWD/deploy/nginx.conf"
for _ in $(seq 1 50); do curl -sf http://127.0.0.1:8090/readyz >/dev/null && break; sleep 0.2; done
timeout 120 python3 scripts/nginx_smoke.py "${pids[0]}"
echo "nginx smoke: ok"
