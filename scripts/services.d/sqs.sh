# shellcheck shell=bash
# sqs: the fauxqs SQS emulator (npm, AWS JSON 1.0 as aws-sdk-go-v2 speaks it), for
# transport/sqs. Sourced by scripts/services.sh (helpers and $STATE, $REPO come from there).
#
# Installed with `npm ci` from the pinned package.json + package-lock.json in
# scripts/services.d/sqs/ into REPO/.cache/fauxqs (ignored by git); fauxqs 1.9.2 runs on
# Debian's Node 20. Started through scripts/services.d/sqs/serve.mjs (buildApp + listen on
# 127.0.0.1, no request log) on a probed port; ready when GET /health answers (0.4-1 s).
# State (port, pid, log) under $STATE/sqs. Stopped by PID (SIGTERM).
#
# Env: KOMBU_TEST_SQS_URL='sqs://test:test@127.0.0.1:PORT?is_secure=false&region=us-east-1', kombu's
# form (host:port is the endpoint, is_secure=false makes it http://); any credentials do. The same
# endpoint as an option: sqs://test:test@?endpoint_url=http://127.0.0.1:PORT (transport/sqs doc).

SQS_DIR="$STATE/sqs"
SQS_NPM_DIR="$REPO/.cache/fauxqs"
SQS_PIN_DIR="$REPO/scripts/services.d/sqs"

sqs_port() { read_file "$SQS_DIR/port"; }
sqs_pid() { read_file "$SQS_DIR/pid"; }

sqs_installed() { # the pinned lock file is the one installed
	[[ -f $SQS_NPM_DIR/node_modules/fauxqs/package.json ]] &&
		cmp -s "$SQS_PIN_DIR/package-lock.json" "$SQS_NPM_DIR/package-lock.json"
}

svc_sqs_packages() {
	command -v node >/dev/null 2>&1 || echo nodejs
	command -v npm >/dev/null 2>&1 || echo npm
	command -v curl >/dev/null 2>&1 || echo curl
}

svc_sqs_install() {
	sqs_installed && return 0
	local start
	start=$(now_ms)
	mkdir -p "$SQS_NPM_DIR" "$STATE"
	cp "$SQS_PIN_DIR/package.json" "$SQS_PIN_DIR/package-lock.json" "$SQS_NPM_DIR/"
	log "npm ci (fauxqs) in ${SQS_NPM_DIR#"$REPO"/}"
	(cd "$SQS_NPM_DIR" && npm ci --no-audit --no-fund --loglevel=error) >"$STATE/npm-sqs.log" 2>&1 ||
		{ tail -n 20 "$STATE/npm-sqs.log" >&2; die "npm ci of fauxqs failed (log: $STATE/npm-sqs.log)"; }
	log "fauxqs installed in $(elapsed "$start")"
}

sqs_healthy() {
	local port=$1
	[[ $(curl -s -m 2 "http://127.0.0.1:$port/health" 2>/dev/null) == *'"ok"'* ]]
}

svc_sqs_running() {
	local port pid
	port=$(sqs_port) pid=$(sqs_pid)
	[[ -n $port ]] && pid_alive "$pid" serve.mjs && sqs_healthy "$port"
}

svc_sqs_up() {
	if svc_sqs_running; then
		log "sqs (fauxqs) already up on 127.0.0.1:$(sqs_port) (pid $(sqs_pid))"
		return 0
	fi
	svc_sqs_down
	local port=${1:-} start attempt i pid
	mkdir -p "$SQS_DIR"
	for attempt in 1 2 3 4 5; do
		[[ -n $port ]] || pick_port port
		start=$(now_ms)
		node "$SQS_PIN_DIR/serve.mjs" "$SQS_NPM_DIR" "$port" </dev/null >"$SQS_DIR/fauxqs.log" 2>&1 9>&- &
		pid=$!
		echo "$pid" >"$SQS_DIR/pid"
		for ((i = 0; i < 300; i++)); do
			if ! proc_running "$pid"; then
				break
			fi
			if sqs_healthy "$port"; then
				echo "$port" >"$SQS_DIR/port"
				log "sqs (fauxqs) up on 127.0.0.1:$port (pid $pid) in $(elapsed "$start")"
				return 0
			fi
			sleep 0.1
		done
		log "fauxqs did not start on port $port (attempt $attempt); log: $SQS_DIR/fauxqs.log"
		tail -n 5 "$SQS_DIR/fauxqs.log" >&2 2>/dev/null || true
		stop_pid "$pid" fauxqs
		rm -f "$SQS_DIR/pid" "$SQS_DIR/port"
		port=""
	done
	die "fauxqs failed to start"
}

svc_sqs_down() {
	local pid
	pid=$(sqs_pid)
	if pid_alive "$pid" serve.mjs; then
		stop_pid "$pid" fauxqs
		log "sqs (fauxqs) stopped (pid $pid)"
	fi
	rm -f "$SQS_DIR/pid" "$SQS_DIR/port"
}

svc_sqs_status() { echo "fauxqs $(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$SQS_NPM_DIR/node_modules/fauxqs/package.json" | head -n1) 127.0.0.1:$(sqs_port) pid $(sqs_pid)"; }

svc_sqs_env() {
	local p
	p=$(sqs_port)
	echo "export KOMBU_TEST_SQS_URL='sqs://test:test@127.0.0.1:$p?is_secure=false&region=us-east-1'"
}

SERVICES+=(sqs)
