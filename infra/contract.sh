#!/usr/bin/env bash
# infra/contract.sh — checks the API against its own contract: the OpenAPI document that
# `pushfleet-api openapi` prints must validate (openapi-spec-validator), and schemathesis
# (its examples, coverage, fuzzing and stateful phases) must find no server error, no
# undocumented status, no response that breaks its schema and no wrong content type, on a
# live api over a fresh database. Installs both tools (PyPI) in .pushfleet/venv.
#
#   CONTRACT_EXAMPLES=200 infra/contract.sh     # more examples per operation (default 100)
# Needs the servers of infra/up.sh; infra/test.sh runs it after the Rust tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
examples="${CONTRACT_EXAMPLES:-100}"

PF_PG_FAST=1 ./infra/up.sh >/dev/null
# shellcheck disable=SC1091
source .pushfleet/env

venv="$PUSHFLEET_HOME/venv"
if [[ ! -x "$venv/bin/schemathesis" ]]; then
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check 'schemathesis>=4,<5' openapi-spec-validator
fi

cargo build -q -p pushfleet-api
api="${CARGO_TARGET_DIR:-target}/debug/pushfleet-api"
doc="$PUSHFLEET_HOME/openapi.json"
"$api" openapi >"$doc"
"$venv/bin/openapi-spec-validator" "$doc"

db="pf_contract_$$"
base_url="${DATABASE_URL%/*}"
psql "$DATABASE_URL" -qc "CREATE DATABASE $db"
log="$PUSHFLEET_HOME/logs/contract-api.log"
port=$((20000 + $$ % 10000))
admin_port=$((port + 1))
cleanup() {
    [[ -n "${api_pid:-}" ]] && kill "$api_pid" 2>/dev/null && wait "$api_pid" 2>/dev/null
    psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
}
trap cleanup EXIT
DATABASE_URL="$base_url/$db" "$api" migrate >/dev/null
DATABASE_URL="$base_url/$db" API_ADDR="127.0.0.1:$port" ADMIN_ADDR="127.0.0.1:$admin_port" PUBLIC_ADDR=127.0.0.1:0 \
    API_PUBLIC_URL="http://127.0.0.1:$port" RUST_LOG=warn "$api" >"$log" 2>&1 &
api_pid=$!
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$admin_port/readyz" >/dev/null 2>&1 && break
    kill -0 "$api_pid" 2>/dev/null || { echo "contract: the api did not start (see $log)" >&2; exit 1; }
    sleep 0.1
done

key="$(DATABASE_URL="$base_url/$db" RUST_LOG=warn "$api" api-key create --role admin --name contract | tail -n 1)"

# Schemathesis prints its own summary; its exit code is the verdict. It calls as an admin
# (the role matrix is tested in shared/testkit/tests/identity.rs).
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
    --header "Authorization: Bearer $key" \
    --checks not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance \
    --max-examples "$examples" --no-color
echo "contract: the OpenAPI document validates and schemathesis found nothing"
