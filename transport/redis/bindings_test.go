package redis

import (
	"context"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"
)

// TestListBindingsMadeByAnotherProcess: binding rows written straight into
// redis, as Python kombu (or another kombu-go process) writes them, are
// listed by a connection that never declared their exchanges; a key under
// the binding prefix that is not a set and a member that is not kombu's
// are passed over.
func TestListBindingsMadeByAnotherProcess(t *testing.T) {
	extra := isolated(t, url.Values{})
	s := openStore(t, extra)
	c := rawClient(t, s)
	p := s.o.GlobalKeyPrefix
	cleanupKeys(t, c, p)
	ctx := testCtx(t)
	q, other := uniqueName(t, "q"), uniqueName(t, "other")
	direct, topic := uniqueName(t, "direct"), uniqueName(t, "topic")
	c.SAdd(ctx, p+"_kombu.binding."+direct, "rk.a"+Sep+Sep+q, "rk.b"+Sep+Sep+other, "not a kombu member")
	c.SAdd(ctx, p+"_kombu.binding."+topic, `logs.*.info`+Sep+`^logs\..*?[^\.]\.info$`+Sep+q)
	c.Set(ctx, p+"_kombu.binding.not-a-set", "x", 0)

	conn, err := kombu.Dial(ctx, serverURL(t, extra).String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list := func(bs []kombu.BindingInfo, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, b := range bs {
			out = append(out, b.Exchange+"|"+b.RoutingKey+"|"+b.Queue)
		}
		slices.Sort(out)
		return out
	}
	want := []string{direct + "|rk.a|" + q, topic + "|logs.*.info|" + q}
	slices.Sort(want)
	if got := list(kombu.Queue{Name: q}.ListBindings(ctx, ch)); !slices.Equal(got, want) {
		t.Errorf("bindings of the queue: %q, want %q", got, want)
	}
	want = []string{direct + "|rk.a|" + q, direct + "|rk.b|" + other}
	if got := list(kombu.Exchange{Name: direct}.ListBindings(ctx, ch)); !slices.Equal(got, want) {
		t.Errorf("bindings of the exchange: %q, want %q", got, want)
	}
	// The other process unbinds: the listing follows at once.
	c.SRem(ctx, p+"_kombu.binding."+topic, `logs.*.info`+Sep+`^logs\..*?[^\.]\.info$`+Sep+q)
	if got := list(kombu.Queue{Name: q}.ListBindings(context.Background(), ch)); !slices.Equal(got, []string{direct + "|rk.a|" + q}) {
		t.Errorf("bindings of the queue after another process unbound: %q", got)
	}
	// A binding this connection made, then another process removed, no
	// longer routes: it is not listed either.
	own := kombu.NewExchange(uniqueName(t, "own"), kombu.Direct)
	if err := own.Declare(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if _, err := (kombu.Queue{Name: q}).Declare(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if err := (kombu.Queue{Name: q}).BindTo(ctx, ch, own, "mine", nil); err != nil {
		t.Fatal(err)
	}
	if got := list(kombu.Queue{Name: q}.ListBindings(ctx, ch)); !slices.Contains(got, own.Name+"|mine|"+q) {
		t.Errorf("own binding not listed: %q", got)
	}
	c.Del(ctx, p+"_kombu.binding."+own.Name)
	if got := list(kombu.Queue{Name: q}.ListBindings(ctx, ch)); slices.Contains(got, own.Name+"|mine|"+q) {
		t.Errorf("a binding another process removed is still listed: %q", got)
	}
}

// TestInteropListsPythonBindings: a queue Python kombu declared and bound
// (topic and direct) is listed with those bindings by a Go connection that
// never declared anything.
func TestInteropListsPythonBindings(t *testing.T) {
	conn := dialDriver(t, nil) // no global_keyprefix: Python's default
	c := rawClient(t, storeOf(t, conn))
	ctx := testCtx(t)
	q := uniqueName(t, "q")
	var want []string
	for _, ic := range interopCases[:2] {
		ex := uniqueName(t, ic.typ)
		cleanupKeys(t, c, "", q, bindingKeyPrefix+ex)
		py := startPython(t, "py_produce.py", map[string]any{
			"url": pyURL(t), "exchange": ex, "type": ic.typ, "queue": q, "binding_key": ic.bindingKey, "routing_key": ic.routingKey, "count": 1,
		})
		py.line(30 * time.Second)
		<-py.done
		want = append(want, ex+"|"+ic.bindingKey+"|"+q)
	}
	slices.Sort(want)
	bs, err := openChannel(t, conn).(driver.BindingLister).QueueBindings(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range bs {
		got = append(got, b.Exchange+"|"+b.RoutingKey+"|"+b.Queue)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("bindings of Python's queue: %q, want %q", got, want)
	}
}
