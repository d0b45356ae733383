#!/usr/bin/env bash
# infra/demo.sh — quick start: install and start the servers, build the fleet, apply the
# schema, start the simulator and the six services, and run a demo campaign over e-mail,
# Teams and SMS to completion. The last line printed is `delivered N/N`.
# The fleet keeps running afterwards (API on http://127.0.0.1:8080); stop it with
# infra/stop.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./infra/up.sh
# shellcheck disable=SC1091
source .pushfleet/env
echo "==> building the fleet"
cargo build --workspace --bins --quiet
bin="${CARGO_TARGET_DIR:-target}/debug"
echo "==> applying migrations"
RUST_LOG=warn "$bin/pushfleet-api" migrate
echo "==> creating an admin API key for the demo"
PUSHFLEET_API_KEY="$(RUST_LOG=warn "$bin/pushfleet-api" api-key create --role admin --name demo | tail -n 1)"
export PUSHFLEET_API_KEY
key_file="$PUSHFLEET_HOME/api-key"
(umask 077 && printf '%s\n' "$PUSHFLEET_API_KEY" >"$key_file")
echo "    saved in $key_file; use it as:"
echo "    curl -H \"Authorization: Bearer \$(cat $key_file)\" http://127.0.0.1:8080/v1/segments"
echo "==> starting the simulator and the six services"
./infra/fleet.sh restart
echo "==> running the demo campaign"
"$bin/pushfleet-demo"
