"""Consume messages with Python kombu for the Go interop tests.

argv[1] is a JSON spec: {"url", "exchange", "type", "queues": [{"name",
"routing_key"}], "count", "timeout"}. It declares the queues as kombu does
(durable, bound to the durable exchange), consumes until it has "count"
messages per queue, acks them, and prints one JSON object per message.
"""
import json
import socket
import sys
import time

from kombu import Connection, Consumer, Exchange, Queue


def main():
    spec = json.loads(sys.argv[1])
    got = []
    with Connection(spec["url"], connect_timeout=10) as conn:
        exchange = Exchange(spec["exchange"], type=spec["type"])
        queues = [Queue(q["name"], exchange, routing_key=q.get("routing_key", ""))
                  for q in spec["queues"]]
        want = spec["count"] * len(queues)

        def on_message(body, message):
            got.append({
                "queue": message.delivery_info.get("routing_key"),
                "exchange": message.delivery_info.get("exchange"),
                "consumer_tag": message.delivery_info.get("consumer_tag"),
                "body": body,
                "content_type": message.content_type,
                "content_encoding": message.content_encoding,
                "headers": message.headers,
                "delivery_mode": message.properties.get("delivery_mode"),
                "priority": message.properties.get("priority"),
                "correlation_id": message.properties.get("correlation_id"),
                "reply_to": message.properties.get("reply_to"),
                "expiration": message.properties.get("expiration"),
                "message_id": message.properties.get("message_id"),
            })
            message.ack()

        deadline = time.time() + spec.get("timeout", 20)
        with Consumer(conn, queues, callbacks=[on_message], accept=["json"]) as consumer:
            by_tag = {tag: name for name, tag in consumer._active_tags.items()}
            while len(got) < want and time.time() < deadline:
                try:
                    conn.drain_events(timeout=1)
                except socket.timeout:
                    pass
            for m in got:
                m["queue_name"] = by_tag.get(m["consumer_tag"])
    print(json.dumps(got))


if __name__ == "__main__":
    main()
