// Package faults holds the fault tests of issue 10 and nothing else: real
// brokers are killed, restarted, failed over and cut off by a proxy while
// messages flow, and every message is counted by id (internal/faulttest).
// `make faults` runs them alone; `make test` runs them with everything else.
// Each test logs a FIGURES line, and the run ends with the table kept in
// docs/reliability.md.
package faults
