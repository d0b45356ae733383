#!/usr/bin/env bash
# infra/rabbitmqctl.sh ARGS... — rabbitmqctl against the local pushfleet node.
# (The plain /usr/sbin/rabbitmqctl wrapper switches to the 'rabbitmq' user and
# its Erlang cookie, so it cannot talk to our node.)
# Examples:  infra/rabbitmqctl.sh list_queues name messages
#            infra/rabbitmqctl.sh status
set -euo pipefail
# shellcheck disable=SC2034  # read by lib.sh
PF_USE_SAVED_ENV=1    # use the ports/node recorded by the last up.sh unless overridden
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/lib.sh"
pf_rabbitmqctl "$@"
