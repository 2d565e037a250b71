package faulttest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/testenv"
)

// Process helpers shared by every server kind (H1): faults target one PID.

// ProcessGone reports whether pid has exited (a zombie counts as exited).
func ProcessGone(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z'
	}
	return false
}

// KillPID sends sig to pid and waits (up to limit) until the process has exited.
func KillPID(pid int, sig syscall.Signal, limit time.Duration) error {
	if pid <= 1 {
		return fmt.Errorf("faulttest: refusing to signal pid %d", pid)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("faulttest: kill -%d %d: %w", sig, pid, err)
	}
	deadline := time.Now().Add(limit)
	for !ProcessGone(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("faulttest: pid %d still alive %v after signal %d", pid, limit, sig)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// ReadPIDFile reads the pid a server wrote.
func ReadPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("faulttest: pid file %s holds %q", path, b)
	}
	return pid, nil
}

// WaitAccepting waits until addr accepts TCP connections; it returns when it
// does, or ctx's error.
func WaitAccepting(ctx context.Context, addr string) error {
	for {
		c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("faulttest: %s not accepting: %w", addr, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// runCommand runs a restart script with a bound.
func runCommand(ctx context.Context, limit time.Duration, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("faulttest: %s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// RedisServer is a private redis-server for one test: its own dir, a free
// loopback port, appendonly on. Kill crashes it; Restart starts it again
// on the same port and dir, so what the AOF holds survives.
type RedisServer struct {
	bin, dir string
	host     string // see PrivateLoopback
	port     int
	fsync    string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
}

// RedisOptions configure StartRedis.
type RedisOptions struct {
	// AppendFsync is appendonly's fsync policy: "always" (no acknowledged
	// write is lost on a crash) or "everysec" (Redis's default; up to a
	// second lost). Empty means "always".
	AppendFsync string
}

// StartRedis starts a private redis-server (skipped outside CI when
// redis-server is missing, failed in CI). It is killed when the test ends.
func StartRedis(t testing.TB, opts RedisOptions) *RedisServer {
	t.Helper()
	bin := testenv.Binary(t, "redis-server")
	r := &RedisServer{bin: bin, dir: t.TempDir(), fsync: opts.AppendFsync}
	if r.fsync == "" {
		r.fsync = "always"
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if r.host, r.port, err = PrivateLoopback(); err != nil {
			continue
		}
		if err = r.Restart(context.Background()); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("faulttest: start redis-server: %v", err)
	}
	t.Cleanup(r.Stop)
	return r
}

// Addr is the server's host:port.
func (r *RedisServer) Addr() string { return net.JoinHostPort(r.host, strconv.Itoa(r.port)) }

// Dir is the server's working directory (its AOF is in appendonlydir).
func (r *RedisServer) Dir() string { return r.dir }

// URL is a redis:// URL of database 0 with extra query options (may be "").
func (r *RedisServer) URL(query string) string {
	u := "redis://" + r.Addr() + "/0"
	if query != "" {
		u += "?" + query
	}
	return u
}

// PID is the server's process id (0 when it is not running).
func (r *RedisServer) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil || r.cmd.Process == nil {
		return 0
	}
	select {
	case <-r.done:
		return 0
	default:
		return r.cmd.Process.Pid
	}
}

// Kill crashes the server (SIGKILL) and waits until it has exited.
func (r *RedisServer) Kill() error { return r.signal(syscall.SIGKILL) }

// Stop stops the server (SIGTERM, then SIGKILL) and waits; no-op when down.
func (r *RedisServer) Stop() {
	if err := r.signal(syscall.SIGTERM); err != nil {
		_ = r.signal(syscall.SIGKILL)
	}
}

func (r *RedisServer) signal(sig syscall.Signal) error {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("faulttest: redis-server pid %d alive 10 s after signal %d", cmd.Process.Pid, sig)
	}
}

// Restart starts the server (again) on its port and dir and waits until it
// answers PING (the AOF is loaded by then); no-op when it runs.
func (r *RedisServer) Restart(ctx context.Context) error {
	if r.PID() != 0 {
		return nil
	}
	cmd := exec.Command(r.bin,
		"--port", strconv.Itoa(r.port), "--bind", r.host, "--protected-mode", "no",
		"--dir", r.dir, "--save", "", "--appendonly", "yes", "--appendfsync", r.fsync,
		"--daemonize", "no", "--logfile", filepath.Join(r.dir, "redis.log"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a Ctrl-C of the test does not reach it first
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	r.mu.Lock()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		if err := redisPing(r.Addr()); err == nil {
			// The server that answers must be this one, not another
			// that took the port while it was down.
			pid, err := redisPID(r.Addr())
			if err == nil && pid != cmd.Process.Pid {
				err = fmt.Errorf("faulttest: %s is answered by pid %d, not by the redis-server started (pid %d)", r.Addr(), pid, cmd.Process.Pid)
				_ = cmd.Process.Kill()
			}
			return err
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			return fmt.Errorf("faulttest: redis-server on :%d exited at start: %s", r.port, lastLines(log, 5))
		case <-ctx.Done():
			r.Stop()
			return fmt.Errorf("faulttest: redis-server on :%d not answering: %w", r.port, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// redisPing sends PING and wants +PONG (a server loading its AOF answers
// -LOADING).
func redisPing(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return errors.New(strings.TrimSpace(line))
	}
	return nil
}

// redisPID asks the server at addr for its process id (INFO server).
func redisPID(addr string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("INFO server\r\n")); err != nil {
		return 0, err
	}
	rd := bufio.NewReader(c)
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return 0, fmt.Errorf("faulttest: INFO server of %s: no process_id: %w", addr, err)
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// RabbitNode is the rabbitmq_fault node of scripts/services.sh: a RabbitMQ
// node of its own that fault tests kill and start again (same name, port and
// data), while other suites use the shared node undisturbed.
type RabbitNode struct {
	URL, PIDFile string
	restart      []string // command and arguments
}

// FaultRabbit returns the rabbitmq_fault node, started again first when an
// earlier test left it down. The test holds the node's lock (see LockFile)
// until it ends: call it before t.Parallel.
func FaultRabbit(t testing.TB) *RabbitNode {
	t.Helper()
	n := &RabbitNode{
		URL:     testenv.ServerURL(t, testenv.AMQPFaultURL),
		PIDFile: testenv.ServerURL(t, testenv.AMQPFaultPIDFile),
		restart: []string{testenv.ServerURL(t, testenv.AMQPFaultRestart)},
	}
	LockFile(t, n.PIDFile+".lock")
	n.EnsureUp(t)
	return n
}

// Addr is the node's AMQP host:port.
func (n *RabbitNode) Addr() string { return urlHost(n.URL) }

// PID reads the node's OS pid from its pid file.
func (n *RabbitNode) PID() (int, error) { return ReadPIDFile(n.PIDFile) }

// Kill sends sig (SIGKILL: a crash, SIGTERM: a clean stop) and waits until
// the process has exited.
func (n *RabbitNode) Kill(sig syscall.Signal) error {
	pid, err := n.PID()
	if err != nil {
		return err
	}
	return KillPID(pid, sig, 60*time.Second)
}

// Restart starts the node again; it returns once the node is up.
func (n *RabbitNode) Restart(ctx context.Context) error {
	return runCommand(ctx, 150*time.Second, n.restart[0], n.restart[1:]...)
}

// Running reports whether the node's process is alive.
func (n *RabbitNode) Running() bool {
	pid, err := n.PID()
	return err == nil && !ProcessGone(pid)
}

// EnsureUp starts the node when it is down.
func (n *RabbitNode) EnsureUp(t testing.TB) {
	t.Helper()
	if n.Running() {
		return
	}
	t.Logf("node %s is down; starting it", n.Addr())
	if err := n.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// RabbitCluster is the rabbitmq_cluster service: three nodes joined on
// loopback.
type RabbitCluster struct {
	URLs  []string // one per node, node 1 first
	Nodes []*RabbitNode
	Names []string // Erlang node names
	Ctl   string   // rabbitmqctl preset for node 1 (-n NAME reaches the others)
}

// Cluster returns the rabbitmq_cluster service, each node started again
// first when an earlier test left it down.
func Cluster(t testing.TB) *RabbitCluster {
	t.Helper()
	urls := strings.Split(testenv.ServerURL(t, testenv.AMQPClusterURLs), ";")
	pids := strings.Split(testenv.ServerURL(t, testenv.AMQPClusterPIDFiles), ";")
	names := strings.Split(testenv.ServerURL(t, testenv.AMQPClusterNodes), ";")
	restart := testenv.ServerURL(t, testenv.AMQPClusterRestart)
	if len(urls) != len(pids) || len(urls) != len(names) || len(urls) < 2 {
		t.Fatalf("faulttest: cluster variables disagree: %d URLs, %d pid files, %d names", len(urls), len(pids), len(names))
	}
	LockFile(t, pids[0]+".lock")
	c := &RabbitCluster{URLs: urls, Names: names, Ctl: testenv.ServerURL(t, testenv.AMQPClusterCtl)}
	for i := range urls {
		n := &RabbitNode{URL: urls[i], PIDFile: pids[i], restart: []string{restart, strconv.Itoa(i + 1)}}
		n.EnsureUp(t)
		c.Nodes = append(c.Nodes, n)
	}
	return c
}

// FailoverURL is the nodes' URLs as one ';'-separated failover list,
// starting with node first (0-based) and going round.
func (c *RabbitCluster) FailoverURL(first int) string {
	var out []string
	for i := range c.URLs {
		out = append(out, c.URLs[(first+i)%len(c.URLs)])
	}
	return strings.Join(out, ";")
}

// NodeOf returns the index of the node listening on host:port, or -1.
func (c *RabbitCluster) NodeOf(addr string) int {
	for i, n := range c.Nodes {
		if n.Addr() == addr {
			return i
		}
	}
	return -1
}

// Rabbitmqctl runs rabbitmqctl against node 1 (or another with -n).
func (c *RabbitCluster) Rabbitmqctl(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.Ctl, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("faulttest: rabbitmqctl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func urlHost(u string) string {
	rest := u[strings.Index(u, "://")+3:]
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// LockFile takes an exclusive lock on path (made when missing) for the rest
// of the test, so that tests of several packages (test binaries run in
// parallel) never kill the same server at once. It waits for the lock up to
// 10 minutes.
func LockFile(t testing.TB, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("faulttest: lock %s: %v", path, err)
	}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			_ = f.Close()
			t.Fatalf("faulttest: lock %s: %v", path, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() { _ = f.Close() }) // closing the file releases the lock
}
