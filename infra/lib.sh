# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source this
# infra/lib.sh — shared settings and helpers for the local pushfleet servers.
#
# Sourced by up.sh / down.sh / status.sh / rabbitmqctl.sh. You can also source
# it from an interactive shell to get DATABASE_URL / AMQP_URL / REDIS_URL:
#     source infra/lib.sh            (or: source .pushfleet/env)
# It deliberately does NOT change shell options (set -e etc.) or HOME, so it is
# safe to source interactively.
#
# Knobs (environment variables, all optional):
#   PUSHFLEET_HOME   data/logs/pid files          (default: <repo>/.pushfleet)
#   PF_PG_PORT       PostgreSQL port               (default: 55432)
#   PF_AMQP_PORT     RabbitMQ AMQP port            (default: 55672)
#   PF_REDIS_PORT    Redis port                    (default: 56379)
#   PF_RABBIT_DIST_PORT  Erlang distribution port  (default: AMQP+10000, or AMQP-10000 when that
#                    would exceed 65535 — which is the case for the default 55672 -> 45672)
#   PF_RABBIT_NODE   Erlang node name              (default: pushfleet@localhost; pushfleet-<amqp port>@localhost for non-default ports)
#   PF_PG_FAST=1     fsync=off, synchronous_commit=off, full_page_writes=off (tests; data may be lost on crash)
#   PF_PG_SHARED_BUFFERS  Postgres shared_buffers (default 2GB)
#   PF_PG_BINDIR     PostgreSQL bin dir            (default: newest /usr/lib/postgresql/*/bin)

PF_INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO="$(cd "$PF_INFRA_DIR/.." && pwd -P)"

