# shellcheck shell=bash
# couchdb: npm pouchdb-server 4.2.0 ("a drop-in replacement for CouchDB") for transport/couchdb.
# Sourced by scripts/services.sh (its helpers and $STATE are in scope).
#
# Installed once with npm into REPO/.cache/pouchdb-server (ignored by git, pinned package.json);
# `npm install` takes 1.5-3 min on an idle machine (8.8 min measured from scratch with the 2 cores
# busy: 1.5 min of CPU), so an install of the pinned version is reused. The server binds
# 127.0.0.1 on a probed port and keeps its databases, config and log.txt under $STATE/couchdb.
# Ready ~0.6 s after launch (first GET / answering); stop: SIGTERM to the recorded PID.

COUCHDB_DIR="$STATE/couchdb"
COUCHDB_VERSION=4.2.0
COUCHDB_CACHE="$REPO/.cache/pouchdb-server"
COUCHDB_BIN="$COUCHDB_CACHE/node_modules/pouchdb-server/bin/pouchdb-server"

svc_couchdb_packages() {
	command -v node >/dev/null 2>&1 || echo nodejs
	command -v npm >/dev/null 2>&1 || echo npm
}

couchdb_installed() {
	[[ -x $COUCHDB_BIN ]] &&
		grep -q "\"version\": *\"$COUCHDB_VERSION\"" "$COUCHDB_CACHE/node_modules/pouchdb-server/package.json" 2>/dev/null
}

svc_couchdb_install() {
	couchdb_installed && return 0
	local start
	start=$(now_ms)
	mkdir -p "$COUCHDB_CACHE"
	printf '{"name":"kombu-go-pouchdb-server","private":true,"dependencies":{"pouchdb-server":"%s"}}\n' \
		"$COUCHDB_VERSION" >"$COUCHDB_CACHE/package.json"
	log "npm install pouchdb-server@$COUCHDB_VERSION into ${COUCHDB_CACHE#"$REPO"/} (1.5-3 min, once)"
	if ! (cd "$COUCHDB_CACHE" && npm install --no-audit --no-fund --loglevel=error) >"$STATE/couchdb-npm.log" 2>&1; then
		tail -n 20 "$STATE/couchdb-npm.log" >&2 || true
		die "npm install pouchdb-server failed; see $STATE/couchdb-npm.log"
	fi
	couchdb_installed || die "npm installed no pouchdb-server $COUCHDB_VERSION in $COUCHDB_CACHE"
	log "installed pouchdb-server $COUCHDB_VERSION in $(elapsed "$start")"
}

couchdb_port() { read_file "$COUCHDB_DIR/port"; }
couchdb_pid() { read_file "$COUCHDB_DIR/pouchdb-server.pid"; }

couchdb_answers() { # couchdb_answers PORT: GET / is pouchdb-server's welcome
	curl -fsS --max-time 2 "http://127.0.0.1:$1/" 2>/dev/null | grep -q '"express-pouchdb"'
}

svc_couchdb_running() {
	local port pid
	port=$(couchdb_port) pid=$(couchdb_pid)
	[[ -n $port ]] && pid_alive "$pid" pouchdb-server && couchdb_answers "$port"
}

svc_couchdb_up() {
	if svc_couchdb_running; then
		log "couchdb (pouchdb-server) already up on 127.0.0.1:$(couchdb_port) (pid $(couchdb_pid))"
		return 0
	fi
	local port=${1:-} start attempt i pid
	stop_pid "$(couchdb_pid)" pouchdb-server
	rm -f "$COUCHDB_DIR/pouchdb-server.pid" "$COUCHDB_DIR/port"
	mkdir -p "$COUCHDB_DIR/data"
	for attempt in 1 2 3 4 5; do
		[[ -n $port ]] || pick_port port
		start=$(now_ms)
		# It writes log.txt into its working directory; setsid keeps it out of the caller's group.
		(cd "$COUCHDB_DIR" && exec setsid node "$COUCHDB_BIN" --host 127.0.0.1 --port "$port" \
			--dir "$COUCHDB_DIR/data" --config "$COUCHDB_DIR/config.json" \
			</dev/null >>"$COUCHDB_DIR/start.log" 2>&1 9>&-) &
		pid=$!
		echo "$pid" >"$COUCHDB_DIR/pouchdb-server.pid"
		for ((i = 0; i < 200; i++)); do
			proc_running "$pid" || break
			if couchdb_answers "$port"; then
				echo "$port" >"$COUCHDB_DIR/port"
				if svc_couchdb_running; then
					log "couchdb (pouchdb-server) up on 127.0.0.1:$port (pid $pid) in $(elapsed "$start")"
					return 0
				fi
				break # someone else's server answered on that port
			fi
			sleep 0.05
		done
		log "pouchdb-server did not start on port $port (attempt $attempt); log: $COUCHDB_DIR/start.log"
		tail -n 5 "$COUCHDB_DIR/start.log" >&2 2>/dev/null || true
		stop_pid "$pid" pouchdb-server
		rm -f "$COUCHDB_DIR/pouchdb-server.pid" "$COUCHDB_DIR/port"
		port=""
	done
	die "pouchdb-server failed to start"
}

svc_couchdb_down() {
	local pid
	pid=$(couchdb_pid)
	if pid_alive "$pid" pouchdb-server; then
		stop_pid "$pid" pouchdb-server
		log "couchdb (pouchdb-server) stopped (pid $pid)"
	fi
	rm -f "$COUCHDB_DIR/pouchdb-server.pid" "$COUCHDB_DIR/port"
}

svc_couchdb_status() { echo "pouchdb-server $COUCHDB_VERSION 127.0.0.1:$(couchdb_port) pid $(couchdb_pid)"; }

svc_couchdb_env() { echo "export KOMBU_TEST_COUCHDB_URL='couchdb://127.0.0.1:$(couchdb_port)/'"; }

SERVICES+=(couchdb)
