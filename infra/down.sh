#!/usr/bin/env bash
# infra/down.sh — stop the local pushfleet servers started by infra/up.sh.
# Idempotent: servers that are not running are skipped. Data is kept
# (delete "$PUSHFLEET_HOME" yourself for a clean slate).
# epmd (the Erlang port mapper, shared by every Erlang node on this machine)
# is deliberately left running.
set -euo pipefail

# shellcheck disable=SC2034  # read by lib.sh
PF_USE_SAVED_ENV=1    # use the ports/node recorded by the last up.sh unless overridden
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/lib.sh"

RC=0

stop_postgres() {
    local pgbin ver pid
    if [[ ! -f "$PF_PG_DATA/postmaster.pid" ]]; then
        echo "postgres: not running"
        return 0
    fi
    pid="$(pf_pidfile_pid "$PF_PG_DATA/postmaster.pid")"
    if ! pf_pg_postmaster_pid >/dev/null; then
        echo "postgres: not running (stale postmaster.pid, pid ${pid:-?} is gone; postgres cleans it up on next start)"
        return 0
    fi
    ver="$(cat "$PF_PG_DATA/PG_VERSION" 2>/dev/null || true)"
    if [[ -n "$ver" && -x "/usr/lib/postgresql/$ver/bin/pg_ctl" ]]; then
        pgbin="/usr/lib/postgresql/$ver/bin"
    else
        pgbin="$(pf_pg_bindir)" || pgbin=""
    fi
    if [[ -n "$pgbin" ]] && pf_pg_as "$pgbin/pg_ctl" -D "$PF_PG_DATA" stop -m fast -w -t 60 -s; then
        echo "postgres: stopped (pid $pid)"
        return 0
    fi
    pf_warn "postgres: pg_ctl stop failed, sending SIGINT (fast shutdown) to pid $pid"
    kill -INT "$pid" 2>/dev/null || true
    if pf_wait_gone "$pid" 30; then
        echo "postgres: stopped (pid $pid)"
    else
        pf_err "postgres: pid $pid did not exit; see $PF_PG_LOG"
        return 1
    fi
}

stop_rabbitmq() {
    local pid lpid
    pid="$(pf_pidfile_pid "$PF_RMQ_PIDFILE")"
    lpid="$(pf_pidfile_pid "$PF_RMQ_LAUNCHER_PIDFILE")"
    if [[ -z "$pid" ]] || ! pf_pid_matches "$pid" beam.smp; then
        rm -f "$PF_RMQ_PIDFILE"
        if [[ -n "$lpid" ]] && pf_pid_matches "$lpid" rabbitmq-server; then
            # still booting (no pid file yet): the wrapper's TERM trap stops the node
            kill -TERM "$lpid" 2>/dev/null || true
            if pf_wait_gone "$lpid" 60; then
                rm -f "$PF_RMQ_LAUNCHER_PIDFILE"
                echo "rabbitmq: stopped (node was still starting; launcher pid $lpid)"
                return 0
            fi
            pf_err "rabbitmq: launcher pid $lpid did not exit"
            return 1
        fi
        rm -f "$PF_RMQ_LAUNCHER_PIDFILE"
        echo "rabbitmq: not running"
        return 0
    fi
    # 'stop <pidfile>' waits until the OS process has exited
    if timeout 90 "$PF_INFRA_DIR/rabbitmqctl.sh" -q stop "$PF_RMQ_PIDFILE" >/dev/null 2>&1 &&
        pf_wait_gone "$pid" 30; then
        rm -f "$PF_RMQ_PIDFILE" "$PF_RMQ_LAUNCHER_PIDFILE"
        echo "rabbitmq: stopped (node $PF_RABBIT_NODE, pid $pid)"
        return 0
    fi
    pf_warn "rabbitmq: rabbitmqctl stop failed, sending SIGTERM to pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    if ! pf_wait_gone "$pid" 30; then
        pf_warn "rabbitmq: pid $pid still alive, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        pf_wait_gone "$pid" 5 || { pf_err "rabbitmq: could not stop pid $pid"; return 1; }
    fi
    rm -f "$PF_RMQ_PIDFILE" "$PF_RMQ_LAUNCHER_PIDFILE"
    echo "rabbitmq: stopped (pid $pid, via signal)"
}

stop_redis() {
    local pid
    pid="$(pf_pidfile_pid "$PF_REDIS_PIDFILE")"
    if pf_redis_ping && pf_redis_is_ours; then
        [[ -n "$pid" ]] || pid="$(pf_redis_cli info server 2>/dev/null | sed -n 's/^process_id:\([0-9]*\).*/\1/p')"
        pf_redis_cli shutdown nosave >/dev/null 2>&1 || true
        if [[ -z "$pid" ]] || pf_wait_gone "$pid" 20; then
            rm -f "$PF_REDIS_PIDFILE"
            echo "redis: stopped${pid:+ (pid $pid)}"
            return 0
        fi
    elif [[ -z "$pid" ]] || ! pf_pid_matches "$pid" redis-server; then
        rm -f "$PF_REDIS_PIDFILE"
        echo "redis: not running"
        return 0
    fi
    pf_warn "redis: sending SIGTERM to pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    if ! pf_wait_gone "$pid" 20; then
        pf_err "redis: pid $pid did not exit; see $PF_REDIS_LOG"
        return 1
    fi
    rm -f "$PF_REDIS_PIDFILE"
    echo "redis: stopped (pid $pid, via signal)"
}

if [[ ! -d "$PUSHFLEET_HOME" ]]; then
    echo "nothing to stop: $PUSHFLEET_HOME does not exist"
    exit 0
fi

stop_rabbitmq || RC=1
stop_postgres || RC=1
stop_redis || RC=1
exit "$RC"
