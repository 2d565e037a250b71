"""Publish messages with Python kombu for the Go interop tests.

argv[1] is a JSON spec: {"url", "exchange", "type", "messages": [{"body",
"routing_key", "headers", "priority", "correlation_id", "reply_to",
"expiration", "message_id"}]}. Entities use kombu's defaults (durable
exchange), so the Go side declares them the same way.
"""
import json
import sys

from kombu import Connection, Exchange, Producer


def main():
    spec = json.loads(sys.argv[1])
    with Connection(spec["url"], connect_timeout=10) as conn:
        exchange = Exchange(spec["exchange"], type=spec["type"])
        producer = Producer(conn.default_channel, exchange=exchange)
        for m in spec["messages"]:
            kwargs = {}
            for k in ("priority", "correlation_id", "reply_to", "expiration", "message_id"):
                if m.get(k) is not None:
                    kwargs[k] = m[k]
            producer.publish(
                m["body"],
                routing_key=m.get("routing_key", ""),
                headers=m.get("headers") or {},
                serializer="json",
                **kwargs,
            )
    print(json.dumps({"published": len(spec["messages"])}))


if __name__ == "__main__":
    main()
