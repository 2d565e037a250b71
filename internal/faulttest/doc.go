// Package faulttest is the harness of the fault tests (issue 10): a ledger that
// counts every message by id as Jepsen's queue checker does, a TCP fault proxy,
// and helpers that kill and restart real servers (a private redis-server, the
// rabbitmq_fault node, the 3-node RabbitMQ cluster, the Redis Sentinel set).
//
// A fault test tags every message with [Ledger.Headers] and [Ledger.Body],
// records each publish call, delivery and ack, and ends with [Ledger.Check],
// whose [Result] names what was lost (published and acknowledged by the broker,
// never consumed), duplicated and unexpected. [Report] collects one row per
// test, and [PrintTable] prints them at the end of the run.
//
// Servers are found through internal/testenv: outside CI a test whose server
// is missing is skipped, in CI it fails.
package faulttest
