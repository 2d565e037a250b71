"""Python kombu's side of the sqs interop tests (transport/sqs/interop_test.go).

Usage: kombu_sqs.py JSON, with JSON {"host", "port", "prefix", "queue", "mode", ...}:
  produce: publish "messages" ([{"body", "headers", "properties"}]) to queue through the
           default exchange (routing key = queue); prints {"sent": n}.
  consume: take "count" messages from queue; each is acked, or requeued when its body is in
           "requeue" (once); prints one JSON line per delivery.
"""
import json
import sys

import kombu


def main():
    a = json.loads(sys.argv[1])
    conn = kombu.Connection(
        "sqs://test:test@%s:%d" % (a["host"], a["port"]),
        transport_options={
            "is_secure": False,
            "region": "us-east-1",
            "queue_name_prefix": a["prefix"],
            "wait_time_seconds": 1,
            "visibility_timeout": a.get("visibility_timeout", 30),
        },
    )
    queue = kombu.Queue(a["queue"], kombu.Exchange(""), routing_key=a["queue"])
    if a["mode"] == "produce":
        producer = conn.Producer()
        for m in a["messages"]:
            producer.publish(m["body"], routing_key=a["queue"], declare=[queue], serializer="json",
                             headers=m.get("headers") or {}, **(m.get("properties") or {}))
        print(json.dumps({"sent": len(a["messages"])}), flush=True)
    elif a["mode"] == "consume":
        requeue = set(a.get("requeue") or [])
        got = 0
        # kombu's SimpleQueue(name) binds to a direct exchange of the same
        # name, as kombu-go's does: a requeue routes by the envelope's
        # delivery_info, so the consumer must know that exchange.
        sq = conn.SimpleQueue(a["queue"])
        while got < a["count"]:
            m = sq.get(timeout=20)
            body = m.payload
            out = {
                "body": body,
                "headers": m.headers,
                "content_type": m.content_type,
                "delivery_tag": m.delivery_tag,
                "redelivered": bool(m.delivery_info.get("redelivered")),
                "properties": {k: v for k, v in m.properties.items() if k in ("correlation_id", "reply_to", "priority", "MessageGroupId")},
            }
            key = json.dumps(body, sort_keys=True)
            if key in requeue:
                requeue.discard(key)
                m.requeue()
                out["action"] = "requeue"
            else:
                m.ack()
                out["action"] = "ack"
                got += 1
            print(json.dumps(out), flush=True)
        sq.close()
    conn.close()


if __name__ == "__main__":
    main()
