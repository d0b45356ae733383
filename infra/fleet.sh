#!/usr/bin/env bash
# infra/fleet.sh start|stop|status — run the provider simulator and the six services as
# local background processes (logs in $PUSHFLEET_HOME/logs, pids in $PUSHFLEET_HOME/run).
# Expects the servers from infra/up.sh and binaries from `cargo build` (PF_PROFILE=release
# to use target/release). Services are configured only through the environment; their
# defaults already point at the local servers and at the simulator.
set -euo pipefail

# shellcheck disable=SC2034  # read by lib.sh
PF_USE_SAVED_ENV=1
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/lib.sh"

PROFILE="${PF_PROFILE:-debug}"
# The simulator posts Twilio status callbacks here (signed with its auth token, which is
# the api's default), so the local fleet exercises the whole SMS status path.
export TWILIO_STATUS_CALLBACK="${TWILIO_STATUS_CALLBACK:-http://127.0.0.1:8080/v1/webhooks/twilio/status}"
# The local bot's tokens are the simulator's: the api checks them against its keys, not
# Microsoft's (which a local run could neither reach nor match).
export BOT_OPENID_METADATA_URL="${BOT_OPENID_METADATA_URL:-http://127.0.0.1:18080/v1/.well-known/openidconfiguration}"
# Tracked links and the open pixel lead to the api's public listener (PUBLIC_ADDR).
export TRACKING_BASE_URL="${TRACKING_BASE_URL:-http://127.0.0.1:8081}"
BIN_DIR="${CARGO_TARGET_DIR:-$REPO/target}/$PROFILE"
RUN_DIR="$PUSHFLEET_HOME/run"
LOG_DIR="$PUSHFLEET_HOME/logs"
# name:binary — the simulator first, so the senders find their providers.
PROCESSES=(
    "provider-sim:provider-sim"
    "api:pushfleet-api"
    "scheduler:pushfleet-scheduler"
    "evaluator:pushfleet-evaluator"
    "email-sender:pushfleet-email-sender"
    "teams-sender:pushfleet-teams-sender"
    "sms-sender:pushfleet-sms-sender"
)

start_all() {
    mkdir -p "$RUN_DIR" "$LOG_DIR"
    local entry name bin pid
    for entry in "${PROCESSES[@]}"; do
        name="${entry%%:*}" bin="${entry#*:}"
        [[ -x "$BIN_DIR/$bin" ]] || pf_die "$BIN_DIR/$bin is missing: run 'cargo build --workspace --bins' first"
        pid="$(pf_pidfile_pid "$RUN_DIR/$name.pid")"
        if [[ -n "$pid" ]] && pf_pid_alive "$pid"; then
            echo "$name: already running (pid $pid)"
            continue
        fi
        nohup "$BIN_DIR/$bin" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
        echo $! >"$RUN_DIR/$name.pid"
        echo "$name: started (pid $!, log $LOG_DIR/$name.log)"
    done
}

stop_all() {
    local i entry name pid
    # Reverse order: senders drain before the api and the simulator go away.
    for (( i=${#PROCESSES[@]}-1; i>=0; i-- )); do
        entry="${PROCESSES[$i]}" name="${entry%%:*}"
        pid="$(pf_pidfile_pid "$RUN_DIR/$name.pid")"
        if [[ -z "$pid" ]] || ! pf_pid_alive "$pid"; then
            rm -f "$RUN_DIR/$name.pid"
            continue
        fi
        kill -TERM "$pid" 2>/dev/null || true
        if pf_wait_gone "$pid" 60; then
            echo "$name: stopped"
        else
            pf_warn "$name: still running after 60 s; killing"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$RUN_DIR/$name.pid"
    done
}

status_all() {
    local entry name pid rc=0
    for entry in "${PROCESSES[@]}"; do
        name="${entry%%:*}"
        pid="$(pf_pidfile_pid "$RUN_DIR/$name.pid")"
        if [[ -n "$pid" ]] && pf_pid_alive "$pid"; then
            echo "$name: running (pid $pid)"
        else
            echo "$name: stopped"
            rc=1
        fi
    done
    return $rc
}

case "${1:-}" in
    start) start_all ;;
    stop) stop_all ;;
    restart) stop_all; start_all ;;
    status) status_all ;;
    *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
