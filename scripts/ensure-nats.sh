#!/usr/bin/env bash
# Makes sure NATS answers on 127.0.0.1:4222 (the bus between nodes, SPEC §5), starting the
# machine's nats-server if it is down. The cluster tests need it and never skip.
set -euo pipefail

up() { (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; }

if up; then exit 0; fi
echo "NATS is down on 127.0.0.1:4222; starting it" >&2
server=$(command -v nats-server || echo /usr/sbin/nats-server)
if [ -x "$server" ]; then
  mkdir -p /var/lib/nats-server 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec "$server" -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log 2>/dev/null \
    || ("$server" -a 127.0.0.1 -p 4222 >/dev/null 2>&1 &)
fi
for _ in $(seq 1 30); do
  if up; then exit 0; fi
  sleep 1
done
echo "error: NATS is not reachable on 127.0.0.1:4222 (the cluster tests need it)" >&2
exit 1
