// Command kombu-features prints the capability table of every transport
// (from each transport's driver.Features), as docs/transports.md holds it.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport"
	_ "github.com/kombu-go/kombu/transport/amqp"
	_ "github.com/kombu-go/kombu/transport/beanstalk"
	_ "github.com/kombu-go/kombu/transport/couchdb"
	_ "github.com/kombu-go/kombu/transport/memory"
	_ "github.com/kombu-go/kombu/transport/mongodb"
	_ "github.com/kombu-go/kombu/transport/postgres"
	_ "github.com/kombu-go/kombu/transport/redis"
	_ "github.com/kombu-go/kombu/transport/sqlite"
	_ "github.com/kombu-go/kombu/transport/sqs"
)

func main() { writeTable(os.Stdout) }

// writeTable prints one column per canonical transport name.
func writeTable(w io.Writer) {
	var descs []driver.Description
	seen := map[string]bool{}
	for _, scheme := range transport.Schemes() {
		t, _ := transport.Lookup(scheme)
		d, ok := t.(driver.Describer)
		if !ok || seen[d.Describe().Name] {
			continue
		}
		seen[d.Describe().Name] = true
		descs = append(descs, d.Describe())
	}
	fmt.Fprint(w, "| capability |")
	for _, d := range descs {
		fmt.Fprintf(w, " %s |", d.Name)
	}
	fmt.Fprint(w, "\n|---|")
	fmt.Fprint(w, strings.Repeat(":---:|", len(descs)))
	fmt.Fprintln(w)
	rows := []struct {
		name string
		get  func(driver.Features) string
	}{
		{"priority order", func(f driver.Features) string {
			switch f.Priority {
			case driver.PriorityHighFirst:
				return "9 first"
			case driver.PriorityLowFirst:
				return "0 first"
			}
			return "none"
		}},
		{"priority levels", func(f driver.Features) string {
			if f.Priority == driver.PriorityNone {
				return "-"
			}
			if f.PriorityLevels == nil {
				return "0-9"
			}
			return strings.Trim(strings.Join(strings.Fields(fmt.Sprint(f.PriorityLevels)), ","), "[]")
		}},
		{"message TTL", func(f driver.Features) string { return yes(f.TTL) }},
		{"queue length limits", func(f driver.Features) string { return yes(f.QueueLimits) }},
		{"headers exchange", func(f driver.Features) string { return yes(f.Headers) }},
		{"fanout reaches queues without a live consumer", func(f driver.Features) string { return yes(f.DurableFanout) }},
		{"mandatory returns", func(f driver.Features) string { return yes(f.Mandatory) }},
		{"survives the client process", func(f driver.Features) string { return yes(f.Persistent) }},
		{"leases (ExtendLease)", func(f driver.Features) string { return yes(f.Leases) }},
		{"publisher confirms", func(f driver.Features) string { return yes(f.Confirms) }},
		{"exchange-to-exchange bindings", func(f driver.Features) string { return yes(f.ExchangeBinding) }},
		{"declarations shared between connections", func(f driver.Features) string { return yes(f.SharedState) }},
		{"bindings can be listed (`kombu inspect`)", func(f driver.Features) string { return yes(f.ListBindings) }},
		{"the broker counts every delivery", func(f driver.Features) string { return yes(f.DeliveryCount) }},
		{"requeued messages keep their order (channel close, Recover)", func(f driver.Features) string { return yes(f.RequeueOrder) }},
		{"largest message body", func(f driver.Features) string {
			if f.MaxBodySize == 0 {
				return "-"
			}
			return fmt.Sprintf("%d KiB", f.MaxBodySize>>10)
		}},
	}
	for _, r := range rows {
		fmt.Fprintf(w, "| %s |", r.name)
		for _, d := range descs {
			fmt.Fprintf(w, " %s |", r.get(d.Features))
		}
		fmt.Fprintln(w)
	}
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
