#!/usr/bin/env bash
# Makes sure PostgreSQL answers on 127.0.0.1:5432, starting the local cluster if it is down.
# The tests never skip PostgreSQL: when it cannot be had, this fails loudly.
set -euo pipefail

up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }

if up; then exit 0; fi
echo "PostgreSQL is down on 127.0.0.1:5432; starting it" >&2
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  for version in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
fi
for _ in $(seq 1 30); do
  if up; then exit 0; fi
  sleep 1
done
echo "error: PostgreSQL is not reachable on 127.0.0.1:5432 (the tests need it, user postgres, trust auth)" >&2
exit 1
