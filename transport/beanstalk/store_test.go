package beanstalk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

func tubeName(t *testing.T) string {
	return fmt.Sprintf("kombu-go.store.%s.%08x", t.Name()[len("Test"):], rand.Uint32())
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func env(body string, priority uint8) *virtual.Envelope {
	return &virtual.Envelope{Message: driver.Message{Body: []byte(body), ContentType: "text/plain",
		ContentEncoding: "utf-8", Properties: driver.Properties{Priority: priority}}, RoutingKey: "rk"}
}

// storeWithTTR dials a Store whose jobs get ttr.
func storeWithTTR(t *testing.T, ttr time.Duration) *Store {
	o := *serverOptions(t)
	o.TTR = ttr
	s, err := NewConnector(&o).Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// The job body is kombu's envelope with delivery_info.priority, and the
// job's beanstalkd priority is the message's, as kombu 3.0 wrote them.
func TestJobLayoutIsKombu30s(t *testing.T) {
	s, raw, ctx, tube := openStore(t), rawConn(t), testCtx(t), tubeName(t)
	if err := s.Put(ctx, tube, env("hello", 7)); err != nil {
		t.Fatal(err)
	}
	id, body, err := (&beanstalk.Tube{Conn: raw, Name: tube}).PeekReady()
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Delete(id)
	var job struct {
		Body        string `json:"body"`
		ContentType string `json:"content-type"`
		Properties  struct {
			BodyEncoding string `json:"body_encoding"`
			DeliveryTag  string `json:"delivery_tag"`
			Priority     int    `json:"priority"`
			DeliveryInfo struct {
				Exchange   *string `json:"exchange"`
				RoutingKey string  `json:"routing_key"`
				Priority   *int    `json:"priority"`
			} `json:"delivery_info"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(body, &job); err != nil {
		t.Fatalf("job body is not JSON: %v: %s", err, body)
	}
	p := job.Properties
	if job.Body != "aGVsbG8=" || p.BodyEncoding != "base64" || job.ContentType != "text/plain" || p.DeliveryTag == "" ||
		p.Priority != 7 || p.DeliveryInfo.Priority == nil || *p.DeliveryInfo.Priority != 7 ||
		p.DeliveryInfo.Exchange == nil || p.DeliveryInfo.RoutingKey != "rk" {
		t.Fatalf("job body %s", body)
	}
	st, err := raw.StatsJob(id)
	if err != nil || st["pri"] != "7" || st["ttr"] != strconv.Itoa(int(DefaultTTR/time.Second)) {
		t.Fatalf("job stats %v %v, want pri 7 and ttr %v", st, err, DefaultTTR)
	}
}

// Priorities are beanstalkd's: 0 first, as kombu 3.0 put them.
func TestPriorityLowFirst(t *testing.T) {
	s, ctx, tube := openStore(t), testCtx(t), tubeName(t)
	for _, p := range []uint8{5, 9, 0, 3} {
		if err := s.Put(ctx, tube, env(strconv.Itoa(int(p)), p)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for range 4 {
		it, err := s.Get(ctx, []string{tube}, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(it.Envelope.Body))
		if err := s.Ack(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(got) != "[0 3 5 9]" {
		t.Fatalf("order %v, want [0 3 5 9]", got)
	}
}

// A tube name beanstalkd refuses is an ErrInvalidArgument before any I/O,
// and the store keeps working afterwards (go-beanstalk leaves a connection
// stuck after refusing a name itself).
func TestTubeNamesCheckedFirst(t *testing.T) {
	s, ctx, tube := openStore(t), testCtx(t), tubeName(t)
	for _, bad := range []string{"with space", "-leading-dash", "ünïcode", "colon:name", string(make([]byte, 200))} {
		if err := s.Put(ctx, bad, env("x", 0)); !errors.Is(err, driver.ErrInvalidArgument) {
			t.Errorf("put to %q: %v, want ErrInvalidArgument", bad, err)
		}
		if _, err := s.Get(ctx, []string{tube, bad}, 0); !errors.Is(err, driver.ErrInvalidArgument) {
			t.Errorf("get from %q: %v, want ErrInvalidArgument", bad, err)
		}
		if err := s.ValidateName("queue", bad); !errors.Is(err, driver.ErrInvalidArgument) {
			t.Errorf("ValidateName(%q): %v", bad, err)
		}
	}
	if err := s.ValidateName("routing key", "with space"); err != nil {
		t.Errorf("routing keys are not tubes: %v", err)
	}
	long := "a" + string(make([]byte, 0)) + fmt.Sprintf("%0198d", 0)
	if err := s.Put(ctx, long, env("199 bytes", 0)); err != nil {
		t.Fatalf("put to a 199-byte tube: %v", err)
	}
	if err := s.Delete(ctx, long); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, tube, env("after", 0)); err != nil {
		t.Fatalf("put after refused names: %v", err)
	}
	it, err := s.Get(ctx, []string{tube}, time.Second)
	if err != nil || string(it.Envelope.Body) != "after" {
		t.Fatalf("get after refused names: %v", err)
	}
	_ = s.Ack(ctx, it)
}

// A job over the server's max-job-size is refused before it is sent.
func TestJobTooBig(t *testing.T) {
	s, ctx, tube := openStore(t), testCtx(t), tubeName(t)
	if s.maxJobSize < 1<<20 {
		t.Errorf("the server reports max-job-size %d; the test server runs with -z 16 MiB", s.maxJobSize)
	}
	s.maxJobSize = 1000 // as a server with -z 1000 would report
	big := env(string(make([]byte, 1000)), 0)
	if err := s.Put(ctx, tube, big); !errors.Is(err, driver.ErrInvalidArgument) {
		t.Fatalf("put of a job over max-job-size %d: %v, want ErrInvalidArgument", s.maxJobSize, err)
	}
	if n, err := s.Size(ctx, tube); err != nil || n != 0 {
		t.Fatalf("size %d %v after a refused put", n, err)
	}
}

// The TTR is the visibility timeout: a job held past it goes to another
// consumer, flagged redelivered, and the first holder's ack fails.
func TestTTRIsTheLease(t *testing.T) {
	a, b, ctx, tube := storeWithTTR(t, time.Second), openStore(t), testCtx(t), tubeName(t)
	if err := a.Put(ctx, tube, env("lease", 0)); err != nil {
		t.Fatal(err)
	}
	held, err := a.Get(ctx, []string{tube}, time.Second)
	if err != nil || held.Envelope.Redelivered {
		t.Fatalf("first get: %v, redelivered %v", err, held.Envelope.Redelivered)
	}
	again, err := b.Get(ctx, []string{tube}, 5*time.Second)
	if err != nil {
		t.Fatalf("the job did not come back after its TTR: %v", err)
	}
	if !again.Envelope.Redelivered || string(again.Envelope.Body) != "lease" {
		t.Fatalf("after the TTR: %q redelivered=%v", again.Envelope.Body, again.Envelope.Redelivered)
	}
	if err := a.Ack(ctx, held); err == nil {
		t.Fatal("the first holder acked a job whose TTR ran out")
	}
	if err := b.Ack(ctx, again); err != nil {
		t.Fatal(err)
	}
}

// ExtendLease touches the job: held past its TTR with touches, it stays.
func TestExtendLeaseTouches(t *testing.T) {
	a, b, ctx, tube := storeWithTTR(t, 2*time.Second), openStore(t), testCtx(t), tubeName(t)
	if err := a.Put(ctx, tube, env("touched", 0)); err != nil {
		t.Fatal(err)
	}
	held, err := a.Get(ctx, []string{tube}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for range 6 { // 3 s, past the 2 s TTR
		time.Sleep(500 * time.Millisecond)
		if err := a.ExtendLease(ctx, held, time.Second); err != nil {
			t.Fatalf("touch: %v", err)
		}
	}
	if it, err := b.Get(ctx, []string{tube}, 0); !errors.Is(err, driver.ErrEmpty) {
		t.Fatalf("another consumer got %v, %v while the lease was extended", it.Envelope, err)
	}
	// Longer than the TTR: touched, and told that the lease is shorter.
	if err := a.ExtendLease(ctx, held, time.Minute); !errors.Is(err, driver.ErrInvalidArgument) || !strings.Contains(err.Error(), "TTR of 2s") {
		t.Errorf("extend by a minute with a 2 s TTR: %v, want ErrInvalidArgument naming the TTR", err)
	}
	if err := a.Ack(ctx, held); err != nil {
		t.Fatalf("ack after touches: %v", err)
	}
}

// x-delay puts the job delayed, rounded up to whole seconds; a bad value
// is refused.
func TestDelayHeader(t *testing.T) {
	s, raw, ctx, tube := openStore(t), rawConn(t), testCtx(t), tubeName(t)
	e := env("later", 0)
	e.Headers = map[string]any{HeaderDelay: int64(300)}
	start := time.Now()
	if err := s.Put(ctx, tube, e); err != nil {
		t.Fatal(err)
	}
	st, err := (&beanstalk.Tube{Conn: raw, Name: tube}).Stats()
	if err != nil || st["current-jobs-delayed"] != "1" {
		t.Fatalf("tube stats %v %v, want one delayed job", st, err)
	}
	if _, err := s.Get(ctx, []string{tube}, 0); !errors.Is(err, driver.ErrEmpty) {
		t.Fatalf("a delayed job was ready at once: %v", err)
	}
	if n, err := s.Size(ctx, tube); err != nil || n != 1 {
		t.Fatalf("size %d %v, want the delayed job counted", n, err)
	}
	it, err := s.Get(ctx, []string{tube}, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("300 ms delay served after %v, want a whole second", d)
	}
	_ = s.Ack(ctx, it)
	for _, bad := range []any{int64(-1), "soon", 1.5} {
		e.Headers = map[string]any{HeaderDelay: bad}
		if err := s.Put(ctx, tube, e); !errors.Is(err, driver.ErrInvalidArgument) {
			t.Errorf("x-delay %v: %v, want ErrInvalidArgument", bad, err)
		}
	}
}

// An undecodable job is buried (kombu 3.0's way), never deleted; kick
// brings it back.
func TestQuarantineBuries(t *testing.T) {
	s, raw, ctx, tube := openStore(t), rawConn(t), testCtx(t), tubeName(t)
	if _, err := (&beanstalk.Tube{Conn: raw, Name: tube}).Put([]byte("not an envelope"), 0, 0, time.Minute); err != nil {
		t.Fatal(err)
	}
	it, err := s.Get(ctx, []string{tube}, time.Second)
	if err != nil || it.DecodeErr == nil {
		t.Fatalf("get: %v, decode error %v", err, it.DecodeErr)
	}
	if err := s.Quarantine(ctx, it); err != nil {
		t.Fatal(err)
	}
	st, err := (&beanstalk.Tube{Conn: raw, Name: tube}).Stats()
	if err != nil || st["current-jobs-buried"] != "1" {
		t.Fatalf("tube stats %v %v, want one buried job", st, err)
	}
	if n, err := s.Kick(ctx, tube, 10); err != nil || n != 1 {
		t.Fatalf("kick: %d %v", n, err)
	}
	back, err := s.Get(ctx, []string{tube}, time.Second)
	if err != nil || string(back.Envelope.Body) != "not an envelope" || back.DecodeErr == nil {
		t.Fatalf("after kick: %q %v", back.Envelope.Body, err)
	}
	if err := s.Delete(ctx, tube); err != nil {
		t.Fatal(err)
	}
	_ = s.Ack(ctx, back)
}

// A fanout exchange puts one job in every bound tube.
func TestFanoutOneJobPerTube(t *testing.T) {
	ctx := testCtx(t)
	conn, err := kombu.Dial(ctx, serverURL(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.DefaultChannel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	prefix := tubeName(t)
	x := kombu.NewExchange(prefix+".x", kombu.Fanout)
	var queues []kombu.Queue
	for i := range 3 {
		q := kombu.NewQueue(fmt.Sprintf("%s.q%d", prefix, i), x, "")
		if _, err := q.Declare(ctx, ch); err != nil {
			t.Fatal(err)
		}
		defer q.Delete(ctx, ch, false, false)
		queues = append(queues, q)
	}
	p, err := conn.Producer(ctx, &kombu.ProducerOptions{Exchange: x})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, "to all", nil); err != nil {
		t.Fatal(err)
	}
	raw := rawConn(t)
	for _, q := range queues {
		st, err := (&beanstalk.Tube{Conn: raw, Name: q.Name}).Stats()
		if err != nil || st["current-jobs-ready"] != "1" || st["total-jobs"] != "1" {
			t.Errorf("tube %s: %v %v, want exactly one job", q.Name, st, err)
		}
	}
}

// A requeue whose connection failed meanwhile succeeds: beanstalkd put the
// job back when the connection closed. An ack on it fails instead: the job
// was not deleted and comes again, flagged redelivered.
func TestSettleAfterConnectionLoss(t *testing.T) {
	s, ctx, tube := openStore(t), testCtx(t), tubeName(t)
	for _, body := range []string{"requeued", "acked"} {
		if err := s.Put(ctx, tube, env(body, 0)); err != nil {
			t.Fatal(err)
		}
	}
	first, err := s.Get(ctx, []string{tube}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.Get(ctx, []string{tube}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	first.Receipt.(*receipt).conn.nc.Close()
	second.Receipt.(*receipt).conn.nc.Close()
	if err := s.Requeue(ctx, first); err != nil {
		t.Errorf("requeue after the connection failed: %v", err)
	}
	if err := s.Ack(ctx, second); !errors.Is(err, driver.ErrConnectionLost) {
		t.Errorf("ack after the connection failed: %v, want ErrConnectionLost", err)
	}
	var got []string
	for range 2 {
		it, err := s.Get(ctx, []string{tube}, 2*time.Second)
		if err != nil {
			t.Fatalf("after the connection loss, got %v: %v", got, err)
		}
		if !it.Envelope.Redelivered {
			t.Errorf("%q came back without the redelivered flag", it.Envelope.Body)
		}
		got = append(got, string(it.Envelope.Body))
		if err := s.Ack(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(got) != "[requeued acked]" {
		t.Errorf("came back %v", got)
	}
}
