package testenv

import (
	"os/exec"
	"testing"
)

// Variables of the fault-test services of scripts/services.sh.
const (
	// The rabbitmq_fault node, which fault tests kill and start again.
	AMQPFaultURL     = "KOMBU_TEST_AMQP_FAULT_URL"     // amqp://guest:guest@127.0.0.1:PORT//
	AMQPFaultPIDFile = "KOMBU_TEST_AMQP_FAULT_PIDFILE" // file holding the node's OS pid
	AMQPFaultRestart = "KOMBU_TEST_AMQP_FAULT_RESTART" // command: start the node again, same port and data

	// The rabbitmq_cluster service: three nodes joined on loopback.
	AMQPClusterURLs     = "KOMBU_TEST_AMQP_CLUSTER_URLS"        // ';'-separated amqp URLs, node 1 first
	AMQPClusterNodes    = "KOMBU_TEST_AMQP_CLUSTER_NODES"       // ';'-separated node names
	AMQPClusterPIDFiles = "KOMBU_TEST_AMQP_CLUSTER_PIDFILES"    // ';'-separated pid files
	AMQPClusterRestart  = "KOMBU_TEST_AMQP_CLUSTER_RESTART"     // command N: start node N (1-3) again
	AMQPClusterCtl      = "KOMBU_TEST_AMQP_CLUSTER_RABBITMQCTL" // rabbitmqctl preset for node 1

	// The sentinel_cluster service: a primary, a replica and three sentinels.
	RedisFailoverURL       = "KOMBU_TEST_REDIS_FAILOVER_URL"       // sentinel://127.0.0.1:PORT/0?master_name=NAME
	RedisFailoverMaster    = "KOMBU_TEST_REDIS_FAILOVER_MASTER"    // the master name
	RedisFailoverSentinels = "KOMBU_TEST_REDIS_FAILOVER_SENTINELS" // ','-separated host:port of the sentinels
	RedisFailoverRevive    = "KOMBU_TEST_REDIS_FAILOVER_REVIVE"    // command: start every killed member again
)

// Binary returns the path of the program name (looked up in PATH). When it
// is missing, it fails the test in CI and skips it elsewhere, as [ServerURL]
// does: `make test` installs every program a test runs.
func Binary(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	missing(t, name+" is not installed ("+err.Error()+")")
	return ""
}
