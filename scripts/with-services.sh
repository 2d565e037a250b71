#!/usr/bin/env bash
# scripts/with-services.sh CMD [ARG...]
#
# Starts the test servers (scripts/services.sh up), runs CMD with .services/env exported, then
# stops the servers whatever happened (CMD failing, `up` failing half way, Ctrl-C, SIGTERM),
# and exits with CMD's status (or up's, when the servers could not be started).
#
# CMD runs as a background job that this script waits for, so a SIGTERM or SIGINT sent to this
# script alone (a CI time limit, `kill`) is handled at once: CMD gets SIGTERM, and the servers
# are stopped after it exits. A foreground child would delay the trap until it had finished.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICES="$REPO/scripts/services.sh"
ENV_FILE="${KOMBU_SERVICES_DIR:-$REPO/.services}/env"

(($# > 0)) || { echo "usage: $0 CMD [ARG...]" >&2; exit 2; }

child=""
signalled=0

# shellcheck disable=SC2317 # called from traps
stop_services() {
	"$SERVICES" down || echo "with-services: warning: 'services.sh down' failed" >&2
}
# shellcheck disable=SC2317
on_signal() {
	signalled=$1
	if [[ -n $child ]]; then
		kill -TERM "$child" 2>/dev/null || true
	else
		exit "$signalled" # still in `up`: the EXIT trap stops what was started
	fi
}
trap stop_services EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

"$SERVICES" up

set -a
# shellcheck source=/dev/null
. "$ENV_FILE"
set +a

# Background jobs of a non-interactive shell ignore SIGINT/SIGQUIT and read /dev/null: undo both.
exec 3<&0
(
	trap - INT QUIT
	exec "$@"
) <&3 3<&- &
child=$!
exec 3<&-

rc=0
wait "$child" || rc=$?
while kill -0 "$child" 2>/dev/null; do # `wait` was cut short by a signal; wait for the exit
	rc=0
	wait "$child" || rc=$?
done
if ((rc == 0 && signalled != 0)); then
	rc=$signalled
fi
exit "$rc"
