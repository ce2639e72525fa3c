#!/usr/bin/env bash
# The domain crate is reused by other services: it must not depend on a framework or on I/O.
set -euo pipefail
forbidden='^(diesel|diesel_migrations|actix-web|actix-ws|actix-rt|tokio|serde|serde_json|r2d2|bcrypt|jsonwebtoken|reqwest|async-nats) '
leaks=$(cargo tree -q -p webchat-domain -e normal --prefix none | grep -E "$forbidden" | sort -u || true)
if [ -n "$leaks" ]; then
  echo "error: webchat-domain depends on forbidden crates:" >&2
  echo "$leaks" >&2
  exit 1
fi
echo "webchat-domain dependency gate: ok"
