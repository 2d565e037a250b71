# shellcheck shell=bash
# beanstalkd: Debian's beanstalkd with a binlog (-b) under $STATE/beanstalkd, so that jobs
# survive a restart of the server. Sourced by scripts/services.sh.
# Start time: ready at once (~0.02 s until the port answers).

BEANSTALKD_DIR="$STATE/beanstalkd"
# The largest job (-z): 16 MiB instead of the default 65,535 bytes, for the conformance suite's
# megabyte bodies (a kombu envelope carries the body in base64, 4/3 of its size).
BEANSTALKD_MAX_JOB_SIZE=16777216

svc_beanstalkd_packages() {
	command -v beanstalkd >/dev/null 2>&1 || echo beanstalkd
}

beanstalkd_port() { read_file "$BEANSTALKD_DIR/port"; }
beanstalkd_pid() { read_file "$BEANSTALKD_DIR/beanstalkd.pid"; }

# beanstalkd_answers PORT: the server replies to `stats` with its own pid.
beanstalkd_answers() {
	local port=$1 pid=$2 reply
	# `quit` makes the server close the connection, so the read ends.
	reply=$(exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'stats\r\nquit\r\n' >&3 && timeout 2 cat <&3 2>/dev/null) || return 1
	[[ $reply == *"pid: $pid"* ]]
}

svc_beanstalkd_running() {
	local port pid
	port=$(beanstalkd_port) pid=$(beanstalkd_pid)
	[[ -n $port ]] && pid_alive "$pid" beanstalkd || return 1
	beanstalkd_answers "$port" "$pid"
}

svc_beanstalkd_up() {
	if svc_beanstalkd_running; then
		log "beanstalkd already up on 127.0.0.1:$(beanstalkd_port) (pid $(beanstalkd_pid))"
		return 0
	fi
	local port=${1:-} start attempt i pid
	if [[ -z $port ]]; then
		rm -rf "$BEANSTALKD_DIR"
	fi
	mkdir -p "$BEANSTALKD_DIR/binlog"
	for attempt in 1 2 3 4 5; do
		[[ -n $port ]] || pick_port port
		start=$(now_ms)
		beanstalkd -l 127.0.0.1 -p "$port" -b "$BEANSTALKD_DIR/binlog" -z "$BEANSTALKD_MAX_JOB_SIZE" \
			</dev/null >>"$BEANSTALKD_DIR/beanstalkd.log" 2>&1 9>&- &
		pid=$!
		disown "$pid" 2>/dev/null || true
		echo "$pid" >"$BEANSTALKD_DIR/beanstalkd.pid"
		echo "$port" >"$BEANSTALKD_DIR/port"
		for ((i = 0; i < 100; i++)); do
			if svc_beanstalkd_running; then
				log "beanstalkd up on 127.0.0.1:$port (pid $pid) in $(elapsed "$start")"
				return 0
			fi
			proc_running "$pid" || break
			sleep 0.05
		done
		log "beanstalkd did not start on port $port (attempt $attempt); log: $BEANSTALKD_DIR/beanstalkd.log"
		tail -n 5 "$BEANSTALKD_DIR/beanstalkd.log" >&2 2>/dev/null || true
		stop_pid "$pid" beanstalkd
		rm -f "$BEANSTALKD_DIR/beanstalkd.pid" "$BEANSTALKD_DIR/port"
		port=""
	done
	die "beanstalkd failed to start"
}

svc_beanstalkd_down() {
	local pid
	pid=$(beanstalkd_pid)
	if pid_alive "$pid" beanstalkd; then
		stop_pid "$pid" beanstalkd
		log "beanstalkd stopped (pid $pid)"
	fi
	rm -f "$BEANSTALKD_DIR/beanstalkd.pid"
}

# restart keeps the port and the binlog.
svc_beanstalkd_restart() {
	local port
	port=$(beanstalkd_port)
	svc_beanstalkd_down
	svc_beanstalkd_up "$port"
}

svc_beanstalkd_status() { echo "beanstalkd 127.0.0.1:$(beanstalkd_port) pid $(beanstalkd_pid)"; }

svc_beanstalkd_env() {
	echo "export KOMBU_TEST_BEANSTALK_URL='beanstalk://127.0.0.1:$(beanstalkd_port)'"
}

SERVICES+=(beanstalkd)
