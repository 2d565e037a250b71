# shellcheck shell=bash
# scripts/services.d/mongodb.sh: FerretDB v1.24 (a MongoDB-wire-compatible server on SQLite), the
# server of transport/mongodb's tests. Sourced by scripts/services.sh (same contract).
#
# Debian has no MongoDB, so the server is built from the Go module proxy: scripts/ferretdb is a
# module of its own (the library's go.mod does not carry FerretDB) with a small main on
# FerretDB's embedding package (its stock cmd/ferretdb panics in a module build). The binary is
# cached in .cache/ferretdb/ under the hash of that module's go.mod, go.sum and main.go: a second
# `up` does not build again. Cold build ~45 s on 2 idle cores (3 min on a busy machine); the port
# opens in ~0.4 s. Data lives in $STATE/mongodb/data, a real directory (SQLite's in-memory mode
# deadlocks findAndModify), on tmpfs when /dev/shm exists: there inserts and deletes take ~0.9 and
# ~1.8 ms instead of ~2.4 and ~4.4 ms on this machine's disk (SQLite syncs every commit). Every
# `up` starts from an empty data directory.

MONGODB_DIR="$STATE/mongodb"
FERRETDB_SRC="$REPO/scripts/ferretdb"

svc_mongodb_packages() { command -v go >/dev/null 2>&1 || echo golang-go; }

ferretdb_bin() {
	local hash
	hash=$(cat "$FERRETDB_SRC/go.mod" "$FERRETDB_SRC/go.sum" "$FERRETDB_SRC/main.go" | sha256sum | cut -c1-16)
	echo "$REPO/.cache/ferretdb/ferretdb-$hash"
}

svc_mongodb_install() {
	local bin start
	bin=$(ferretdb_bin)
	[[ -x $bin ]] && return 0
	mkdir -p "$(dirname "$bin")"
	log "building FerretDB into $bin (first time only)"
	start=$(now_ms)
	(cd "$FERRETDB_SRC" && GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -o "$bin.tmp" .) ||
		die "building FerretDB failed (scripts/ferretdb)"
	mv "$bin.tmp" "$bin"
	log "FerretDB built in $(elapsed "$start")"
}

mongodb_port() { read_file "$MONGODB_DIR/port"; }

# mongodb_data_dir: the tmpfs directory behind $MONGODB_DIR/data, one per state directory.
mongodb_tmpfs_dir() { echo "/dev/shm/kombu-ferretdb-$(echo "$STATE" | sha256sum | cut -c1-12)"; }

# mongodb_fresh_data: an empty data directory at $MONGODB_DIR/data.
mongodb_fresh_data() {
	local shm
	shm=$(mongodb_tmpfs_dir)
	rm -rf "$MONGODB_DIR/data" "$shm"
	if [[ -d /dev/shm && -w /dev/shm ]]; then
		mkdir -p "$shm"
		ln -s "$shm" "$MONGODB_DIR/data"
	else
		mkdir -p "$MONGODB_DIR/data"
	fi
}
mongodb_pid() { read_file "$MONGODB_DIR/pid"; }

svc_mongodb_running() {
	local port pid
	port=$(mongodb_port) pid=$(mongodb_pid)
	[[ -n $port ]] && pid_alive "$pid" ferretdb && port_listening "$port"
}

# svc_mongodb_up [PORT [keep]]: start FerretDB (on PORT when given), on an empty data directory
# unless "keep" (restart).
svc_mongodb_up() {
	if svc_mongodb_running; then
		log "mongodb (FerretDB) already up on 127.0.0.1:$(mongodb_port) (pid $(mongodb_pid))"
		return 0
	fi
	svc_mongodb_install
	local port=${1:-} keep=${2:-} start attempt pid bin
	bin=$(ferretdb_bin)
	stop_pid "$(mongodb_pid)" ferretdb
	rm -f "$MONGODB_DIR/pid" "$MONGODB_DIR/port"
	mkdir -p "$MONGODB_DIR"
	if [[ $keep != keep || ! -e $MONGODB_DIR/data ]]; then
		mongodb_fresh_data
	fi
	for attempt in 1 2 3 4 5; do
		[[ -n $port ]] || pick_port port
		start=$(now_ms)
		"$bin" -listen "127.0.0.1:$port" -data "$MONGODB_DIR/data" -log-level error \
			</dev/null >"$MONGODB_DIR/ferretdb.log" 2>&1 9>&- &
		pid=$!
		echo "$pid" >"$MONGODB_DIR/pid"
		if wait_port "$port" 10 && pid_alive "$pid" ferretdb; then
			echo "$port" >"$MONGODB_DIR/port"
			log "mongodb (FerretDB) up on 127.0.0.1:$port (pid $pid) in $(elapsed "$start")"
			return 0
		fi
		log "FerretDB did not start on port $port (attempt $attempt); log: $MONGODB_DIR/ferretdb.log"
		tail -n 5 "$MONGODB_DIR/ferretdb.log" >&2 2>/dev/null || true
		stop_pid "$pid" ferretdb
		rm -f "$MONGODB_DIR/pid"
		port=""
	done
	die "FerretDB failed to start"
}

svc_mongodb_down() {
	local pid
	pid=$(mongodb_pid)
	if pid_alive "$pid" ferretdb; then
		stop_pid "$pid" ferretdb
		log "mongodb (FerretDB) stopped (pid $pid)"
	fi
	rm -f "$MONGODB_DIR/pid" "$MONGODB_DIR/port"
	rm -rf "$(mongodb_tmpfs_dir)" "$MONGODB_DIR/data" # memory, not disk: free it
}

# svc_mongodb_restart: stop FerretDB and start it again on the same port with the same data.
svc_mongodb_restart() {
	local port
	port=$(mongodb_port)
	stop_pid "$(mongodb_pid)" ferretdb
	rm -f "$MONGODB_DIR/pid" "$MONGODB_DIR/port"
	svc_mongodb_up "$port" keep
}

svc_mongodb_status() { echo "FerretDB $(basename "$(ferretdb_bin)") 127.0.0.1:$(mongodb_port) pid $(mongodb_pid)"; }

svc_mongodb_env() {
	echo "export KOMBU_TEST_MONGODB_URL='mongodb://127.0.0.1:$(mongodb_port)/kombu_test'"
	# transport/mongodb's restart test starts a FerretDB of its own from it.
	echo "export KOMBU_TEST_FERRETDB='$(ferretdb_bin)'"
}

SERVICES+=(mongodb)
