#!/usr/bin/env bash
# infra/stop.sh — stop everything the quick start started: the services, then the servers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./infra/fleet.sh stop
./infra/down.sh
