package main

import (
	"strings"
	"testing"
)

const sample = `goos: linux
pkg: github.com/kombu-go/kombu/kombu
BenchmarkBaselineChannelJSON-2   	  100	     10000 ns/op	    4457 B/op	      31 allocs/op
BenchmarkEndToEndJSON-2          	  100	     12500 ns/op	    7220 B/op	      42 allocs/op
BenchmarkEndToEndJSON-2          	  100	     12500 ns/op	    7220 B/op	      42 allocs/op
BenchmarkEndToEndRaw-2           	  100	      2000 ns/op	    2712 B/op	      11 allocs/op
pkg: github.com/kombu-go/kombu/transport/amqp
BenchmarkRawConsumeAck-2 	100	5000 ns/op	200000 msgs/s
BenchmarkConsumeAck-2 	100	5500 ns/op	190000 msgs/s
PASS
`

func TestTableAndRatios(t *testing.T) {
	results, order, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	write(&b, results, order)
	out := b.String()
	for _, want := range []string{
		"| EndToEndJSON | 12500 | 80000 | 7220 | 42 |",
		"(EndToEndJSON / BaselineChannelJSON) | 0.80x | ≥ 0.80x | yes |",
		"(EndToEndRaw) | 500000 msgs/s | ≥ 1000000 msgs/s | no |",
		"(ConsumeAck / RawConsumeAck) | 0.95x | ≥ 0.90x | yes |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
