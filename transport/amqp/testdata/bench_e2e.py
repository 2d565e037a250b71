"""End-to-end throughput of Python kombu, for BENCHMARKS.md.

argv[1] is a JSON spec: {"url", "queue", "n", "body", "confirm"}. A
producer thread publishes n persistent messages, with confirm_publish=True
when "confirm" is true (kombu then waits for each confirm; kombu's default is
no confirms), while the main thread consumes them with prefetch 100 and
acks each one (raw messages, no decoding: the cheapest consumer kombu has).
Prints {"seconds": elapsed}.
"""
import json
import socket
import sys
import threading
import time

from kombu import Connection, Consumer, Producer, Queue


def main():
    spec = json.loads(sys.argv[1])
    url, name, n, body = spec["url"], spec["queue"], spec["n"], spec["body"]
    queue = Queue(name, durable=True)
    errors = []

    def produce():
        try:
            opts = {"confirm_publish": True} if spec.get("confirm") else {}
            with Connection(url, transport_options=opts) as conn:
                producer = Producer(conn.default_channel)
                for _ in range(n):
                    producer.publish(body, routing_key=name, content_type="application/json",
                                     content_encoding="utf-8", delivery_mode=2)
        except Exception as exc:  # reported below
            errors.append(repr(exc))

    got = [0]

    def on_message(message):
        message.ack()
        got[0] += 1

    with Connection(url) as conn:
        with Consumer(conn, [queue], on_message=on_message, prefetch_count=100):
            start = time.time()
            producer = threading.Thread(target=produce)
            producer.start()
            deadline = start + 300
            while got[0] < n and time.time() < deadline and not errors:
                try:
                    conn.drain_events(timeout=1)
                except socket.timeout:
                    pass
            elapsed = time.time() - start
            producer.join()
    if errors or got[0] < n:
        sys.exit("python bench failed: got %d of %d, %s" % (got[0], n, errors))
    print(json.dumps({"seconds": elapsed}))


if __name__ == "__main__":
    main()
