#!/usr/bin/env bash
# infra/bench-report.sh — the report and click benchmark of docs/benchmarks.md: a campaign of
# 1,000,000 deliveries with clicks and opens in a fresh database, its report, a recipients
# page and the CSV timed through a release build of the api; then the click redirect under
# an open-loop load of 5,000 clicks/s while outcomes are written, and every click found in
# the database afterwards. Prints a markdown table. BENCH_DELIVERIES, BENCH_CLICK_RATE and
# BENCH_CLICK_SECONDS change the sizes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./infra/up.sh >/dev/null
# shellcheck disable=SC1091
source .pushfleet/env
cargo build --release --locked -p pushfleet-api -p pushfleet-loadtest --bin pushfleet-api --bin pushfleet-report-bench
target_dir="${CARGO_TARGET_DIR:-target}"
BENCH_API_BIN="$target_dir/release/pushfleet-api" "$target_dir/release/pushfleet-report-bench"
