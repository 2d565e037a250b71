#!/usr/bin/env bash
# scripts/services.sh: install, start and stop the real servers the test suites talk to.
#
#   scripts/services.sh up [NAME...]      install what is missing, start (idempotent), write .services/env
#   scripts/services.sh down [NAME...]    stop exactly what `up` started (by recorded PID / node name)
#   scripts/services.sh restart NAME...   stop and start again on the same port, keeping data
#   scripts/services.sh status            one line per service; exit 0 only when all are up
#   scripts/services.sh env               print .services/env (export lines); fails when nothing is up
#
# NAME is one of the entries of SERVICES below; no NAME means all of them.
#
# Every server binds 127.0.0.1 only, on a free port probed at start (never the usual defaults,
# so a developer's own servers do not clash), and keeps all its state under $STATE
# (default: REPO/.services, ignored by git). Use the servers from a shell with:
#     eval "$(scripts/services.sh env)"      or      . .services/env
#
# Start times measured on the 2-core dev machine (packages already installed):
#   redis     0.07 s idle, up to 0.4 s with both cores busy (daemonize until the first PONG)
#   sentinel  0.06 s idle, up to 2 s busy (until it reports the master address)
#   rabbitmq  4.9-5.4 s idle alone, 7-14 s busy (`rabbitmq-server -detached` until `rabbitmqctl
#             wait` returns); the TLS listener and the EXTERNAL plugin add ~0.3 s to the 4.6 s
#             of a plain node; making the test certificates (once) 0.1 s
#   rabbitmq_fault  4.9-6 s alone; booting beside the shared node, both are up in 6.3-6.6 s
#   rabbitmq_cluster  3 nodes booting side by side: 14-18 s, then nodes 2 and 3 join (at once): 6-12 s;
#             a killed node started again (KOMBU_TEST_AMQP_CLUSTER_RESTART N): 6.5-8 s
#   sentinel_cluster  primary + replica + 3 sentinels ready (sentinels know each other): ~5 s
#             from launch (it overlaps the RabbitMQ boots)
#   stopping a node (SIGTERM): 1.0-1.1 s
#   `up` of everything: 7.2 s (5.2 s before the TLS listener and the second node); `down` 2.2 s
#   (3.5 s with one node stopped by rabbitmqctl); `up` when all is already running: ~0.5 s
# A first run on a fresh machine adds the Debian installs: ~6 s for Erlang + RabbitMQ + Redis +
# python3-kombu with a fast mirror, plus `apt-get update` (a few seconds).
#
# Adding a service: write the functions below for it and add its name to SERVICES.
#   svc_NAME_packages  print the Debian packages still missing (nothing when all is there)
#   svc_NAME_install   optional: non-Debian installs (npm, go build into an ignored cache, ...);
#                      runs beside apt-get and the other installs, so it must not need Debian packages
#   svc_NAME_start     optional: launch it without waiting (`up` calls every start first, so
#                      slow servers boot side by side); svc_NAME_up then waits for it
#   svc_NAME_up        start it unless it is already running; wait until it answers
#   svc_NAME_down      stop what svc_NAME_up started; tolerate a process that is already gone
#   svc_NAME_running   exit 0 when the recorded process is alive and answering
#   svc_NAME_status    print a one-line description of the running service
#   svc_NAME_env       print `export KOMBU_TEST_...=...` lines for .services/env
# Only svc_NAME_packages and svc_NAME_env are needed for a component that is not a server
# (see `python`). A new service goes in a file of its own, scripts/services.d/NAME.sh, which
# defines these functions and ends with `SERVICES+=(NAME)`.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${KOMBU_SERVICES_DIR:-$REPO/.services}"
ENV_FILE="$STATE/env"

# Start order; dependencies come first (sentinel watches redis).
# Services defined in scripts/services.d/ append themselves to this list.
SERVICES=(redis sentinel rabbitmq rabbitmq_fault rabbitmq_cluster sentinel_cluster python)

# Ports are probed in this range: below Linux's ephemeral range (32768-60999), so an outgoing
# connection cannot hold a port we picked, and away from the usual server defaults.
PORT_MIN=20000
PORT_MAX=32000

log() { printf 'services: %s\n' "$*" >&2; }
die() { printf 'services: error: %s\n' "$*" >&2; exit 1; }

now_ms() { date +%s%3N; }
elapsed() { # elapsed START_MS -> "1.234s"
	local d=$(($(now_ms) - $1))
	printf '%d.%03ds' $((d / 1000)) $((d % 1000))
}

# ---------------------------------------------------------------------------------------------
# Small helpers

# proc_running PID: the process exists and is not a zombie (a daemon killed outright stays a
# zombie until init reaps it, and kill -0 still succeeds on it).
proc_running() {
	kill -0 "$1" 2>/dev/null || return 1
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}

# pid_alive PID [COMM-SUBSTRING]: the process exists (and its command line contains the string).
pid_alive() {
	local pid=$1 want=${2:-}
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	proc_running "$pid" || return 1
	[[ -z $want ]] && return 0
	local cmd
	cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
	[[ $cmd == *"$want"* ]]
}

read_file() { # read_file PATH: its first line, or nothing
	if [[ -f $1 ]]; then head -n1 "$1"; fi
}

# wait_gone PID SECONDS: wait until the process has exited; 1 when it is still there.
wait_gone() {
	local pid=$1 i
	for ((i = 0; i < $2 * 10; i++)); do
		proc_running "$pid" || return 0
		sleep 0.1
	done
	! proc_running "$pid"
}

# stop_pid PID NAME: SIGTERM, wait, SIGKILL. Tolerates a process that is already gone.
stop_pid() {
	local pid=$1 name=$2
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	proc_running "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	wait_gone "$pid" 10 && return 0
	log "$name (pid $pid) ignored SIGTERM for 10s; sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
	wait_gone "$pid" 5 || log "warning: $name (pid $pid) is still alive"
}