PUSHFLEET_HOME="${PUSHFLEET_HOME:-$REPO/.pushfleet}"
case "$PUSHFLEET_HOME" in
    /*) ;;
    *) PUSHFLEET_HOME="$PWD/$PUSHFLEET_HOME" ;;
esac
PUSHFLEET_HOME="${PUSHFLEET_HOME%/}"

# down.sh / status.sh / rabbitmqctl.sh set PF_USE_SAVED_ENV=1: ports and node
# name not given in the environment are taken from the env file the last
# up.sh wrote, so they talk to what is actually running.
if [[ "${PF_USE_SAVED_ENV:-0}" == 1 && -r "$PUSHFLEET_HOME/env" ]]; then
    for pf__v in PF_PG_PORT PF_AMQP_PORT PF_REDIS_PORT PF_RABBIT_DIST_PORT PF_RABBIT_NODE; do
        if [[ -z "${!pf__v:-}" ]]; then
            pf__val="$(sed -n "s/^export $pf__v='\{0,1\}\([A-Za-z0-9@._-]*\)'\{0,1\}\$/\1/p" "$PUSHFLEET_HOME/env" | tail -n 1)"
            [[ -n "$pf__val" ]] && printf -v "$pf__v" '%s' "$pf__val"
        fi
    done
    unset pf__v pf__val
fi

PF_PG_PORT="${PF_PG_PORT:-55432}"
PF_AMQP_PORT="${PF_AMQP_PORT:-55672}"
PF_REDIS_PORT="${PF_REDIS_PORT:-56379}"

pf__valid_port() { [[ "$1" =~ ^[0-9]+$ ]] && (( $1 >= 1 && $1 <= 65535 )); }
for pf__p in PF_PG_PORT PF_AMQP_PORT PF_REDIS_PORT; do
    if ! pf__valid_port "${!pf__p}"; then
        echo "pushfleet: $pf__p='${!pf__p}' is not a valid TCP port" >&2
        return 1 2>/dev/null || exit 1
    fi
done
unset pf__p

if [[ -z "${PF_RABBIT_DIST_PORT:-}" ]]; then
    if (( PF_AMQP_PORT + 10000 <= 65535 )); then
        PF_RABBIT_DIST_PORT=$((PF_AMQP_PORT + 10000))
    else
        PF_RABBIT_DIST_PORT=$((PF_AMQP_PORT - 10000))
    fi
fi
if [[ -z "${PF_RABBIT_NODE:-}" ]]; then
    if [[ "$PF_AMQP_PORT" == 55672 ]]; then
        PF_RABBIT_NODE="pushfleet@localhost"
    else
        # a second checkout on other ports must not clash in epmd
        PF_RABBIT_NODE="pushfleet-${PF_AMQP_PORT}@localhost"
    fi
fi

export PUSHFLEET_HOME PF_PG_PORT PF_AMQP_PORT PF_REDIS_PORT PF_RABBIT_DIST_PORT PF_RABBIT_NODE
export DATABASE_URL="postgres://pushfleet:pushfleet@127.0.0.1:${PF_PG_PORT}/pushfleet"
export AMQP_URL="amqp://guest:guest@127.0.0.1:${PF_AMQP_PORT}/%2f"
export REDIS_URL="redis://127.0.0.1:${PF_REDIS_PORT}/"
# The local servers and the simulator: the services may use their development defaults.
export PUSHFLEET_ENV=development

# ---- layout ---------------------------------------------------------------
PF_LOG_DIR="$PUSHFLEET_HOME/logs"
PF_PG_DATA="$PUSHFLEET_HOME/postgres"
PF_PG_LOG="$PF_LOG_DIR/postgres.log"
PF_RMQ_BASE="$PUSHFLEET_HOME/rabbitmq"
PF_RMQ_LOG_DIR="$PF_LOG_DIR/rabbitmq"
PF_RMQ_PIDFILE="$PF_RMQ_BASE/rabbitmq.pid"
PF_RMQ_LAUNCHER_PIDFILE="$PF_RMQ_BASE/launcher.pid"
PF_RMQ_STARTUP_LOG="$PF_RMQ_LOG_DIR/startup.log"
PF_REDIS_DIR="$PUSHFLEET_HOME/redis"
PF_REDIS_PIDFILE="$PF_REDIS_DIR/redis.pid"
PF_REDIS_LOG="$PF_LOG_DIR/redis.log"
PF_ENV_FILE="$PUSHFLEET_HOME/env"

# ---- messages ---------------------------------------------------------------
pf_info() { printf '==> %s\n' "$*"; }
pf_warn() { printf 'WARNING: %s\n' "$*" >&2; }
pf_err()  { printf 'ERROR: %s\n' "$*" >&2; }
pf_die()  { pf_err "$@"; exit 1; }

# pf_show_log FILE [LINES] — print the tail of a log file to stderr.
pf_show_log() {
    local f="$1" n="${2:-40}"
    if [[ -s "$f" ]]; then
        printf -- '----- last %s lines of %s -----\n' "$n" "$f" >&2
        tail -n "$n" -- "$f" >&2 || true
        printf -- '----- end of %s -----\n' "$f" >&2
    else
        printf '(log %s is empty or missing)\n' "$f" >&2
    fi
}

# ---- process / port helpers ---------------------------------------------------
# pf_port_open PORT [HOST] — true if something accepts TCP connections there.
pf_port_open() {
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "${2:-127.0.0.1}" "$1" >/dev/null 2>&1
}

# pf_pid_alive PID — true if PID exists and is not a zombie. (Daemons are
# re-parented to pid 1; a killed one stays a zombie until pid 1 reaps it, and
# kill -0 alone would still report it as alive.)
pf_pid_alive() {
    local pid="$1" stat
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || [[ -d "/proc/$pid" ]] || return 1
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ "${stat:0:1}" != Z && "${stat:0:1}" != X ]]
}

# pf_pid_matches PID COMM — true if PID is alive (not a zombie) and its /proc
# comm equals COMM (guards against a stale pid file whose pid was reused).
pf_pid_matches() {
    local pid="$1" want="$2" comm
    pf_pid_alive "$pid" || return 1
    comm="$(cat "/proc/$pid/comm" 2>/dev/null)" || return 1
    [[ "$comm" == "$want" ]]
}

# pf_pidfile_pid FILE — print the pid stored in the first line of FILE (or nothing).
pf_pidfile_pid() {
    local pid=""
    [[ -r "$1" ]] && IFS= read -r pid <"$1" || true
    pid="${pid//[[:space:]]/}"
    [[ "$pid" =~ ^[0-9]+$ ]] && printf '%s\n' "$pid"
    return 0
}

# pf_wait_until TIMEOUT_S DESCRIPTION LOGFILE CMD [ARGS...]
# Polls CMD every 0.25 s until it succeeds. On timeout prints a clear error plus
# the tail of LOGFILE ("" = none) and returns 1.
# If PF_WAIT_ALIVE_PID is set and that process dies, gives up early.
pf_wait_until() {
    local timeout="$1" desc="$2" log="$3"
    shift 3
    local deadline=$((SECONDS + timeout))
    while true; do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        if [[ -n "${PF_WAIT_ALIVE_PID:-}" ]] && ! kill -0 "$PF_WAIT_ALIVE_PID" 2>/dev/null; then
            pf_err "$desc: the server process (pid $PF_WAIT_ALIVE_PID) exited during startup"
            [[ -n "$log" ]] && pf_show_log "$log"
            return 1
        fi
        if (( SECONDS >= deadline )); then
            pf_err "$desc: timed out after ${timeout}s"
            [[ -n "$log" ]] && pf_show_log "$log"
            return 1
        fi
        sleep 0.25
    done
}

# pf_wait_port TIMEOUT_S DESCRIPTION LOGFILE PORT
pf_wait_port() { pf_wait_until "$1" "$2 (waiting for 127.0.0.1:$4)" "$3" pf_port_open "$4"; }

# pf_wait_gone PID TIMEOUT_S — wait for a process to exit; returns 1 if still alive.
pf_wait_gone() {
    local pid="$1" deadline=$((SECONDS + $2))
    while pf_pid_alive "$pid"; do
        (( SECONDS >= deadline )) && return 1
        sleep 0.2
    done
    return 0
}

# ---- PostgreSQL ---------------------------------------------------------------
# pf_pg_bindir — newest /usr/lib/postgresql/<ver>/bin that has pg_ctl + initdb.
pf_pg_bindir() {
    if [[ -n "${PF_PG_BINDIR:-}" ]]; then
        printf '%s\n' "$PF_PG_BINDIR"
        return 0
    fi
    local v
    for v in $(ls -1 /usr/lib/postgresql 2>/dev/null | sort -rV); do
        if [[ -x "/usr/lib/postgresql/$v/bin/pg_ctl" && -x "/usr/lib/postgresql/$v/bin/initdb" ]]; then
            printf '%s\n' "/usr/lib/postgresql/$v/bin"
            return 0
        fi
    done
    return 1
}

# OS user that owns/runs the cluster: "postgres" when we are root (postgres
# refuses to run as root), otherwise the invoking user.
if [[ "$(id -u)" == 0 ]]; then
    PF_PG_OSUSER=postgres
else
    PF_PG_OSUSER="$(id -un)"
fi

# pf_pg_as CMD... — run a command as the cluster's OS user (cwd=/ so the
# postgres user never trips over an unreadable cwd such as /root).
pf_pg_as() {
    if [[ "$(id -u)" == 0 ]]; then
        (cd / && runuser -u "$PF_PG_OSUSER" -- "$@")
    else
        (cd / && "$@")
    fi
}

# pf_pg_postmaster_pid — pid of our running postmaster, or fail.
pf_pg_postmaster_pid() {
    local pid
    pid="$(pf_pidfile_pid "$PF_PG_DATA/postmaster.pid")"
    pf_pid_matches "$pid" postgres || return 1
    printf '%s\n' "$pid"
}

# pf_pg_orphans — pids of live postgres processes whose cwd is our data dir
# (backends left behind by a killed postmaster).
pf_pg_orphans() {
    local want p cwd
    want="$(cd "$PF_PG_DATA" 2>/dev/null && pwd -P)" || return 0
    for p in /proc/[0-9]*; do
        [[ "$(cat "$p/comm" 2>/dev/null)" == postgres ]] || continue
        cwd="$(readlink "$p/cwd" 2>/dev/null)" || continue
        [[ "$cwd" == "$want" ]] && pf_pid_alive "${p#/proc/}" && printf '%s\n' "${p#/proc/}"
    done
    return 0
}

# Unix socket directory: inside the data dir, unless the socket path would be
# longer than the kernel's 107-byte sun_path limit.
pf_pg_sockdir() {
    local sock="$PF_PG_DATA/.s.PGSQL.$PF_PG_PORT"
    if (( ${#sock} + 5 <= 107 )); then   # +5 for ".lock"
        printf '%s\n' "$PF_PG_DATA"
    else
        printf '%s\n' "/tmp/pushfleet-pg-$PF_PG_PORT"
    fi
}

# ---- RabbitMQ -------------------------------------------------------------------
# pf_rabbit_bindir — directory holding the real (non-Debian-wrapper) scripts.
pf_rabbit_bindir() {
    if [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]]; then
        printf '%s\n' /usr/lib/rabbitmq/bin
        return 0
    fi
    local d
    for d in $(ls -1d /usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin 2>/dev/null | sort -rV); do
        if [[ -x "$d/rabbitmq-server" ]]; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    return 1
}

# pf_rabbit_run CMD... — run CMD with the node's environment (HOME holds the
# Erlang cookie, so rabbitmqctl must use the same HOME as the server).
pf_rabbit_run() {
    env \
        HOME="$PF_RMQ_BASE" \
        RABBITMQ_NODENAME="$PF_RABBIT_NODE" \
        RABBITMQ_USE_LONGNAME=false \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_NODE_PORT="$PF_AMQP_PORT" \
        RABBITMQ_DIST_PORT="$PF_RABBIT_DIST_PORT" \
        RABBITMQ_MNESIA_BASE="$PF_RMQ_BASE/mnesia" \
        RABBITMQ_LOG_BASE="$PF_RMQ_LOG_DIR" \
        RABBITMQ_PID_FILE="$PF_RMQ_PIDFILE" \
        RABBITMQ_CONFIG_FILE="$PF_RMQ_BASE/rabbitmq.conf" \
        RABBITMQ_ADVANCED_CONFIG_FILE="$PF_RMQ_BASE/advanced.config" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$PF_RMQ_BASE/enabled_plugins" \
        RABBITMQ_CONF_ENV_FILE="$PF_RMQ_BASE/rabbitmq-env.conf" \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
        RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
        ERL_EPMD_ADDRESS="${ERL_EPMD_ADDRESS:-127.0.0.1}" \
        "$@"
}

# pf_rabbitmqctl ARGS... — rabbitmqctl against our node.
pf_rabbitmqctl() {
    local bin
    bin="$(pf_rabbit_bindir)" || { pf_err "rabbitmq-server is not installed"; return 1; }
    (cd "$PF_RMQ_BASE" 2>/dev/null || cd /; pf_rabbit_run "$bin/rabbitmqctl" -n "$PF_RABBIT_NODE" "$@")
}

# ---- Redis ------------------------------------------------------------------------
pf_redis_cli() { redis-cli -h 127.0.0.1 -p "$PF_REDIS_PORT" "$@"; }
pf_redis_ping() { [[ "$(timeout 3 redis-cli -h 127.0.0.1 -p "$PF_REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }
# pf_redis_is_ours — the redis on our port uses our data dir.
pf_redis_is_ours() {
    local dir want
    want="$(cd "$PF_REDIS_DIR" 2>/dev/null && pwd -P)" || return 1
    dir="$(timeout 3 redis-cli -h 127.0.0.1 -p "$PF_REDIS_PORT" config get dir 2>/dev/null | sed -n 2p)"
    [[ -n "$dir" && "$dir" == "$want" ]]
}
