"""Publish with Python kombu for the Go interop tests.

argv[1] is a JSON object: url, transport_options, exchange, type, queue,
binding_key, routing_key, count, wait_ready. For direct and topic the queue
and its binding are declared here (Python writes the binding row); for
fanout only the exchange is, and the Go subscriber must be listening before
we publish: with wait_ready we read one line from stdin first.
"""
import json
import sys

from kombu import Connection, Exchange, Producer, Queue


def main():
    a = json.loads(sys.argv[1])
    with Connection(a["url"], transport_options=a.get("transport_options", {})) as conn:
        ch = conn.channel()
        ex = Exchange(a["exchange"], type=a["type"])
        if a["type"] == "fanout":
            ex(ch).declare()
        else:
            Queue(a["queue"], ex, routing_key=a["binding_key"])(ch).declare()
        print(json.dumps({"declared": True}), flush=True)
        if a.get("wait_ready"):
            sys.stdin.readline()
        producer = Producer(ch, exchange=ex)
        for i in range(a["count"]):
            producer.publish(
                {"n": i, "text": "h\u00e9llo", "list": [1, 2.5, None, True]},
                routing_key=a["routing_key"],
                headers={"x-seq": i, "x-str": "v"},
                priority=i % 10,
                correlation_id="corr-%d" % i,
                reply_to="reply.q",
                message_id="mid-%d" % i,
                expiration=60,
                app_id="pyapp",
                type="t1",
            )
        print(json.dumps({"published": a["count"]}), flush=True)


if __name__ == "__main__":
    main()
