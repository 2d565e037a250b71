// Package beanstalk is the beanstalkd transport (beanstalk://), on
// github.com/beanstalkd/go-beanstalk and package virtual.
//
// Import it for its side effect and dial a beanstalk URL:
//
//	import _ "github.com/kombu-go/kombu/transport/beanstalk"
//	conn, err := kombu.Dial(ctx, "beanstalk://127.0.0.1:11300", nil)
//
// # URLs
//
//	beanstalk://HOST[:PORT][?ttr=SECONDS&connect_timeout=SECONDS]
//
// The port defaults to 11300 and the host to 127.0.0.1. beanstalkd has no
// users, virtual hosts or TLS: user info, a path or an ssl option is an
// error wrapping kombu.ErrInvalidURL, as is any unknown option.
//
//	option           default  meaning
//	ttr              3600     time to run of the jobs put: the visibility timeout (whole seconds, at least 1)
//	connect_timeout  10       bound of each dial, seconds
//
// Without the registry, NewConnector(opts) plugs into
// kombu.NewConnectionFromConnector (see ExampleNewConnector).
//
// # Semantics
//
// A queue is a tube and a message is a job. A delivery is a reservation:
// its TTR is the visibility timeout, Message.ExtendLease touches the job
// (its whole TTR starts again; beanstalkd has no other length, so asked for
// longer it touches and returns an error wrapping kombu.ErrInvalidArgument
// that says when the lease now ends), an ack
// deletes it, a requeue releases it, and a consumer that dies or loses its
// connection gives its jobs back at once: beanstalkd releases the jobs of a
// closed connection. A job reserved before (released, timed out, kicked)
// is delivered with Redelivered set, from beanstalkd's reserve count; so is
// a job put before the server last started, since beanstalkd's binlog does
// not keep reserve counts. A redelivered job carries the header
// x-delivery-count (its reserves before this one), so
// Message.DeliveryCount follows beanstalkd's counter, and kombu's
// RedeliveryPolicy releases a failed job at once with the backoff as its
// delay, rounded up to whole seconds: the job waits in beanstalkd, not in
// the consumer.
//
// Priorities are beanstalkd's own: a job's priority is the message's
// priority 0..9 as it is, as kombu 3.0 put it, so 0 is served first
// (driver.PriorityLowFirst, as kombu's redis transport). A message with the
// header HeaderDelay ("x-delay", milliseconds) is put delayed: beanstalkd
// makes it ready after that many seconds, rounded up (beanstalkd counts
// whole seconds).
//
// Routing is virtual's: direct, topic and fanout exchanges (fanout puts one
// job per bound tube), emulated in the publisher; headers exchanges route
// only with the bindings of the publishing connection. beanstalkd keeps jobs only,
// so declared queues and binding tables live in the process, shared by its
// connections to the same server, as kombu 3.0's in-process broker state
// was; a producer in another process routes through an exchange with the
// bindings it declares itself (a Producer declares the queues it is given).
// The default exchange needs none: the routing key names the tube. A
// passive declare finds a queue declared in this process, or a tube that
// holds jobs or that a consumer of another process watches. Message TTLs
// and queue limits are not applied.
//
// # Names and sizes
//
// Queue names must be tube names: 1 to 199 bytes of A-Z a-z 0-9 and
// - + / ; . $ _ ( ), not starting with "-"; others are refused with
// kombu.ErrInvalidArgument before any I/O. Exchange names and routing keys
// are free (up to 255 bytes). A message whose job (the JSON envelope,
// body in base64) exceeds the server's max-job-size (beanstalkd -z, 65,535
// bytes by default) is refused with kombu.ErrInvalidArgument before it is
// sent; run beanstalkd with a larger -z for larger messages.
//
// # Undecodable jobs
//
// A job that is not a kombu envelope (put by another client) is delivered
// with a decode error; a reject without requeue dead-letters it when its
// queue has a dead-letter exchange, and otherwise buries it in its tube,
// as kombu 3.0 did: `kick` brings it back. Nothing is deleted.
//
// # Wire format
//
// A job's body is kombu's JSON envelope (body in base64,
// properties.body_encoding "base64") with properties.delivery_info.priority
// set, laid out as kombu 3.0's beanstalk transport wrote it: kombu up to
// 3.0.x (the releases that ship kombu.transport.beanstalk, on beanstalkc)
// read and write the same tubes; kombu 4.0 removed the transport. A kombu
// 3.0 consumer deletes a job as it reserves it, and a kombu 3.0 producer
// puts with beanstalkc's TTR of 120 s.
//
// # As
//
// kombu.Connection.As and kombu.Channel.As hand out the *Store, for
// Store.Kick (buried jobs back to ready):
//
//	var store *beanstalk.Store
//	if myConn.As(&store) {
//		kicked, err := store.Kick(ctx, "tasks", 100)
//		fmt.Println(kicked, err)
//	}
//
// They hand out no go-beanstalk connection: each one is tied to the jobs it
// reserved, and a command sent on it by someone else would settle or
// strand them. Dial Options().Addr with go-beanstalk for your own commands.
package beanstalk