port_listening() { # something accepts TCP connections on 127.0.0.1:PORT (or listens anywhere)
	local p=$1
	if command -v ss >/dev/null 2>&1; then
		[[ -n $(ss -Htln "sport = :$p" 2>/dev/null) ]] && return 0
	fi
	(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null
}

wait_port() { # wait_port PORT SECONDS
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		port_listening "$1" && return 0
		sleep 0.1
	done
	return 1
}

PICKED_PORTS=" "
# pick_port VAR: set VAR to a free TCP port not handed out earlier in this run.
pick_port() {
	local i p
	for ((i = 0; i < 500; i++)); do
		p=$((PORT_MIN + (RANDOM * 32768 + RANDOM) % (PORT_MAX - PORT_MIN)))
		[[ $PICKED_PORTS == *" $p "* ]] && continue
		port_listening "$p" && continue
		PICKED_PORTS+="$p "
		printf -v "$1" '%s' "$p"
		return 0
	done
	die "no free TCP port found in $PORT_MIN-$PORT_MAX"
}

# ---------------------------------------------------------------------------------------------
# Installing

APT_UPDATED=0
apt_install() {
	(($# > 0)) || return 0
	if [[ $(id -u) -ne 0 ]]; then
		die "missing Debian packages: $* (install them as root: apt-get install -y $*)"
	fi
	local start attempt
	start=$(now_ms)
	export DEBIAN_FRONTEND=noninteractive
	# Another apt/dpkg may run at the same time (seen on shared dev machines): wait for its lock,
	# and retry a failed run after repairing a half-configured dpkg state.
	for attempt in 1 2 3; do
		if ((APT_UPDATED == 0)); then
			log "apt-get update"
			if apt-get -o DPkg::Lock::Timeout=300 -qq update >"$STATE/apt.log" 2>&1; then
				APT_UPDATED=1
			else
				log "apt-get update failed (attempt $attempt); see $STATE/apt.log"
				sleep 5
				continue
			fi
		fi
		log "apt-get install $*"
		if apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "$@" >>"$STATE/apt.log" 2>&1; then
			log "installed $* in $(elapsed "$start")"
			return 0
		fi
		log "apt-get install failed (attempt $attempt); see $STATE/apt.log"
		tail -n 5 "$STATE/apt.log" >&2 || true
		sleep 5
		dpkg --configure -a >>"$STATE/apt.log" 2>&1 || true
	done
	die "could not install $*"
}

# install_missing NAME...: one apt-get for every missing Debian package, and beside it every
# svc_NAME_install (npm installs, go builds: slow on a fresh machine, so they run side by side).
# An svc_NAME_install must therefore not need the Debian packages of any service.
install_missing() {
	local s pkgs=() names=() pids=() i failed=()
	for s in "$@"; do
		if declare -F "svc_${s}_install" >/dev/null; then
			mkdir -p "$STATE"
			"svc_${s}_install" &
			names+=("$s")
			pids+=($!)
		fi
	done
	for s in "$@"; do
		if declare -F "svc_${s}_packages" >/dev/null; then
			# shellcheck disable=SC2207
			pkgs+=($("svc_${s}_packages"))
		fi
	done
	local apt_ok=1
	if ((${#pkgs[@]} > 0)); then
		# de-duplicate, keep order
		local uniq=() p
		for p in "${pkgs[@]}"; do
			[[ " ${uniq[*]-} " == *" $p "* ]] || uniq+=("$p")
		done
		(apt_install "${uniq[@]}") || apt_ok=0
	fi
	for i in "${!pids[@]}"; do
		wait "${pids[i]}" || failed+=("${names[i]}")
	done
	((apt_ok)) || die "could not install Debian packages (see $STATE/apt.log)"
	((${#failed[@]} == 0)) || die "install failed for: ${failed[*]}"
}

# ---------------------------------------------------------------------------------------------
# redis: a private redis-server, no persistence.

REDIS_DIR="$STATE/redis"

svc_redis_packages() {
	command -v redis-server >/dev/null 2>&1 || echo redis-server
	command -v redis-cli >/dev/null 2>&1 || echo redis-tools
}

redis_port() { read_file "$REDIS_DIR/port"; }
redis_pid() { read_file "$REDIS_DIR/redis.pid"; }

svc_redis_running() {
	local port pid
	port=$(redis_port) pid=$(redis_pid)
	[[ -n $port ]] && pid_alive "$pid" redis-server || return 1
	[[ $(redis-cli -p "$port" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p') == "$pid" ]]
}

svc_redis_up() {
	if svc_redis_running; then
		log "redis already up on 127.0.0.1:$(redis_port) (pid $(redis_pid))"
		return 0
	fi
	local port=${1:-} start attempt i pid
	rm -rf "$REDIS_DIR"
	mkdir -p "$REDIS_DIR"
	for attempt in 1 2 3 4 5; do
		[[ -n $port ]] || pick_port port
		start=$(now_ms)
		redis-server --port "$port" --bind 127.0.0.1 --protected-mode yes \
			--save '' --appendonly no --daemonize yes \
			--pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" --dir "$REDIS_DIR" \
			</dev/null >>"$REDIS_DIR/start.log" 2>&1 9>&- || true
		for ((i = 0; i < 100; i++)); do
			pid=$(redis_pid)
			if [[ -n $pid ]] && [[ $(redis-cli -p "$port" ping 2>/dev/null) == PONG ]]; then
				echo "$port" >"$REDIS_DIR/port"
				if svc_redis_running; then
					log "redis up on 127.0.0.1:$port (pid $pid) in $(elapsed "$start")"
					return 0
				fi
				break # someone else's server answered on that port
			fi
			sleep 0.05
		done
		log "redis did not start on port $port (attempt $attempt); log: $REDIS_DIR/redis.log"
		tail -n 5 "$REDIS_DIR/redis.log" >&2 2>/dev/null || true
		stop_pid "$(redis_pid)" redis-server
		rm -f "$REDIS_DIR/redis.pid" "$REDIS_DIR/port"
		port=""
	done
	die "redis-server failed to start"
}

svc_redis_down() {
	local pid
	pid=$(redis_pid)
	if pid_alive "$pid" redis-server; then
		redis-cli -p "$(redis_port)" shutdown nosave >/dev/null 2>&1 || true
		wait_gone "$pid" 5 || stop_pid "$pid" redis-server
		log "redis stopped (pid $pid)"
	fi
	rm -f "$REDIS_DIR/redis.pid" "$REDIS_DIR/port"
}

svc_redis_status() { echo "redis-server 127.0.0.1:$(redis_port) pid $(redis_pid)"; }

svc_redis_env() {
	echo "export KOMBU_TEST_REDIS_URL='redis://127.0.0.1:$(redis_port)/0'"
	echo "export KOMBU_TEST_REDIS_CLI='redis-cli -p $(redis_port)'"
}

# ---------------------------------------------------------------------------------------------
# sentinel: a redis-sentinel watching the redis above as master "mymaster", quorum 1.
# Started as `redis-server CONF --sentinel`, so Debian's separate redis-sentinel package
# (only a symlink plus an init script) is not needed.

SENTINEL_DIR="$STATE/sentinel"
SENTINEL_MASTER=mymaster

svc_sentinel_packages() { svc_redis_packages; }

sentinel_port() { read_file "$SENTINEL_DIR/port"; }
sentinel_pid() { read_file "$SENTINEL_DIR/sentinel.pid"; }

sentinel_master_port() { # the port the sentinel reports for mymaster
	redis-cli -p "$(sentinel_port)" SENTINEL get-master-addr-by-name "$SENTINEL_MASTER" 2>/dev/null |
		tr -d '\r' | sed -n 2p
}

svc_sentinel_running() {
	local port pid
	port=$(sentinel_port) pid=$(sentinel_pid)
	[[ -n $port ]] && pid_alive "$pid" redis || return 1
	[[ $(redis-cli -p "$port" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p') == "$pid" ]]
}

svc_sentinel_up() {
	local rport
	rport=$(redis_port)
	[[ -n $rport ]] || die "sentinel needs redis: run 'scripts/services.sh up redis sentinel'"
	if svc_sentinel_running; then
		if [[ $(sentinel_master_port) == "$rport" ]]; then
			log "sentinel already up on 127.0.0.1:$(sentinel_port) (pid $(sentinel_pid))"
			return 0
		fi
		log "sentinel watches an old redis; restarting it"
		svc_sentinel_down
	fi
	local port=${1:-} start attempt i pid
	rm -rf "$SENTINEL_DIR"
	mkdir -p "$SENTINEL_DIR"
	for attempt in 1 2 3 4 5; do
		[[ -n $port ]] || pick_port port
		# Sentinel rewrites its config file, so it must be a writable file of its own.
		cat >"$SENTINEL_DIR/sentinel.conf" <<-EOF
			port $port
			bind 127.0.0.1
			daemonize yes
			pidfile $SENTINEL_DIR/sentinel.pid
			logfile $SENTINEL_DIR/sentinel.log
			dir $SENTINEL_DIR
			sentinel resolve-hostnames no
			sentinel monitor $SENTINEL_MASTER 127.0.0.1 $rport 1
			sentinel down-after-milliseconds $SENTINEL_MASTER 5000
			sentinel failover-timeout $SENTINEL_MASTER 60000
		EOF
		start=$(now_ms)
		redis-server "$SENTINEL_DIR/sentinel.conf" --sentinel </dev/null >>"$SENTINEL_DIR/start.log" 2>&1 9>&- || true
		for ((i = 0; i < 100; i++)); do
			pid=$(sentinel_pid)
			if [[ -n $pid ]] && [[ $(redis-cli -p "$port" SENTINEL get-master-addr-by-name "$SENTINEL_MASTER" 2>/dev/null | tr -d '\r' | sed -n 2p) == "$rport" ]]; then
				echo "$port" >"$SENTINEL_DIR/port"
				if svc_sentinel_running; then
					log "sentinel up on 127.0.0.1:$port (pid $pid, master $SENTINEL_MASTER at :$rport) in $(elapsed "$start")"
					return 0
				fi
				break
			fi
			sleep 0.05
		done
		log "sentinel did not start on port $port (attempt $attempt); log: $SENTINEL_DIR/sentinel.log"
		tail -n 5 "$SENTINEL_DIR/sentinel.log" >&2 2>/dev/null || true
		stop_pid "$(sentinel_pid)" redis-sentinel
		rm -f "$SENTINEL_DIR/sentinel.pid" "$SENTINEL_DIR/port"
		port=""
	done
	die "redis sentinel failed to start"
}

svc_sentinel_down() {
	local pid
	pid=$(sentinel_pid)
	if pid_alive "$pid" redis; then
		redis-cli -p "$(sentinel_port)" shutdown >/dev/null 2>&1 || true
		wait_gone "$pid" 5 || stop_pid "$pid" redis-sentinel
		log "sentinel stopped (pid $pid)"
	fi
	rm -f "$SENTINEL_DIR/sentinel.pid" "$SENTINEL_DIR/port"
}

svc_sentinel_status() { echo "redis sentinel 127.0.0.1:$(sentinel_port) pid $(sentinel_pid), master $SENTINEL_MASTER -> :$(sentinel_master_port)"; }

svc_sentinel_env() {
	echo "export KOMBU_TEST_REDIS_SENTINEL_URL='sentinel://127.0.0.1:$(sentinel_port)/0?master_name=$SENTINEL_MASTER'"
}

# ---------------------------------------------------------------------------------------------
# rabbitmq, rabbitmq_fault: private RabbitMQ nodes (own node name, ports, data and log dirs,
# cookie). The rabbit_* functions act on the node chosen last with rabbit_use:
#
#   rabbitmq        the node all suites share. AMQP on 127.0.0.1, and AMQPS on a second port
#                   with test certificates (see TLS below) and the EXTERNAL mechanism
#                   (plugin rabbitmq_auth_mechanism_ssl, ssl_cert_login_from = common_name: a
#                   client certificate whose CN names a user logs in as that user).
#                   Mechanisms offered: PLAIN, AMQPLAIN, and EXTERNAL on TLS connections only.
#   rabbitmq_fault  a node of its own for fault tests, which kill it (SIGKILL or SIGTERM to the
#                   PID in KOMBU_TEST_AMQP_FAULT_PIDFILE) and start it again with the command
#                   KOMBU_TEST_AMQP_FAULT_RESTART (same node name, port and data: durable queues
#                   and persistent messages survive). The suites on the shared node, running at
#                   the same time, never notice.
#
# The nodes run as the invoking user through /usr/lib/rabbitmq/bin (Debian's wrappers in
# /usr/sbin would switch to user rabbitmq, which may not be able to reach REPO/.services).
# HOME points at a folder of ours holding the Erlang cookie; when Debian's cookie is readable we
# copy it, so plain `rabbitmqctl -n NODE ...` (Debian's wrapper, runs as user rabbitmq with that
# cookie) reaches our nodes too. Each node's bin/ folder has rabbitmqctl and rabbitmq-diagnostics
# wrappers preset for it; KOMBU_TEST_RABBITMQCTL names the shared node's rabbitmqctl. Node names
# carry a checksum of $STATE, so two state folders (two checkouts, or KOMBU_SERVICES_DIR) never
# claim the same node name.
#
# Both nodes boot at the same time: `up` launches every node first (svc_NAME_start) and then
# waits for each, so the second costs ~1-2 s instead of ~5 s (figures in the header).
#
# TLS: a test CA, a server certificate for localhost (SAN DNS:localhost only, so that dialing
# 127.0.0.1 fails the host-name check, which transport/amqp's TestRabbitMQTLS relies on) and a
# client certificate with CN guest, all ECDSA P-256, made once with openssl in $STATE/tls and
# kept across down/up (made again when one is missing or expires within a day).
#
# Erlang distribution: the nodes' dist ports and the CLI tools' own listeners are bound to
# 127.0.0.1 (inet_dist_use_interface). epmd (port 4369, shared by all Erlang nodes on the host):
# when none runs, we start one bound to 127.0.0.1 and stop it at `down` if no other node still
# uses it; an epmd that was already running is left alone.

RABBIT_LIB=/usr/lib/rabbitmq/bin
CLUSTER_DIR="$STATE/rabbitmq-cluster"
EPMD_DIR="$STATE/epmd"
TLS_DIR="$STATE/tls"
LOOPBACK_DIST="-kernel inet_dist_use_interface {127,0,0,1}"
declare -A RABBIT_LAUNCHED=() # node service name -> launch time (ms) in this run

# rabbit_use SERVICE: point the rabbit_* functions at the node of rabbitmq or rabbitmq_fault.
rabbit_use() {
	case $1 in
	rabbitmq) RABBIT_DIR="$STATE/rabbitmq" RABBIT_PREFIX=kombu-test RABBIT_TLS=1 ;;
	rabbitmq_fault) RABBIT_DIR="$STATE/rabbitmq-fault" RABBIT_PREFIX=kombu-fault RABBIT_TLS=0 ;;
	rabbitmq_cluster[1-3])
		# The nodes of the rabbitmq_cluster service share one HOME, so one Erlang cookie.
		RABBIT_DIR="$CLUSTER_DIR/node${1#rabbitmq_cluster}" RABBIT_PREFIX="kombu-cluster${1#rabbitmq_cluster}" RABBIT_TLS=0
		RABBIT_HOME="$CLUSTER_DIR/home"
		RABBIT_SVC=$1
		return 0
		;;
	*) die "rabbit_use: unknown node service '$1'" ;;
	esac
	RABBIT_HOME="$RABBIT_DIR/home"
	RABBIT_SVC=$1
}
rabbit_use rabbitmq

rabbit_node() {
	local n
	n=$(read_file "$RABBIT_DIR/node")
	if [[ -z $n ]]; then
		n="$RABBIT_PREFIX-$(printf '%s' "$STATE" | cksum | cut -d' ' -f1)@localhost"
	fi
	echo "$n"
}
rabbit_port() { read_file "$RABBIT_DIR/port"; }
rabbit_tls_port() { read_file "$RABBIT_DIR/tls_port"; }
rabbit_pid() { read_file "$RABBIT_DIR/rabbitmq.pid"; }

svc_rabbitmq_packages() {
	[[ -x $RABBIT_LIB/rabbitmq-server ]] || echo rabbitmq-server
	command -v openssl >/dev/null 2>&1 || echo openssl
}
svc_rabbitmq_fault_packages() {
	[[ -x $RABBIT_LIB/rabbitmq-server ]] || echo rabbitmq-server
}

# rabbit_env: the environment every rabbitmq-server / rabbitmqctl call of ours runs with.
rabbit_env() {
	export HOME="$RABBIT_HOME"
	export RABBITMQ_NODENAME
	RABBITMQ_NODENAME=$(rabbit_node)
	export RABBITMQ_CONF_ENV_FILE="$RABBIT_DIR/rabbitmq-env.conf"
	export RABBITMQ_CONFIG_FILE="$RABBIT_DIR/rabbitmq.conf"
	export RABBITMQ_ADVANCED_CONFIG_FILE="$RABBIT_DIR/advanced.config"
	export RABBITMQ_ENABLED_PLUGINS_FILE="$RABBIT_DIR/enabled_plugins"
	export RABBITMQ_MNESIA_BASE="$RABBIT_DIR/mnesia"
	export RABBITMQ_LOG_BASE="$RABBIT_DIR/log"
	export RABBITMQ_PID_FILE="$RABBIT_DIR/rabbitmq.pid"
	export RABBITMQ_CTL_ERL_ARGS="$LOOPBACK_DIST"
	export ERL_EPMD_ADDRESS=127.0.0.1
}

rabbit_running() {
	local pid port tls
	pid=$(rabbit_pid) port=$(rabbit_port) tls=$(rabbit_tls_port)
	[[ -n $port ]] && pid_alive "$pid" beam && port_listening "$port" || return 1
	# A node started before it had a TLS listener does not count: `up` replaces it.
	if ((RABBIT_TLS)); then
		[[ -n $tls ]] && port_listening "$tls"
	fi
}

# rabbit_registered: epmd knows the node's name (it runs, or is still shutting down).
rabbit_registered() {
	local short
	short=$(rabbit_node)
	short=${short%@*}
	epmd -names 2>/dev/null | grep -q "^name $short at"
}

epmd_up() {
	mkdir -p "$EPMD_DIR"
	if port_listening 4369; then
		return 0 # ours from an earlier run, or someone else's: either way, use it
	fi
	local epmd pid
	epmd=$(command -v epmd || true)
	[[ -n $epmd ]] || die "epmd not found (package erlang-base)"
	setsid "$epmd" -address 127.0.0.1 </dev/null >"$EPMD_DIR/epmd.log" 2>&1 9>&- &
	pid=$!
	echo "$pid" >"$EPMD_DIR/epmd.pid"
	wait_port 4369 5 || die "epmd did not start; see $EPMD_DIR/epmd.log"
	log "epmd up on 127.0.0.1:4369 (pid $pid)"
}

epmd_down() {
	local pid others
	pid=$(read_file "$EPMD_DIR/epmd.pid")
	[[ -n $pid ]] || return 0
	if pid_alive "$pid" epmd; then
		others=$(epmd -names 2>/dev/null | grep -c '^name ' || true)
		if ((others > 0)); then
			log "leaving epmd (pid $pid) running: $others other Erlang node(s) registered"
			return 0
		fi
		stop_pid "$pid" epmd
		log "epmd stopped (pid $pid)"
	fi
	rm -f "$EPMD_DIR/epmd.pid"
}

# tls_files_ok: the test certificates are all there and none expires within a day.
tls_files_ok() {
	local f
	for f in ca.pem server.pem server-key.pem client.pem client-key.pem; do
		[[ -s $TLS_DIR/$f ]] || return 1
	done
	for f in ca.pem server.pem client.pem; do
		openssl x509 -noout -checkend 86400 -in "$TLS_DIR/$f" >/dev/null 2>&1 || return 1
	done
}

# tls_issue NAME CN EXTENSIONS: a P-256 key NAME-key.pem and a certificate NAME.pem signed by the
# CA in the current folder.
tls_issue() {
	openssl ecparam -name prime256v1 -genkey -noout -out "$1-key.pem"
	openssl req -new -key "$1-key.pem" -subj "/CN=$2" -out "$1.csr"
	printf '%s\n' "${@:3}" >"$1.ext"
	openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -set_serial "0x$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" \
		-days 3650 -sha256 -extfile "$1.ext" -out "$1.pem"
	rm -f "$1.csr" "$1.ext"
}

# tls_pki: make the test CA and certificates in $TLS_DIR unless usable ones are there.
tls_pki() {
	tls_files_ok && return 0
	local start tmp
	start=$(now_ms)
	mkdir -p "$STATE"
	tmp=$(mktemp -d "$STATE/tls.new.XXXXXX")
	if ! (
		set -e
		cd "$tmp"
		umask 077
		openssl ecparam -name prime256v1 -genkey -noout -out ca-key.pem
		openssl req -x509 -new -key ca-key.pem -sha256 -days 3650 -subj "/CN=kombu-go test CA" \
			-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem
		tls_issue server localhost "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
			"extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost"
		tls_issue client guest "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
			"extendedKeyUsage=clientAuth"
		rm -f ca-key.pem # nothing else is ever signed with it
	) >"$tmp/openssl.log" 2>&1; then
		tail -n 5 "$tmp/openssl.log" >&2 || true
		die "could not make the test certificates (openssl log: $tmp/openssl.log)"
	fi
	rm -f "$tmp/openssl.log"
	chmod 755 "$tmp"
	chmod 644 "$tmp/ca.pem" "$tmp/server.pem" "$tmp/client.pem"
	rm -rf "$TLS_DIR"
	mv "$tmp" "$TLS_DIR"
	log "test CA and certificates made in ${TLS_DIR#"$REPO"/} in $(elapsed "$start")"
}

write_rabbit_files() { # write_rabbit_files PORT DIST_PORT [TLS_PORT]
	local port=$1 dist=$2 tls=${3:-}
	mkdir -p "$RABBIT_HOME" "$RABBIT_DIR/mnesia" "$RABBIT_DIR/log" "$RABBIT_DIR/bin"
	chmod 700 "$RABBIT_HOME"
	if [[ ! -s $RABBIT_HOME/.erlang.cookie ]]; then
		if [[ -r /var/lib/rabbitmq/.erlang.cookie ]]; then
			cat /var/lib/rabbitmq/.erlang.cookie >"$RABBIT_HOME/.erlang.cookie"
		else
			od -An -N20 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F >"$RABBIT_HOME/.erlang.cookie"
		fi
		chmod 400 "$RABBIT_HOME/.erlang.cookie"
	fi
	: >"$RABBIT_DIR/rabbitmq-env.conf" # do not read /etc/rabbitmq/rabbitmq-env.conf
	echo '[].' >"$RABBIT_DIR/advanced.config"
	cat >"$RABBIT_DIR/rabbitmq.conf" <<-EOF
		listeners.tcp.default = 127.0.0.1:$port
		loopback_users.guest = true
		default_user = guest
		default_pass = guest
		default_vhost = /
		disk_free_limit.absolute = 10MB
		log.console = false
		log.file.level = info
	EOF
	if [[ -n $tls ]]; then
		# No management plugin (nothing else listens); the EXTERNAL mechanism for TLS clients.
		echo '[rabbitmq_auth_mechanism_ssl].' >"$RABBIT_DIR/enabled_plugins"
		cat >>"$RABBIT_DIR/rabbitmq.conf" <<-EOF
			listeners.ssl.default = 127.0.0.1:$tls
			ssl_options.cacertfile = $TLS_DIR/ca.pem
			ssl_options.certfile = $TLS_DIR/server.pem
			ssl_options.keyfile = $TLS_DIR/server-key.pem
			ssl_options.verify = verify_peer
			ssl_options.fail_if_no_peer_cert = false
			ssl_options.versions.1 = tlsv1.3
			ssl_options.versions.2 = tlsv1.2
			auth_mechanisms.1 = PLAIN
			auth_mechanisms.2 = AMQPLAIN
			auth_mechanisms.3 = EXTERNAL
			ssl_cert_login_from = common_name
		EOF
		echo "$tls" >"$RABBIT_DIR/tls_port"
	else
		echo '[].' >"$RABBIT_DIR/enabled_plugins" # no plugins at all
		rm -f "$RABBIT_DIR/tls_port"
	fi
	echo "$port" >"$RABBIT_DIR/port"
	echo "$dist" >"$RABBIT_DIR/dist_port"
	rabbit_node >"$RABBIT_DIR/node"
	local tool
	for tool in rabbitmqctl rabbitmq-diagnostics rabbitmq-queues; do
		cat >"$RABBIT_DIR/bin/$tool" <<-EOF
			#!/bin/sh
			# $tool preset for the private test node $(rabbit_node) (written by scripts/services.sh).
			export HOME='$RABBIT_HOME' RABBITMQ_NODENAME='$(rabbit_node)' RABBITMQ_CONF_ENV_FILE='$RABBIT_DIR/rabbitmq-env.conf'
			export RABBITMQ_CTL_ERL_ARGS='$LOOPBACK_DIST'
			exec $RABBIT_LIB/$tool "\$@"
		EOF
		chmod +x "$RABBIT_DIR/bin/$tool"
	done
	cat >"$RABBIT_DIR/bin/restart" <<-EOF
		#!/bin/sh
		# Start the node $(rabbit_node) again (after a test killed it) or restart it, on the same
		# ports and data (written by scripts/services.sh).
		KOMBU_SERVICES_DIR='$STATE'
		export KOMBU_SERVICES_DIR
		exec '$REPO/scripts/services.sh' restart $RABBIT_SVC
	EOF
	chmod +x "$RABBIT_DIR/bin/restart"
}

# rabbit_launch MODE: start the node without waiting for it (rabbit_await waits).
#   fresh     new data dir and ports
#   keep      the recorded ports and data (restart)
#   newports  the recorded data, new ports (after a failed start)
rabbit_launch() {
	local mode=$1 port="" dist="" tls=""
	# A node that still holds the name (its pid file was lost) would make the new one fail.
	if [[ -f $RABBIT_DIR/node ]] && rabbit_registered; then
		log "stopping a stray node $(rabbit_node)"
		timeout 60 "$RABBIT_DIR/bin/rabbitmqctl" -q stop >/dev/null 2>&1 || true
	fi
	if [[ $mode == keep && -n $(rabbit_port) ]]; then
		port=$(rabbit_port) dist=$(read_file "$RABBIT_DIR/dist_port") tls=$(rabbit_tls_port)
	elif [[ $mode != newports ]]; then
		rm -rf "$RABBIT_DIR"
	fi
	epmd_up
	((RABBIT_TLS)) && tls_pki
	[[ -n $port ]] || pick_port port
	[[ -n $dist ]] || pick_port dist
	if ((RABBIT_TLS)) && [[ -z $tls ]]; then
		pick_port tls
	fi
	write_rabbit_files "$port" "$dist" "$tls"
	rm -f "$RABBIT_DIR/rabbitmq.pid"
	RABBIT_LAUNCHED[$RABBIT_SVC]=$(now_ms)
	(
		rabbit_env
		export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$port" RABBITMQ_DIST_PORT="$dist"
		export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="$LOOPBACK_DIST"
		cd "$RABBIT_DIR"
		"$RABBIT_LIB/rabbitmq-server" -detached </dev/null >>"$RABBIT_DIR/start.log" 2>&1 9>&-
	) || true
}

# rabbit_await: wait until the launched node has started the rabbit application and accepts
# connections on its ports; 1 when it did not.
rabbit_await() {
	local tls
	# `wait PIDFILE` returns once the pid file exists, distribution is up and the rabbit
	# application has started (or fails when the OS process dies).
	timeout 100 "$RABBIT_DIR/bin/rabbitmqctl" -q wait --timeout 90 "$RABBIT_DIR/rabbitmq.pid" \
		>>"$RABBIT_DIR/start.log" 2>&1 9>&- || return 1
	wait_port "$(rabbit_port)" 10 || return 1
	tls=$(rabbit_tls_port)
	[[ -z $tls ]] || wait_port "$tls" 10
}

# rabbit_start: launch the node unless it runs (or was launched already in this run).
rabbit_start() {
	rabbit_running && return 0
	[[ -n ${RABBIT_LAUNCHED[$RABBIT_SVC]:-} ]] && return 0
	rabbit_launch fresh
}

# rabbit_up [keep]: start the node (unless rabbit_start launched it) and wait for it. With
# "keep", reuse the recorded ports and data (restart).
rabbit_up() {
	local mode=fresh attempt pid tls
	[[ ${1:-} == keep ]] && mode=keep
	if [[ -z ${RABBIT_LAUNCHED[$RABBIT_SVC]:-} ]] && rabbit_running; then
		log "$RABBIT_SVC already up on 127.0.0.1:$(rabbit_port) (node $(rabbit_node), pid $(rabbit_pid))"
		return 0
	fi
	for attempt in 1 2 3; do
		[[ -n ${RABBIT_LAUNCHED[$RABBIT_SVC]:-} ]] || rabbit_launch "$mode"
		if rabbit_await; then
			pid=$(rabbit_pid) tls=$(rabbit_tls_port)
			log "$RABBIT_SVC up on 127.0.0.1:$(rabbit_port)${tls:+ (amqps :$tls)} (node $(rabbit_node), pid $pid, dist port $(read_file "$RABBIT_DIR/dist_port")) in $(elapsed "${RABBIT_LAUNCHED[$RABBIT_SVC]}")"
			unset "RABBIT_LAUNCHED[$RABBIT_SVC]"
			return 0
		fi
		log "$RABBIT_SVC did not start on port $(rabbit_port) (attempt $attempt); logs in $RABBIT_DIR/log and start.log"
		tail -n 15 "$RABBIT_DIR/start.log" >&2 || true
		rabbit_down keep
		unset "RABBIT_LAUNCHED[$RABBIT_SVC]"
		[[ $mode == fresh ]] || mode=newports
	done
	die "$RABBIT_SVC: rabbitmq-server failed to start"
}

# rabbit_down [keep]: stop the node; without keep, also epmd when no other node uses it.
rabbit_down() {
	local pid i start
	pid=$(rabbit_pid)
	if [[ -z $pid && -n ${RABBIT_LAUNCHED[$RABBIT_SVC]:-} ]]; then
		# Launched in this run (an `up` that failed later): wait for its pid file.
		for ((i = 0; i < 100; i++)); do
			pid=$(rabbit_pid)
			[[ -z $pid ]] || break
			sleep 0.1
		done
	fi
	if pid_alive "$pid" beam; then
		# RabbitMQ stops cleanly on SIGTERM (as with `rabbitmqctl stop`), in ~1 s instead of the
		# 3-7 s of rabbitmqctl, which first boots an Erlang VM of its own.
		start=$(now_ms)
		kill -TERM "$pid" 2>/dev/null || true
		if ! wait_gone "$pid" 30; then
			log "$RABBIT_SVC (pid $pid) still running 30 s after SIGTERM; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			wait_gone "$pid" 5 || log "warning: $RABBIT_SVC (pid $pid) is still alive"
		fi
		log "$RABBIT_SVC stopped (node $(rabbit_node), pid $pid) in $(elapsed "$start")"
	fi
	rm -f "$RABBIT_DIR/rabbitmq.pid"
	[[ ${1:-} == keep ]] || epmd_down
}

rabbit_restart() {
	rabbit_down keep
	# A killed node may still be registered for a moment after its process ended.
	local i
	for ((i = 0; i < 50; i++)); do
		rabbit_registered || break
		sleep 0.1
	done
	rabbit_up keep
}

svc_rabbitmq_start() { rabbit_use rabbitmq && rabbit_start; }
svc_rabbitmq_up() { rabbit_use rabbitmq && rabbit_up "$@"; }
svc_rabbitmq_down() { rabbit_use rabbitmq && rabbit_down "$@"; }
svc_rabbitmq_running() { rabbit_use rabbitmq && rabbit_running; }
svc_rabbitmq_restart() { rabbit_use rabbitmq && rabbit_restart; }
svc_rabbitmq_status() {
	rabbit_use rabbitmq
	echo "rabbitmq 127.0.0.1:$(rabbit_port) amqps :$(rabbit_tls_port) node $(rabbit_node) pid $(rabbit_pid)"
}
svc_rabbitmq_env() {
	rabbit_use rabbitmq
	echo "export KOMBU_TEST_AMQP_URL='amqp://guest:guest@127.0.0.1:$(rabbit_port)//'"
	echo "export KOMBU_TEST_RABBITMQ_NODE='$(rabbit_node)'"
	echo "export KOMBU_TEST_RABBITMQCTL='$RABBIT_DIR/bin/rabbitmqctl'"
	echo "export KOMBU_TEST_AMQPS_URL='amqps://guest:guest@localhost:$(rabbit_tls_port)//'"
	echo "export KOMBU_TEST_AMQPS_CA='$TLS_DIR/ca.pem'"
	echo "export KOMBU_TEST_AMQPS_CERT='$TLS_DIR/client.pem'"
	echo "export KOMBU_TEST_AMQPS_KEY='$TLS_DIR/client-key.pem'"
}

svc_rabbitmq_fault_start() { rabbit_use rabbitmq_fault && rabbit_start; }
svc_rabbitmq_fault_up() { rabbit_use rabbitmq_fault && rabbit_up "$@"; }
svc_rabbitmq_fault_down() { rabbit_use rabbitmq_fault && rabbit_down "$@"; }
svc_rabbitmq_fault_running() { rabbit_use rabbitmq_fault && rabbit_running; }
svc_rabbitmq_fault_restart() { rabbit_use rabbitmq_fault && rabbit_restart; }
svc_rabbitmq_fault_status() {
	rabbit_use rabbitmq_fault
	echo "rabbitmq 127.0.0.1:$(rabbit_port) node $(rabbit_node) pid $(rabbit_pid) (for fault tests)"
}
svc_rabbitmq_fault_env() {
	rabbit_use rabbitmq_fault
	echo "export KOMBU_TEST_AMQP_FAULT_URL='amqp://guest:guest@127.0.0.1:$(rabbit_port)//'"
	echo "export KOMBU_TEST_AMQP_FAULT_PIDFILE='$RABBIT_DIR/rabbitmq.pid'"
	echo "export KOMBU_TEST_AMQP_FAULT_RESTART='$RABBIT_DIR/bin/restart'"
	echo "export KOMBU_TEST_AMQP_FAULT_RABBITMQCTL='$RABBIT_DIR/bin/rabbitmqctl'"
}

# ---------------------------------------------------------------------------------------------
# rabbitmq_cluster: three private nodes (kombu-cluster1..3-CKSUM@localhost) joined into one
# cluster on loopback, for the failover fault test (a quorum queue; the node the client is on
# is killed; the client fails over through its URL list). The nodes boot side by side with the
# other nodes (svc_rabbitmq_cluster_start); `up` then joins nodes 2 and 3 to node 1 (stop_app,
# join_cluster, start_app). They share one HOME (one Erlang cookie). When any node is missing
# at `up`, the whole cluster is made again from scratch (a fresh node cannot rejoin peers that
# remember its old data). A test kills a node by the pid in its pid file
# (KOMBU_TEST_AMQP_CLUSTER_PIDFILES) and starts it again with KOMBU_TEST_AMQP_CLUSTER_RESTART N
# (N = 1..3; same name, ports and data: it rejoins the cluster by itself).

CLUSTER_NODES=(rabbitmq_cluster1 rabbitmq_cluster2 rabbitmq_cluster3)

cluster_ctl() { # cluster_ctl N ARGS...: node N's rabbitmqctl
	local n=$1
	shift
	timeout 120 "$CLUSTER_DIR/node$n/bin/rabbitmqctl" "$@"
}

cluster_all() { # cluster_all FUNCTION: run it for each node (after rabbit_use); 1 if one fails
	local s rc=0
	for s in "${CLUSTER_NODES[@]}"; do
		rabbit_use "$s"
		"$1" || rc=1
	done
	return $rc
}

# cluster_joined: node 1 reports all three nodes running in its cluster.
cluster_joined() {
	local out running s
	out=$(cluster_ctl 1 -q cluster_status --formatter json 2>/dev/null) || return 1
	running=$(sed -n 's/.*"running_nodes":\[\([^]]*\)\].*/\1/p' <<<"$out")
	for s in "${CLUSTER_NODES[@]}"; do
		rabbit_use "$s"
		[[ $running == *"\"$(rabbit_node)\""* ]] || return 1
	done
}

svc_rabbitmq_cluster_packages() { svc_rabbitmq_fault_packages; }

svc_rabbitmq_cluster_running() { cluster_all rabbit_running; }

svc_rabbitmq_cluster_start() {
	svc_rabbitmq_cluster_running && return 0
	local s
	for s in "${CLUSTER_NODES[@]}"; do # a partial cluster is made again from scratch
		rabbit_use "$s"
		rabbit_down keep
	done
	rm -rf "$CLUSTER_DIR"
	mkdir -p "$CLUSTER_DIR/bin"
	cluster_all rabbit_start
}

svc_rabbitmq_cluster_up() {
	local s n first start
	[[ -n ${RABBIT_LAUNCHED[rabbitmq_cluster1]:-} ]] || svc_rabbitmq_cluster_start
	for s in "${CLUSTER_NODES[@]}"; do
		rabbit_use "$s"
		rabbit_up
	done
	if cluster_joined; then
		return 0
	fi
	start=$(now_ms)
	rabbit_use rabbitmq_cluster1
	first=$(rabbit_node)
	# Nodes 2 and 3 join at the same time (each rabbitmqctl call boots an Erlang VM of its own).
	local pids=() failed=0
	for n in 2 3; do
		{ cluster_ctl "$n" -q stop_app && cluster_ctl "$n" -q join_cluster "$first" && cluster_ctl "$n" -q start_app; } \
			>>"$CLUSTER_DIR/join$n.log" 2>&1 9>&- &
		pids+=($!)
	done
	for n in "${!pids[@]}"; do
		wait "${pids[n]}" || failed=$((n + 2))
	done
	if ((failed)); then # once more, alone
		log "rabbitmq_cluster: node $failed could not join beside the other; trying again alone"
		{ cluster_ctl "$failed" -q stop_app && cluster_ctl "$failed" -q join_cluster "$first"; cluster_ctl "$failed" -q start_app; } \
			>>"$CLUSTER_DIR/join$failed.log" 2>&1 9>&- || {
			tail -n 10 "$CLUSTER_DIR/join$failed.log" >&2 || true
			die "rabbitmq_cluster: node $failed could not join $first (log: $CLUSTER_DIR/join$failed.log)"
		}
	fi
	cluster_joined || die "rabbitmq_cluster: the nodes joined but node 1 does not list them all as running"
	cat >"$CLUSTER_DIR/bin/restart" <<-EOF
		#!/bin/sh
		# restart N: start cluster node N (1-3) again after a test killed it, on the same ports
		# and data; it rejoins the cluster by itself (written by scripts/services.sh).
		case "\$1" in 1|2|3) ;; *) echo "usage: \$0 1|2|3" >&2; exit 2 ;; esac
		KOMBU_SERVICES_DIR='$STATE'
		export KOMBU_SERVICES_DIR
		exec '$REPO/scripts/services.sh' restart "rabbitmq_cluster\$1"
	EOF
	chmod +x "$CLUSTER_DIR/bin/restart"
	log "rabbitmq_cluster: nodes 2 and 3 joined $first in $(elapsed "$start")"
}

svc_rabbitmq_cluster_down() {
	local i
	for ((i = ${#CLUSTER_NODES[@]} - 1; i >= 0; i--)); do
		rabbit_use "${CLUSTER_NODES[i]}"
		rabbit_down keep
	done
	epmd_down
}

svc_rabbitmq_cluster_status() {
	local s out=""
	for s in "${CLUSTER_NODES[@]}"; do
		rabbit_use "$s"
		out+="$(rabbit_node) :$(rabbit_port) pid $(rabbit_pid); "
	done
	echo "rabbitmq cluster: ${out%; }"
}

svc_rabbitmq_cluster_env() {
	local s urls="" nodes="" pids=""
	for s in "${CLUSTER_NODES[@]}"; do
		rabbit_use "$s"
		urls+="amqp://guest:guest@127.0.0.1:$(rabbit_port)//;"
		nodes+="$(rabbit_node);"
		pids+="$RABBIT_DIR/rabbitmq.pid;"
	done
	echo "export KOMBU_TEST_AMQP_CLUSTER_URLS='${urls%;}'"
	echo "export KOMBU_TEST_AMQP_CLUSTER_NODES='${nodes%;}'"
	echo "export KOMBU_TEST_AMQP_CLUSTER_PIDFILES='${pids%;}'"
	echo "export KOMBU_TEST_AMQP_CLUSTER_RESTART='$CLUSTER_DIR/bin/restart'"
	echo "export KOMBU_TEST_AMQP_CLUSTER_RABBITMQCTL='$CLUSTER_DIR/node1/bin/rabbitmqctl'"
}

# ---------------------------------------------------------------------------------------------
# sentinel_cluster: Redis replication with Sentinel failover, for the failover fault test: a
# primary (r1) and a replica (r2), appendonly, each in a dir of its own, and three sentinels
# (s1-s3; quorum 2, down-after-milliseconds 1000, failover-timeout 5000) watching master
# "kombu-failover". `up` waits until every sentinel knows the two others and the replica, so
# that a kill right after is acted on (~2.3 s to a new primary). A test finds the primary by
# asking a sentinel (KOMBU_TEST_REDIS_FAILOVER_SENTINELS), kills it by the process_id it reports
# in INFO, and afterwards runs KOMBU_TEST_REDIS_FAILOVER_REVIVE, which starts every dead member
# again on its port and dir (a dead redis as a replica of the current primary).
# (The `sentinel` service above is a single sentinel with quorum 1, for the transport's tests.)

SC_DIR="$STATE/sentinel-cluster"
SC_MASTER=kombu-failover
SC_REDIS=(r1 r2)
SC_SENTINELS=(s1 s2 s3)

svc_sentinel_cluster_packages() { svc_redis_packages; }

sc_port() { read_file "$SC_DIR/$1/port"; }
sc_pid() { read_file "$SC_DIR/$1/pid"; }
sc_alive() { pid_alive "$(sc_pid "$1")" redis; }

# sc_redis_launch NAME [PRIMARY_PORT]: start redis NAME on its recorded port (as a replica of
# PRIMARY_PORT when given).
sc_redis_launch() {
	local d="$SC_DIR/$1"
	redis-server --port "$(sc_port "$1")" --bind 127.0.0.1 --protected-mode yes \
		--save '' --appendonly yes --daemonize yes ${2:+--replicaof 127.0.0.1 "$2"} \
		--pidfile "$d/pid" --logfile "$d/redis.log" --dir "$d" \
		</dev/null >>"$d/start.log" 2>&1 9>&- || true
}

sc_sentinel_launch() { # sc_sentinel_launch NAME: start sentinel NAME with its config file
	redis-server "$SC_DIR/$1/sentinel.conf" --sentinel </dev/null >>"$SC_DIR/$1/start.log" 2>&1 9>&- || true
}

sc_master_port() { # the primary's port as the first answering sentinel reports it
	local s p
	for s in "${SC_SENTINELS[@]}"; do
		p=$(redis-cli -p "$(sc_port "$s")" SENTINEL get-master-addr-by-name "$SC_MASTER" 2>/dev/null | tr -d '\r' | sed -n 2p)
		if [[ -n $p ]]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# sc_ready: every redis answers, the replica's link is up, every sentinel sees 2 other
# sentinels and 1 replica.
sc_ready() {
	local s info
	for s in "${SC_REDIS[@]}"; do
		[[ $(redis-cli -p "$(sc_port "$s")" ping 2>/dev/null) == PONG ]] || return 1
		info=$(redis-cli -p "$(sc_port "$s")" info replication 2>/dev/null | tr -d '\r')
		[[ $info == *role:master* || $info == *master_link_status:up* ]] || return 1
	done
	for s in "${SC_SENTINELS[@]}"; do
		info=$(redis-cli -p "$(sc_port "$s")" SENTINEL master "$SC_MASTER" 2>/dev/null | tr -d '\r')
		[[ $(sed -n '/^num-other-sentinels$/{n;p}' <<<"$info") == 2 ]] || return 1
		[[ $(sed -n '/^num-slaves$/{n;p}' <<<"$info") == 1 ]] || return 1
	done
}

svc_sentinel_cluster_running() {
	local s
	for s in "${SC_REDIS[@]}" "${SC_SENTINELS[@]}"; do
		sc_alive "$s" || return 1
	done
}

SC_LAUNCHED=""
svc_sentinel_cluster_start() {
	svc_sentinel_cluster_running && return 0
	svc_sentinel_cluster_down
	rm -rf "$SC_DIR"
	local s port
	for s in "${SC_REDIS[@]}" "${SC_SENTINELS[@]}"; do
		mkdir -p "$SC_DIR/$s"
		pick_port port
		echo "$port" >"$SC_DIR/$s/port"
	done
	SC_LAUNCHED=$(now_ms)
	sc_redis_launch r1
	sc_redis_launch r2 "$(sc_port r1)"
	for s in "${SC_SENTINELS[@]}"; do
		# Sentinel rewrites its config file, so it must be a writable file of its own.
		cat >"$SC_DIR/$s/sentinel.conf" <<-EOF
			port $(sc_port "$s")
			bind 127.0.0.1
			daemonize yes
			pidfile $SC_DIR/$s/pid
			logfile $SC_DIR/$s/sentinel.log
			dir $SC_DIR/$s
			sentinel resolve-hostnames no
			sentinel monitor $SC_MASTER 127.0.0.1 $(sc_port r1) 2
			sentinel down-after-milliseconds $SC_MASTER 1000
			sentinel failover-timeout $SC_MASTER 5000
		EOF
		sc_sentinel_launch "$s"
	done
	mkdir -p "$SC_DIR/bin"
	cat >"$SC_DIR/bin/revive" <<-EOF
		#!/bin/sh
		# Start every dead member of the sentinel_cluster again (written by scripts/services.sh).
		KOMBU_SERVICES_DIR='$STATE'
		export KOMBU_SERVICES_DIR
		exec '$REPO/scripts/services.sh' restart sentinel_cluster
	EOF
	chmod +x "$SC_DIR/bin/revive"
}

svc_sentinel_cluster_up() {
	local i
	if [[ -z $SC_LAUNCHED ]]; then
		if svc_sentinel_cluster_running && sc_ready; then
			log "sentinel_cluster already up (primary :$(sc_master_port))"
			return 0
		fi
		svc_sentinel_cluster_start
		[[ -n $SC_LAUNCHED ]] || SC_LAUNCHED=$(now_ms)
	fi
	for ((i = 0; i < 600; i++)); do # sentinels find each other in 4-5 s (hello every 2 s)
		if svc_sentinel_cluster_running && sc_ready; then
			log "sentinel_cluster up: primary :$(sc_port r1), replica :$(sc_port r2), sentinels :$(sc_port s1) :$(sc_port s2) :$(sc_port s3) in $(elapsed "$SC_LAUNCHED")"
			SC_LAUNCHED=""
			return 0
		fi
		sleep 0.1
	done
	tail -n 5 "$SC_DIR"/*/*.log >&2 2>/dev/null || true
	die "sentinel_cluster not ready after 60 s (logs in $SC_DIR)"
}

# svc_sentinel_cluster_restart: start again every member a test killed, on its port and dir; a
# redis comes back as a replica of the current primary.
svc_sentinel_cluster_restart() {
	local s primary i
	svc_sentinel_cluster_running || [[ -d $SC_DIR ]] || die "sentinel_cluster was never started"
	for s in "${SC_SENTINELS[@]}"; do
		sc_alive "$s" || sc_sentinel_launch "$s"
	done
	primary=$(sc_master_port || true)
	for s in "${SC_REDIS[@]}"; do
		if ! sc_alive "$s"; then
			if [[ -n $primary && $primary != "$(sc_port "$s")" ]]; then
				sc_redis_launch "$s" "$primary"
			else
				sc_redis_launch "$s"
			fi
			log "sentinel_cluster: $s started again on :$(sc_port "$s")${primary:+ (primary :$primary)}"
		fi
	done
	for ((i = 0; i < 300; i++)); do
		svc_sentinel_cluster_running && sc_ready && return 0
		sleep 0.1
	done
	die "sentinel_cluster not ready 30 s after the restart (logs in $SC_DIR)"
}

svc_sentinel_cluster_down() {
	local s pid
	[[ -d $SC_DIR ]] || return 0
	for s in "${SC_SENTINELS[@]}" "${SC_REDIS[@]}"; do
		pid=$(sc_pid "$s")
		if pid_alive "$pid" redis; then
			stop_pid "$pid" "sentinel_cluster $s"
			log "sentinel_cluster $s stopped (pid $pid)"
		fi
		rm -f "$SC_DIR/$s/pid"
	done
}

svc_sentinel_cluster_status() {
	echo "primary :$(sc_master_port), redis :$(sc_port r1) :$(sc_port r2), sentinels :$(sc_port s1) :$(sc_port s2) :$(sc_port s3)"
}

svc_sentinel_cluster_env() {
	echo "export KOMBU_TEST_REDIS_FAILOVER_URL='sentinel://127.0.0.1:$(sc_port s1)/0?master_name=$SC_MASTER'"
	echo "export KOMBU_TEST_REDIS_FAILOVER_MASTER='$SC_MASTER'"
	echo "export KOMBU_TEST_REDIS_FAILOVER_SENTINELS='127.0.0.1:$(sc_port s1),127.0.0.1:$(sc_port s2),127.0.0.1:$(sc_port s3)'"
	echo "export KOMBU_TEST_REDIS_FAILOVER_REVIVE='$SC_DIR/bin/revive'"
}

# ---------------------------------------------------------------------------------------------
# python: Debian's system Python with kombu, for wire-compatibility tests. Not a server.
# /usr/bin/python3 is called by full path (a pyenv python3 may come first on PATH), with -I so
# that a `kombu/` folder in the working directory (this repo has one) cannot shadow the package.

SYSTEM_PYTHON=/usr/bin/python3

python_ok() {
	[[ -x $SYSTEM_PYTHON ]] &&
		(cd / && "$SYSTEM_PYTHON" -I -c 'import kombu, redis, amqp, boto3, pymongo, sqlalchemy, psycopg2; kombu.Connection' >/dev/null 2>&1)
}

svc_python_packages() {
	python_ok && return 0
	[[ -x $SYSTEM_PYTHON ]] || echo python3
	echo python3-kombu python3-redis python3-amqp python3-boto3 python3-pymongo python3-sqlalchemy python3-psycopg2
}

svc_python_running() { python_ok; }
svc_python_status() { echo "$SYSTEM_PYTHON, kombu $(cd / && "$SYSTEM_PYTHON" -I -c 'import kombu; print(kombu.__version__)' 2>/dev/null)"; }
svc_python_env() { echo "export KOMBU_TEST_PYTHON='$SYSTEM_PYTHON'"; }

# More services, one file each: scripts/services.d/NAME.sh defines svc_NAME_* (same contract as
# above, helpers of this file available) and appends NAME to SERVICES. Files load in name order.
for f in "$REPO"/scripts/services.d/*.sh; do
	[[ -e $f ]] || continue
	# shellcheck disable=SC1090
	. "$f"
done

# ---------------------------------------------------------------------------------------------
# Commands

is_running() { # a service with no svc_X_running is never "running" (no state to report)
	declare -F "svc_${1}_running" >/dev/null && "svc_${1}_running"
}

write_env() {
	local s tmp
	tmp="$ENV_FILE.tmp"
	{
		echo "# Written by scripts/services.sh at $(date -u +%Y-%m-%dT%H:%M:%SZ). Use: . .services/env"
		for s in "${SERVICES[@]}"; do
			if declare -F "svc_${s}_env" >/dev/null && is_running "$s"; then
				"svc_${s}_env"
			fi
		done
	} >"$tmp"
	mv "$tmp" "$ENV_FILE"
}

# select_services NAME...: validate names (none = all); add dependencies; keep SERVICES order.
select_services() {
	local want=" $* " s out=()
	if (($# == 0)); then
		want=" ${SERVICES[*]} "
	fi
	for s in "$@"; do
		[[ " ${SERVICES[*]} " == *" $s "* ]] || die "unknown service '$s' (known: ${SERVICES[*]})"
	done
	[[ $want == *" sentinel "* ]] && want+="redis "
	for s in "${SERVICES[@]}"; do
		[[ $want == *" $s "* ]] && out+=("$s")
	done
	SELECTED=("${out[@]}")
}

lock() {
	mkdir -p "$STATE"
	exec 9>"$STATE/.lock"
	flock -w 600 9 || die "another scripts/services.sh holds $STATE/.lock"
}

cmd_up() {
	select_services "$@"
	lock
	local start s
	start=$(now_ms)
	install_missing "${SELECTED[@]}"
	for s in "${SELECTED[@]}"; do # slow servers boot side by side
		if declare -F "svc_${s}_start" >/dev/null; then
			"svc_${s}_start"
		fi
	done
	for s in "${SELECTED[@]}"; do
		if declare -F "svc_${s}_up" >/dev/null; then
			"svc_${s}_up"
		elif ! is_running "$s"; then
			die "$s is not usable after install"
		fi
	done
	write_env
	log "all up in $(elapsed "$start"); env in ${ENV_FILE#"$REPO"/}"
}

cmd_down() {
	select_services "$@"
	lock
	local i s
	for ((i = ${#SELECTED[@]} - 1; i >= 0; i--)); do # reverse start order
		s=${SELECTED[i]}
		if declare -F "svc_${s}_down" >/dev/null; then
			"svc_${s}_down" || log "warning: stopping $s failed"
		fi
	done
	if (($# == 0)); then
		rm -f "$ENV_FILE"
	else
		write_env
	fi
}

cmd_restart() {
	(($# > 0)) || die "restart needs service names"
	lock
	local s
	# One node of the cluster (KOMBU_TEST_AMQP_CLUSTER_RESTART N): not a service of its own.
	if [[ $# == 1 && $1 == rabbitmq_cluster[1-3] ]]; then
		rabbit_use "$1"
		rabbit_restart
		write_env
		return 0
	fi
	select_services "$@"
	for s in "${SELECTED[@]}"; do
		if declare -F "svc_${s}_restart" >/dev/null; then
			"svc_${s}_restart"
		elif declare -F "svc_${s}_down" >/dev/null; then
			local port=""
			[[ $s == redis ]] && port=$(redis_port)
			[[ $s == sentinel ]] && port=$(sentinel_port)
			"svc_${s}_down"
			"svc_${s}_up" "$port"
		fi
	done
	write_env
}

cmd_status() {
	local s rc=0
	for s in "${SERVICES[@]}"; do
		if is_running "$s"; then
			printf '%-17s up    %s\n' "$s" "$("svc_${s}_status")"
		else
			printf '%-17s down\n' "$s"
			rc=3
		fi
	done
	return $rc
}

cmd_env() {
	[[ -f $ENV_FILE ]] || die "no $ENV_FILE: run 'scripts/services.sh up' (or 'make services-up') first"
	cat "$ENV_FILE"
}

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
	exit 2
}

main() {
	local cmd=${1:-}
	(($# > 0)) && shift
	case $cmd in
	up) cmd_up "$@" ;;
	down) cmd_down "$@" ;;
	restart) cmd_restart "$@" ;;
	status) cmd_status ;;
	env) cmd_env ;;
	-h | --help | help | "") usage ;;
	*) die "unknown command '$cmd' (up|down|restart|status|env)" ;;
	esac
}

# Run main only when executed, so tests can source this file and call single functions.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi
