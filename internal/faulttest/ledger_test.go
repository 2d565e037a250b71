package faulttest

import (
	"errors"
	"strings"
	"sync"
	"testing"
)

var errCut = errors.New("cut")

func TestLedgerIdentifiesItsMessages(t *testing.T) {
	l := NewLedger(10)
	other := NewLedger(10)
	body, hdr := l.Body(7), l.Headers(7)
	if seq, ok := l.Seq(hdr, body); !ok || seq != 7 {
		t.Fatalf("own message: %d, %v", seq, ok)
	}
	// Headers as the transports return them: float64 from JSON, int64 from AMQP.
	if seq, ok := l.Seq(map[string]any{HeaderRun: l.Run(), HeaderSeq: float64(7)}, body); !ok || seq != 7 {
		t.Fatalf("JSON-decoded header: %d, %v", seq, ok)
	}
	if _, ok := l.Seq(nil, body); !ok {
		t.Fatal("a message whose headers were dropped is still identified by its body")
	}
	for name, c := range map[string]struct {
		h map[string]any
		b []byte
	}{
		"other run":        {other.Headers(7), other.Body(7)},
		"seq out of range": {nil, []byte(l.Run() + "/10")},
		"negative seq":     {nil, []byte(l.Run() + "/-1")},
		"leading zero":     {nil, []byte(l.Run() + "/07")},
		"no slash":         {nil, []byte(l.Run())},
		"header disagrees": {l.Headers(3), body},
		"header run":       {map[string]any{HeaderRun: "x"}, body},
		"header not int":   {map[string]any{HeaderSeq: 7.5}, body},
	} {
		if _, ok := l.Seq(c.h, c.b); ok {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestLedgerCheckArithmetic builds every case by hand and checks each figure.
func TestLedgerCheckArithmetic(t *testing.T) {
	l := NewLedger(8)
	deliver := func(seq int, redelivered bool) {
		if _, ok := l.Delivery(l.Headers(seq), l.Body(seq), redelivered); !ok {
			t.Fatalf("delivery of %d not recognised", seq)
		}
		l.Ack(seq, nil)
	}
	// 0: published, delivered once.
	l.Publish(0, nil, nil)
	deliver(0, false)
	// 1: published, never delivered: lost.
	l.Publish(1, nil, nil)
	// 2: published after one ambiguous failure, delivered twice without the
	// flag: the duplicate is explained by the ambiguous publish.
	l.Publish(2, errCut, nil)
	l.Publish(2, nil, nil)
	deliver(2, false)
	deliver(2, false)
	// 3: published, delivered, then redelivered with the flag: explained.
	l.Publish(3, nil, nil)
	deliver(3, false)
	deliver(3, true)
	// 4: published once, delivered twice without the flag: unexplained.
	l.Publish(4, nil, nil)
	deliver(4, false)
	deliver(4, false)
	// 5: every publish failed, but it arrived: recovered.
	l.Publish(5, errCut, nil)
	deliver(5, false)
	// 6: failed, never arrived: never sent (not a loss).
	l.Publish(6, errCut, func(error) (string, bool) { return "refused", false })
	// 7: published, delivered, ack failed, redelivered and acked.
	l.Publish(7, nil, nil)
	l.Delivery(l.Headers(7), l.Body(7), false)
	l.Ack(7, errCut)
	deliver(7, true)
	// Two strangers.
	l.Delivery(nil, []byte("junk"), false)
	l.Delivery(NewLedger(1).Headers(0), NewLedger(1).Body(0), true)

	r := l.Check()
	want := Result{Total: 8, Attempts: 9, Published: 6, Ambiguous: 2, Delivered: 6, Acked: 6,
		Lost: 1, Unexpected: 2, Duplicated: 4, Unexplained: 1, Recovered: 1, NeverSent: 1}
	got := r
	got.LostSeqs, got.Errors, got.UnexpectedBodies = nil, nil, nil
	if got.String() != want.String() || got.Acked != want.Acked || got.NeverSent != want.NeverSent {
		t.Fatalf("check:\n got  %s (acked %d, never sent %d)\n want %s (acked %d, never sent %d)",
			got, got.Acked, got.NeverSent, want, want.Acked, want.NeverSent)
	}
	if len(r.LostSeqs) != 1 || r.LostSeqs[0] != 1 {
		t.Errorf("lost seqs %v, want [1]", r.LostSeqs)
	}
	if r.OK() {
		t.Error("a run with a loss is OK")
	}
	if tally := r.ErrorTally(); tally != "ack: error=1, publish: error=2, publish: refused=1" {
		t.Errorf("error tally %q", tally)
	}
	if len(r.UnexpectedBodies) != 2 || !strings.Contains(r.UnexpectedBodies[0], "junk") {
		t.Errorf("unexpected bodies %q", r.UnexpectedBodies)
	}
	if l.Missing() != 1 {
		t.Errorf("missing %d, want 1 (seq 1)", l.Missing())
	}
	if l.Published() != 6 || l.Delivered() != 6 || l.Acked() != 6 || l.LastDelivery().IsZero() {
		t.Errorf("progress counters: published %d delivered %d acked %d", l.Published(), l.Delivered(), l.Acked())
	}
}

func TestLedgerCleanRunIsOK(t *testing.T) {
	const n = 1000
	l := NewLedger(n)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for seq := g; seq < n; seq += 4 {
				l.Publish(seq, nil, nil)
				s, ok := l.Delivery(l.Headers(seq), l.Body(seq), false)
				if !ok || s != seq {
					t.Errorf("seq %d read back as %d, %v", seq, s, ok)
				}
				l.Ack(seq, nil)
			}
		})
	}
	wg.Wait()
	r := l.Check()
	if !r.OK() || r.Published != n || r.Delivered != n || r.Duplicated != 0 || r.Attempts != n {
		t.Fatalf("clean run: %s", r)
	}
	if !strings.Contains(r.String(), "lost 0") {
		t.Fatalf("one-line figure %q does not name the losses", r)
	}
}
