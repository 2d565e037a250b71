"""Consume with Python kombu for the Go interop tests.

argv[1] is a JSON object: url, transport_options, exchange, type, queue,
binding_key, count, timeout. The queue (and, for direct and topic, its
binding) is declared, the consumer is started and, for fanout, subscribed;
then "ready" is printed and the messages are consumed, acked and printed as
one JSON list.
"""
import json
import socket
import sys
import time

from kombu import Connection, Exchange, Queue


def main():
    a = json.loads(sys.argv[1])
    got = []

    def on_message(body, message):
        got.append({
            "body": body,
            "content_type": message.content_type,
            "content_encoding": message.content_encoding,
            "headers": message.headers,
            "properties": message.properties,
            "delivery_info": {k: v for k, v in message.delivery_info.items() if isinstance(v, (str, int, bool))},
            "redelivered": bool(message.delivery_info.get("redelivered")),
        })
        message.ack()

    with Connection(a["url"], transport_options=a.get("transport_options", {})) as conn:
        ex = Exchange(a["exchange"], type=a["type"])
        q = Queue(a["queue"], ex, routing_key=a["binding_key"])
        with conn.Consumer(q, callbacks=[on_message], accept=["json", "text/plain", "application/data"]):
            # The first drain registers BRPOP and, for fanout, PSUBSCRIBEs.
            try:
                conn.drain_events(timeout=0.2)
            except socket.timeout:
                pass
            print("ready", flush=True)
            deadline = time.time() + a.get("timeout", 20)
            while len(got) < a["count"] and time.time() < deadline:
                try:
                    conn.drain_events(timeout=0.5)
                except socket.timeout:
                    pass
    print(json.dumps(got), flush=True)


if __name__ == "__main__":
    main()
