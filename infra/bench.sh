#!/usr/bin/env bash
# infra/bench.sh [pushfleet-loadgen flags] — the standard benchmark, one command: start the
# servers if needed (infra/up.sh), build the fleet in release mode, then run
# pushfleet-loadgen: RabbitMQ's own ceiling, a 100,000-recipient campaign over e-mail, Teams
# and SMS at full rate, a paced campaign for latency, and 1, 2 and 4 replicas of each sender.
# The loadgen starts its own simulator and services (api on 8180, admin ports 9200+,
# simulator on 18180/12625) in its own database (pushfleet_bench) and queue namespace.
# Writes target/bench/loadtest.md (ready for docs/benchmarks.md) and
# target/bench/loadtest-rate.svg; exits non-zero unless every audit is clean.
# A smaller run: infra/bench.sh --recipients 20000 --scale-recipients 5000
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./infra/up.sh
# shellcheck disable=SC1091
source .pushfleet/env
echo "==> building the fleet (release)"
cargo build --release --workspace --bins --quiet
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
echo "==> running the benchmark"
"$TARGET_DIR/release/pushfleet-loadgen" --out "$TARGET_DIR/bench" "$@"
