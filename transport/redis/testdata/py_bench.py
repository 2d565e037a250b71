"""Python kombu's end-to-end rate on redis, for BENCHMARKS.md.

argv[1] is a JSON object: url, queue, n, body. One thread publishes n
messages with a Producer (one LPUSH each, as kombu does) while the main
thread consumes them with a Consumer that acks each message without
decoding it. Prints {"seconds": <time from the first publish to the last
ack>}.
"""
import json
import socket
import sys
import threading
import time

from kombu import Connection, Consumer, Producer, Queue


def main():
    a = json.loads(sys.argv[1])
    n, body, qname = a["n"], a["body"], a["queue"]
    failed = []
    done = [0]

    def publish():
        try:
            with Connection(a["url"]) as pconn:
                p = Producer(pconn.channel())
                for _ in range(n):
                    p.publish(body, routing_key=qname, content_type="application/json",
                              content_encoding="utf-8")
        except Exception as e:  # reported below
            failed.append(repr(e))

    def on_message(message):
        message.ack()
        done[0] += 1

    with Connection(a["url"]) as conn:
        with Consumer(conn, [Queue(qname)], on_message=on_message, prefetch_count=100):
            try:
                conn.drain_events(timeout=0.1)
            except socket.timeout:
                pass
            t0 = time.time()
            th = threading.Thread(target=publish)
            th.start()
            stop = t0 + 300
            while done[0] < n and not failed and time.time() < stop:
                try:
                    conn.drain_events(timeout=1)
                except socket.timeout:
                    pass
            secs = time.time() - t0
            th.join()
    if failed or done[0] < n:
        sys.exit("bench failed after %d of %d: %s" % (done[0], n, failed))
    print(json.dumps({"seconds": secs}))


if __name__ == "__main__":
    main()
