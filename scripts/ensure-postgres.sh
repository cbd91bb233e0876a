#!/usr/bin/env bash
# Start the machine's PostgreSQL (127.0.0.1:5432, trust auth, database `test`) if it is down.
set -u
if command -v pg_isready >/dev/null 2>&1 && pg_isready -h 127.0.0.1 -p 5432 -q; then
  exit 0
fi
if [ -d /etc/postgresql ]; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  for _ in $(seq 1 30); do
    pg_isready -h 127.0.0.1 -p 5432 -q && exit 0
    sleep 1
  done
fi
echo "warning: PostgreSQL is not reachable on 127.0.0.1:5432; PostgreSQL tests will be skipped" >&2
exit 0
