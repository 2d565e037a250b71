"""Publish, or read back, messages whose headers amqp091-go cannot read.

argv[1] is a JSON spec: {"url", "queue", "action": "publish" | "get",
"messages": [{"body", "shape", "n"}]}. Shapes: "deep" nests n dicts,
"deep_list" nests n lists, "wide" holds n entries in one dict, "long_list"
holds n values in one list, "plain" holds {"n": n}. RabbitMQ and py-amqp
accept them all. "publish" sends them to the default exchange with the
queue name as routing key. "get" takes every message of the queue (acking
it) and prints, for each, the body and the depth and size of its headers.
"""
import json
import sys

from kombu import Connection, Exchange, Producer


def headers_for(shape, n):
    if shape == "deep":
        v = "leaf"
        for _ in range(n):
            v = {"d": v}
        return {"deep": v}
    if shape == "deep_list":
        v = "leaf"
        for _ in range(n):
            v = [v]
        return {"deep": v}
    if shape == "wide":
        return {"k%d" % i: i for i in range(n)}
    if shape == "long_list":
        return {"list": [None] * n}
    return {"n": n}


def depth(v):
    if isinstance(v, dict):
        return 1 + max((depth(x) for x in v.values()), default=0)
    if isinstance(v, (list, tuple)):
        return 1 + max((depth(x) for x in v), default=0)
    return 0


def size(v):
    if isinstance(v, dict):
        return max([len(v)] + [size(x) for x in v.values()])
    if isinstance(v, (list, tuple)):
        return max([len(v)] + [size(x) for x in v])
    return 0


def main():
    spec = json.loads(sys.argv[1])
    out = []
    with Connection(spec["url"], connect_timeout=10) as conn:
        channel = conn.default_channel
        if spec["action"] == "publish":
            producer = Producer(channel, exchange=Exchange(""))
            for m in spec["messages"]:
                producer.publish(m["body"], routing_key=spec["queue"],
                                 headers=headers_for(m["shape"], m["n"]),
                                 serializer="json")
            out = {"published": len(spec["messages"])}
        else:
            while True:
                msg = channel.basic_get(spec["queue"], no_ack=False)
                if msg is None:
                    break
                h = msg.headers or {}
                body = json.loads(msg.body)
                # RabbitMQ adds x-death and x-first-death-* when
                # dead-lettering: leave them out of what the publisher sent.
                sent = {k: v for k, v in h.items() if not k.startswith("x-")}
                out.append({"body": body, "depth": depth(sent), "size": size(sent),
                            "dead_lettered": "x-death" in h})
                channel.basic_ack(msg.delivery_tag)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
