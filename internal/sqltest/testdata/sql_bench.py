# Python kombu's end-to-end figure for the SQL benchmarks (internal/sqltest):
# publish n messages with a Producer, then consume and ack them with a
# Consumer (prefetch 100); prints {"seconds": S}.
import json
import sys
import time

from kombu import Connection, Exchange, Queue

spec = json.loads(sys.argv[1])
n, body = spec["n"], spec["body"]
with Connection(spec["url"]) as conn:
    ex = Exchange(spec["queue"], "direct")
    q = Queue(spec["queue"], ex, spec["queue"])
    q(conn.default_channel).declare()
    start = time.perf_counter()
    producer = conn.Producer()
    for _ in range(n):
        producer.publish(body, exchange=ex, routing_key=spec["queue"],
                         content_type="application/json", content_encoding="utf-8")
    got = 0

    def on_message(b, m):
        global got
        m.ack()
        got += 1

    with conn.Consumer(q, callbacks=[on_message], prefetch_count=100):
        while got < n:
            conn.drain_events(timeout=10)
    print(json.dumps({"seconds": time.perf_counter() - start}))
