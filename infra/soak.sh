#!/usr/bin/env bash
# infra/soak.sh — runs every fault test (kill -9 of each binary, SIGTERM, server restarts,
# poison) SOAK_RUNS times each (default 20), one at a time, and prints a table of runs,
# failures and repeated provider calls per test. A test reports its repeats with a line
# "soak: duplicates=N bound=M" (the most its crash may cause); a run over its bound counts
# as a failure even if the test passed. Exits non-zero if anything failed.
#
#   SOAK_RUNS=5 infra/soak.sh              # fewer runs
#   SOAK_FILTER=kill infra/soak.sh         # only the tests whose name contains "kill"
#   infra/soak.sh > soak.md                # the table is Markdown
# Logs of failed runs: .pushfleet/logs/soak/<test>-<run>.log
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs="${SOAK_RUNS:-20}"
filter="${SOAK_FILTER:-}"

PF_PG_FAST=1 ./infra/up.sh >&2
# shellcheck disable=SC1091
source .pushfleet/env
logs="$PUSHFLEET_HOME/logs/soak"
mkdir -p "$logs"

# package  test-target  test-name
tests=(
    "pushfleet-evaluator kill_evaluator kill_9_mid_publish_loses_nothing_and_delivers_each_once"
    "pushfleet-scheduler kill_scheduler kill_9_while_firing_campaigns_loses_none_and_sends_each_message_once"
    "pushfleet-email-sender sigterm kill_9_mid_campaign_loses_nothing_and_repeats_at_most_the_jobs_in_flight"
    "pushfleet-email-sender sigterm sigterm_mid_campaign_loses_nothing"
    "pushfleet-sms-sender kill_sender kill_9_mid_campaign_loses_nothing_and_repeats_at_most_the_jobs_in_flight"
    "pushfleet-teams-sender kill_sender kill_9_mid_campaign_loses_nothing_and_repeats_at_most_the_jobs_in_flight"
    "pushfleet-testkit e2e a_sender_stopped_mid_campaign_loses_nothing_and_finishes_after_restart"
    "pushfleet-testkit batches a_redelivered_batch_sends_only_the_jobs_not_yet_recorded"
    "pushfleet-testkit batches a_sender_stopped_mid_batch_acks_it_and_hands_back_only_the_jobs_not_started"
    "pushfleet-testkit restarts rabbitmq_restart_mid_campaign_loses_nothing"
    "pushfleet-testkit restarts rabbitmq_killed_mid_campaign_loses_nothing"
    "pushfleet-testkit restarts redis_restart_mid_campaign_loses_nothing"
    "pushfleet-testkit restarts postgres_restart_mid_campaign_loses_nothing"
    "pushfleet-testkit poison a_recipient_whose_stored_address_no_longer_parses_fails_alone"
    "pushfleet-testkit poison a_bad_deferred_delivery_fails_alone_and_the_scheduler_publishes_the_rest"
    "pushfleet-testkit poison an_evaluate_job_failing_every_time_is_dead_lettered_then_replayable"
    "pushfleet-testkit poison a_sender_that_cannot_read_the_retry_context_fails_the_delivery_instead_of_looping"
    "pushfleet-testkit campaign_controls a_paused_campaign_sends_nothing_and_resumes_where_it_stopped"
    "pushfleet-testkit campaign_controls a_cancelled_campaign_ends_its_unsent_deliveries_and_sends_nothing_more"
    "pushfleet-testkit tracking no_click_is_lost_while_postgres_is_unreachable"
    "pushfleet-testkit send_window a_window_campaign_resumed_outside_its_hours_waits_for_them"
)

# Build each test binary once; remember where cargo put it.
declare -A binary dir
for spec in "${tests[@]}"; do
    read -r pkg target _ <<<"$spec"
    key="$pkg/$target"
    [[ -n "${binary[$key]:-}" ]] && continue
    path="$(cargo test -p "$pkg" --test "$target" --no-run --message-format=json 2>/dev/null \
        | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)"
    [[ -x "$path" ]] || { echo "soak: cannot build $key" >&2; exit 2; }
    binary[$key]="$path"
    # Each package's tests run from its own directory, as cargo runs them.
    dir[$key]="$(cargo metadata --no-deps --format-version 1 2>/dev/null \
        | sed 's/},{/}\n{/g' | grep "\"name\":\"$pkg\"" \
        | sed -n 's/.*"manifest_path":"\([^"]*\)\/Cargo.toml".*/\1/p' | head -n 1)"
done

echo "| test | runs | failed | over bound | repeated calls (total / most in a run) | bound | time per run |"
echo "|---|---|---|---|---|---|---|"
bad=0
for spec in "${tests[@]}"; do
    read -r pkg target name <<<"$spec"
    [[ -n "$filter" && "$name" != *"$filter"* && "$target" != *"$filter"* ]] && continue
    bin="${binary[$pkg/$target]}"
    failed=0 over=0 dup_total=0 dup_max=0 bound="-" reported=0
    start=$SECONDS
    for ((i = 1; i <= runs; i++)); do
        log="$logs/$target-$name-$i.log"
        ok=0
        # Passed means exit 0 and exactly this one test run (a renamed test would run none).
        if (cd "${dir[$pkg/$target]:-.}" && "$bin" --exact "$name" --nocapture --test-threads 1) >"$log" 2>&1 \
            && grep -q "test result: ok. 1 passed" "$log"; then
            ok=1
        fi
        line="$(grep -o 'soak: duplicates=[0-9]* bound=[0-9]*' "$log" | tail -n 1 || true)"
        if [[ -n "$line" ]]; then
            reported=1
            d="${line#*duplicates=}"; d="${d%% *}"
            bound="${line##*bound=}"
            dup_total=$((dup_total + d))
            ((d > dup_max)) && dup_max=$d
            if ((d > bound)); then over=$((over + 1)); ok=0; fi
        fi
        if ((ok)); then rm -f "$log"; else failed=$((failed + 1)); fi
    done
    per_run=$(((SECONDS - start) / runs))
    dups="-"
    ((reported)) && dups="$dup_total / $dup_max"
    echo "| ${pkg#pushfleet-}: $target::$name | $runs | $failed | $over | $dups | $bound | ${per_run}s |"
    ((failed > 0)) && bad=1
done
exit "$bad"
