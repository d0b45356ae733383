#!/usr/bin/env bash
# infra/bench-audiences.sh — the audiences benchmark of docs/benchmarks.md: imports 100,000
# then 1,000,000 people as CSV through a release build of the api, then times a
# three-criterion preview and the freezing of 200,000 people. Prints a markdown table.
# BENCH_PEOPLE / BENCH_WARMUP_PEOPLE change the sizes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./infra/up.sh >/dev/null
# shellcheck disable=SC1091
source .pushfleet/env
cargo build --release --locked -p pushfleet-api -p pushfleet-loadtest --bin pushfleet-api --bin pushfleet-audience-bench
target_dir="${CARGO_TARGET_DIR:-target}"
BENCH_API_BIN="$target_dir/release/pushfleet-api" "$target_dir/release/pushfleet-audience-bench"
