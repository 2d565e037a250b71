# scripts/services.d/postgres.sh: a private PostgreSQL 15 cluster for transport/postgres.
# Loaded by scripts/services.sh (its helpers and $STATE are available here).
#
# initdb + pg_ctl run as the `postgres` user (the server refuses root); data, socket and log
# live under $STATE/postgres; it listens on 127.0.0.1 only, on a probed port, with trust
# authentication (loopback, test data only). Start ~1 s (initdb once: ~2 s more).

PG_DIR="$STATE/postgres"
PG_USER=postgres

pg_bin() { # pg_bin NAME: the path of a server program of the newest installed major version
	local d
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		[[ -x $d/$1 ]] && { echo "$d/$1"; return 0; }
	done
	return 1
}

# as_pg CMD...: run as the postgres user (we are root in CI), in a directory it may read.
as_pg() {
	if [[ $(id -u) -eq 0 ]]; then
		(cd / && runuser -u "$PG_USER" -- "$@")
	else
		(cd / && "$@")
	fi
}

svc_postgres_packages() { pg_bin pg_ctl >/dev/null || echo postgresql; }

pg_port() { read_file "$PG_DIR/port"; }
pg_pid() { read_file "$PG_DIR/data/postmaster.pid"; }

svc_postgres_running() {
	local port pid
	port=$(pg_port) pid=$(pg_pid)
	[[ -n $port ]] && pid_alive "$pid" postgres || return 1
	as_pg "$(pg_bin pg_isready)" -q -h 127.0.0.1 -p "$port" -U "$PG_USER" -d postgres
}

pg_init() {
	[[ -f $PG_DIR/data/PG_VERSION ]] && return 0
	local start
	start=$(now_ms)
	rm -rf "$PG_DIR/data"
	mkdir -p "$PG_DIR/data"
	[[ $(id -u) -eq 0 ]] && chown -R "$PG_USER" "$PG_DIR"
	as_pg "$(pg_bin initdb)" -D "$PG_DIR/data" -U "$PG_USER" -A trust -E UTF8 --locale=C.UTF-8 \
		>"$PG_DIR/initdb.log" 2>&1 || { tail -n 20 "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
	log "postgres cluster initialised in $(elapsed "$start")"
}

svc_postgres_up() {
	if svc_postgres_running; then
		log "postgres already up on 127.0.0.1:$(pg_port) (pid $(pg_pid))"
		return 0
	fi
	local port=${1:-} start attempt i
	mkdir -p "$PG_DIR"
	[[ $(id -u) -eq 0 ]] && chown "$PG_USER" "$PG_DIR"
	pg_init
	rm -f "$PG_DIR/data/postmaster.pid" # stale after a kill -9: the server refuses to start
	for attempt in 1 2 3 4 5; do
		[[ -n $port ]] || pick_port port
		start=$(now_ms)
		# 9>&- : the server must not inherit services.sh's lock descriptor.
		as_pg "$(pg_bin pg_ctl)" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 60 \
			-o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on" \
			start >>"$PG_DIR/start.log" 2>&1 9>&- || true
		for ((i = 0; i < 100; i++)); do
			echo "$port" >"$PG_DIR/port"
			if svc_postgres_running; then
				log "postgres up on 127.0.0.1:$port (pid $(pg_pid)) in $(elapsed "$start")"
				return 0
			fi
			sleep 0.1
		done
		log "postgres did not start on port $port (attempt $attempt); log: $PG_DIR/postgres.log"
		tail -n 5 "$PG_DIR/postgres.log" >&2 2>/dev/null || true
		svc_postgres_down
		port=""
	done
	die "postgres failed to start"
}

svc_postgres_down() {
	local pid
	pid=$(pg_pid)
	if pid_alive "$pid" postgres; then
		as_pg "$(pg_bin pg_ctl)" -D "$PG_DIR/data" -m fast -w -t 20 stop >/dev/null 2>&1 || stop_pid "$pid" postgres
		wait_gone "$pid" 5 || stop_pid "$pid" postgres
		log "postgres stopped (pid $pid)"
	fi
	rm -f "$PG_DIR/port"
}

svc_postgres_restart() { # same port, same data: what the restart-mid-stream test needs
	local port
	port=$(pg_port)
	svc_postgres_down
	svc_postgres_up "$port"
}

svc_postgres_status() { echo "postgres 127.0.0.1:$(pg_port) pid $(pg_pid)"; }

svc_postgres_env() {
	echo "export KOMBU_TEST_POSTGRES_URL='postgres://$PG_USER@127.0.0.1:$(pg_port)/postgres?sslmode=disable'"
}

SERVICES+=(postgres)
