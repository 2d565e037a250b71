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
# Beside it, for the Python interop test only, npm local-aws-sqs (serve-interop.mjs): Debian's
# boto3 1.26 speaks SQS's query protocol, which fauxqs does not; local-aws-sqs speaks both (and is
# weaker otherwise). Env: KOMBU_TEST_SQS_INTEROP_URL, same form.
#
# Env: KOMBU_TEST_SQS_URL='sqs://test:test@127.0.0.1:PORT?is_secure=false&region=us-east-1', kombu's
# form (host:port is the endpoint, is_secure=false makes it http://); any credentials do. The same
# endpoint as an option: sqs://test:test@?endpoint_url=http://127.0.0.1:PORT (transport/sqs doc).

SQS_DIR="$STATE/sqs"
SQS_NPM_DIR="$REPO/.cache/fauxqs"
SQS_PIN_DIR="$REPO/scripts/services.d/sqs"

# sqs_server_* NAME: NAME is fauxqs (serve.mjs) or interop (serve-interop.mjs).
sqs_port() { read_file "$SQS_DIR/$1.port"; }
sqs_pid() { read_file "$SQS_DIR/$1.pid"; }
sqs_script() { if [[ $1 == fauxqs ]]; then echo serve.mjs; else echo serve-interop.mjs; fi; }

sqs_installed() { # the pinned lock file is the one installed
	[[ -f $SQS_NPM_DIR/node_modules/fauxqs/package.json && -f $SQS_NPM_DIR/node_modules/local-aws-sqs/package.json ]] &&
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
	log "npm ci (fauxqs, local-aws-sqs) in ${SQS_NPM_DIR#"$REPO"/}"
	(cd "$SQS_NPM_DIR" && npm ci --no-audit --no-fund --loglevel=error) >"$STATE/npm-sqs.log" 2>&1 ||
		{ tail -n 20 "$STATE/npm-sqs.log" >&2; die "npm ci of fauxqs failed (log: $STATE/npm-sqs.log)"; }
	log "fauxqs and local-aws-sqs installed in $(elapsed "$start")"
}

sqs_answers() { # sqs_answers NAME PORT
	if [[ $1 == fauxqs ]]; then
		[[ $(curl -s -m 2 "http://127.0.0.1:$2/health" 2>/dev/null) == *'"ok"'* ]]
	else
		[[ $(curl -s -m 2 -X POST -H 'Content-Type: application/x-www-form-urlencoded' \
			-d 'Action=ListQueues&Version=2012-11-05' "http://127.0.0.1:$2/" 2>/dev/null) == *ListQueuesResponse* ]]
	fi
}

sqs_server_running() {
	local port pid
	port=$(sqs_port "$1") pid=$(sqs_pid "$1")
	[[ -n $port ]] && pid_alive "$pid" "$(sqs_script "$1")" && sqs_answers "$1" "$port"
}

svc_sqs_running() { sqs_server_running fauxqs && sqs_server_running interop; }

sqs_server_down() {
	local pid
	pid=$(sqs_pid "$1")
	if pid_alive "$pid" "$(sqs_script "$1")"; then
		stop_pid "$pid" "$1"
		log "sqs: $1 stopped (pid $pid)"
	fi
	rm -f "$SQS_DIR/$1.pid" "$SQS_DIR/$1.port"
}

sqs_server_up() {
	local name=$1 port="" start attempt i pid
	if sqs_server_running "$name"; then
		log "sqs: $name already up on 127.0.0.1:$(sqs_port "$name") (pid $(sqs_pid "$name"))"
		return 0
	fi
	sqs_server_down "$name"
	mkdir -p "$SQS_DIR"
	for attempt in 1 2 3 4 5; do
		pick_port port
		start=$(now_ms)
		node "$SQS_PIN_DIR/$(sqs_script "$name")" "$SQS_NPM_DIR" "$port" </dev/null >"$SQS_DIR/$name.log" 2>&1 9>&- &
		pid=$!
		echo "$pid" >"$SQS_DIR/$name.pid"
		for ((i = 0; i < 300; i++)); do
			proc_running "$pid" || break
			if sqs_answers "$name" "$port"; then
				echo "$port" >"$SQS_DIR/$name.port"
				log "sqs: $name up on 127.0.0.1:$port (pid $pid) in $(elapsed "$start")"
				return 0
			fi
			sleep 0.1
		done
		log "sqs: $name did not start on port $port (attempt $attempt); log: $SQS_DIR/$name.log"
		tail -n 5 "$SQS_DIR/$name.log" >&2 2>/dev/null || true
		stop_pid "$pid" "$name"
		rm -f "$SQS_DIR/$name.pid" "$SQS_DIR/$name.port"
	done
	die "sqs: $name failed to start"
}

svc_sqs_up() {
	sqs_server_up fauxqs
	sqs_server_up interop
}

svc_sqs_down() {
	sqs_server_down interop
	sqs_server_down fauxqs
}

svc_sqs_status() {
	local v
	v=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$SQS_NPM_DIR/node_modules/fauxqs/package.json" | head -n1)
	echo "fauxqs $v 127.0.0.1:$(sqs_port fauxqs) pid $(sqs_pid fauxqs); local-aws-sqs 127.0.0.1:$(sqs_port interop) pid $(sqs_pid interop)"
}

svc_sqs_env() {
	echo "export KOMBU_TEST_SQS_URL='sqs://test:test@127.0.0.1:$(sqs_port fauxqs)?is_secure=false&region=us-east-1'"
	echo "export KOMBU_TEST_SQS_INTEROP_URL='sqs://test:test@127.0.0.1:$(sqs_port interop)?is_secure=false&region=us-east-1'"
}

SERVICES+=(sqs)
