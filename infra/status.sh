#!/usr/bin/env bash
# infra/status.sh — show whether each local pushfleet server answers.
# Exit status: 0 if all three answer, 1 otherwise.
set -euo pipefail

# shellcheck disable=SC2034  # read by lib.sh
PF_USE_SAVED_ENV=1    # use the ports/node recorded by the last up.sh unless overridden
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/lib.sh"

RC=0
line() { printf '  %-9s %-5s %-22s %s\n' "$@"; }

echo "PUSHFLEET_HOME=$PUSHFLEET_HOME"

# postgres: a real query through DATABASE_URL (proves role, password and database)
pgbin="$(pf_pg_bindir 2>/dev/null || true)"
if [[ -n "$pgbin" ]] && out="$(PGCONNECT_TIMEOUT=3 "$pgbin/psql" -X -qAt "$DATABASE_URL" -c 'show server_version' 2>&1)"; then
    line postgres up "127.0.0.1:$PF_PG_PORT" "PostgreSQL $out, pid $(pf_pidfile_pid "$PF_PG_DATA/postmaster.pid")"
else
    line postgres DOWN "127.0.0.1:$PF_PG_PORT" "${out:-psql not found}"
    RC=1
fi

# rabbitmq: node answers rabbitmqctl and the AMQP port accepts connections
pid="$(pf_pidfile_pid "$PF_RMQ_PIDFILE")"
if pf_port_open "$PF_AMQP_PORT" && pf_rabbitmqctl -q await_startup --timeout 5 >/dev/null 2>&1; then
    line rabbitmq up "127.0.0.1:$PF_AMQP_PORT" "node $PF_RABBIT_NODE, pid $pid"
elif [[ -n "$pid" ]] && pf_pid_matches "$pid" beam.smp; then
    line rabbitmq DOWN "127.0.0.1:$PF_AMQP_PORT" "process $pid exists but the node does not answer (still booting?)"
    RC=1
elif lpid="$(pf_pidfile_pid "$PF_RMQ_LAUNCHER_PIDFILE")" && [[ -n "$lpid" ]] && pf_pid_matches "$lpid" rabbitmq-server; then
    line rabbitmq DOWN "127.0.0.1:$PF_AMQP_PORT" "starting (launcher pid $lpid)"
    RC=1
else
    line rabbitmq DOWN "127.0.0.1:$PF_AMQP_PORT" "not running"
    RC=1
fi

# redis
if pf_redis_ping; then
    extra="pid $(pf_pidfile_pid "$PF_REDIS_PIDFILE")"
    pf_redis_is_ours || extra="answers, but it is NOT ours (dir != $PF_REDIS_DIR)"
    line redis up "127.0.0.1:$PF_REDIS_PORT" "$extra"
else
    line redis DOWN "127.0.0.1:$PF_REDIS_PORT" "no PONG"
    RC=1
fi
exit "$RC"
