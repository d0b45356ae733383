#!/usr/bin/env bash
# infra/test.sh — run every test against real servers: installs and starts PostgreSQL,
# RabbitMQ and Redis on loopback (infra/up.sh), then runs the workspace's tests. Each test
# makes its own database, queue namespace and Redis prefix, so they run in parallel.
# Then the API's contract (infra/contract.sh: the OpenAPI document validated, schemathesis on
# a live api). Extra arguments go to `cargo test` (e.g. `infra/test.sh -p pushfleet-api`) and
# skip the contract run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Test data is throwaway: trade durability for speed on this server.
PF_PG_FAST=1 ./infra/up.sh
# shellcheck disable=SC1091
source .pushfleet/env
# Test databases from earlier runs.
psql "$DATABASE_URL" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'pf\_test\_%'" \
    | while read -r db; do psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null || true; done
log="$PUSHFLEET_HOME/logs/test-run.log"
mkdir -p "$(dirname "$log")"
cargo test --workspace "$@" 2>&1 | tee "$log"
# The API against its OpenAPI document: validation, then schemathesis on a live api. Only
# for a whole run (arguments select part of the workspace).
if [[ $# -eq 0 ]]; then
    ./infra/contract.sh 2>&1 | tee "$PUSHFLEET_HOME/logs/contract.log"
fi
# One closing line for the whole run: cargo prints one "test result" per test binary, and the
# last of them is often a crate's empty doc-test run.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
