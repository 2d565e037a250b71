// Command kombu-benchtable reads `go test -bench` output on stdin and prints
// a Markdown table per package (ns/op, messages per second, allocations)
// followed by the ratios the project tracks against their targets.
//
//	go test -run '^$' -bench . -benchmem ./... | go run ./cmd/kombu-benchtable
//
// It exits 0 whatever the ratios are: targets are reported, not enforced.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// result is one benchmark line, averaged over repeated runs (-count).
type result struct {
	pkg, name string
	runs      int
	metrics   map[string]float64 // unit -> sum over runs
}

func (r *result) avg(unit string) (float64, bool) {
	v, ok := r.metrics[unit]
	if !ok || r.runs == 0 {
		return 0, false
	}
	return v / float64(r.runs), true
}

// ratio is a tracked comparison: Num's throughput over Den's, in one package.
type ratio struct {
	pkg      string // package path suffix
	num, den string // benchmark names without the Benchmark prefix and -N suffix
	target   float64
	what     string
}

// floor is a tracked absolute throughput.
type floor struct {
	pkg, name string
	msgsPerS  float64
	what      string
}

var ratios = []ratio{
	{"/kombu", "EndToEndJSON", "BaselineChannelJSON", 0.80, "memory:// end to end vs JSON over a Go channel"},
	{"/transport/redis", "EndToEndJSON", "RawOneAtATime", 0.50, "redis end to end, one at a time, vs raw go-redis LPUSH/BRPOP"},
	{"/transport/redis", "EndToEndJSONBatched", "RawPipelined100", 0.25, "redis end to end with prefetch/batching vs raw go-redis pipelined by 100"},
	{"/transport/redis", "EndToEndJSON", "PythonKombuEndToEnd", 10, "redis end to end, one at a time, vs Python kombu on the same server"},
	{"/transport/redis", "EndToEndJSONBatched", "PythonKombuEndToEnd", 10, "redis end to end, batched, vs Python kombu on the same server"},
	{"/transport/amqp", "PublishConfirmed", "RawPublishConfirmed", 0.90, "amqp publish with confirms (window 100) vs raw amqp091-go"},
	{"/transport/amqp", "ConsumeAck", "RawConsumeAck", 0.90, "amqp consume+ack (prefetch 100) vs raw amqp091-go"},
	{"/transport/amqp", "EndToEndJSON", "PythonKombuEndToEnd", 2, "amqp end to end vs Python kombu on the same broker"},
}

var floors = []floor{
	{"/kombu", "EndToEndRaw", 1_000_000, "memory:// raw bytes end to end, one Publish at a time"},
	{"/kombu", "EndToEndRawBatched", 1_000_000, "memory:// raw bytes end to end, PublishBatch of 100"},
}

func main() {
	results, order, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kombu-benchtable:", err)
		os.Exit(1)
	}
	write(os.Stdout, results, order)
}

func parse(r io.Reader) (map[string]*result, []string, error) {
	results := map[string]*result{}
	var order []string
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "pkg: ") {
			pkg = strings.TrimSpace(strings.TrimPrefix(line, "pkg: "))
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		key := pkg + "\x00" + name
		res, ok := results[key]
		if !ok {
			res = &result{pkg: pkg, name: name, metrics: map[string]float64{}}
			results[key] = res
			order = append(order, key)
		}
		res.runs++
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			res.metrics[f[i+1]] += v
		}
	}
	return results, order, sc.Err()
}

// msgsPerSecond prefers a reported msgs/s metric, else 1e9/ns_op.
func msgsPerSecond(r *result) (float64, bool) {
	if v, ok := r.avg("msgs/s"); ok {
		return v, true
	}
	if ns, ok := r.avg("ns/op"); ok && ns > 0 {
		return 1e9 / ns, true
	}
	return 0, false
}

func find(results map[string]*result, pkgSuffix, name string) *result {
	for _, r := range results {
		if strings.HasSuffix(r.pkg, pkgSuffix) && r.name == name {
			return r
		}
	}
	return nil
}

func write(w io.Writer, results map[string]*result, order []string) {
	byPkg := map[string][]*result{}
	var pkgs []string
	for _, k := range order {
		r := results[k]
		if _, ok := byPkg[r.pkg]; !ok {
			pkgs = append(pkgs, r.pkg)
		}
		byPkg[r.pkg] = append(byPkg[r.pkg], r)
	}
	sort.Strings(pkgs)
	for _, p := range pkgs {
		fmt.Fprintf(w, "\n### %s\n\n| benchmark | ns/op | msgs/s | B/op | allocs/op |\n|---|---:|---:|---:|---:|\n", p)
		for _, r := range byPkg[p] {
			ns, _ := r.avg("ns/op")
			mps, _ := msgsPerSecond(r)
			bop, okB := r.avg("B/op")
			aop, okA := r.avg("allocs/op")
			fmt.Fprintf(w, "| %s | %.0f | %.0f | %s | %s |\n", r.name, ns, mps, opt(bop, okB), opt(aop, okA))
		}
	}
	fmt.Fprintf(w, "\n### Targets\n\n| what | measured | target | met |\n|---|---:|---:|:---:|\n")
	for _, rt := range ratios {
		n, d := find(results, rt.pkg, rt.num), find(results, rt.pkg, rt.den)
		if n == nil || d == nil {
			continue
		}
		nm, ok1 := msgsPerSecond(n)
		dm, ok2 := msgsPerSecond(d)
		if !ok1 || !ok2 || dm == 0 {
			continue
		}
		got := nm / dm
		fmt.Fprintf(w, "| %s (%s / %s) | %.2fx | ≥ %.2fx | %s |\n", rt.what, rt.num, rt.den, got, rt.target, yes(got >= rt.target))
	}
	for _, fl := range floors {
		r := find(results, fl.pkg, fl.name)
		if r == nil {
			continue
		}
		m, _ := msgsPerSecond(r)
		fmt.Fprintf(w, "| %s (%s) | %.0f msgs/s | ≥ %.0f msgs/s | %s |\n", fl.what, fl.name, m, fl.msgsPerS, yes(m >= fl.msgsPerS))
	}
}

func opt(v float64, ok bool) string {
	if !ok {
		return ""
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
