"""Python kombu (Debian python3-kombu 5.2.4, pymongo 3.11) side of the
mongodb interop tests. One JSON argument:

  {"url": ..., "mode": "produce"|"consume", "exchange": ..., "type": ...,
   "queue": ..., "binding_key": ..., "routing_key": ..., "count": N,
   "idle": seconds to wait for more after count (consume)}

produce: declares the queue bound to the exchange, publishes count JSON
messages {"n": i, "text": "héllo"} with priority i % 10 and header x-n,
then prints "done".
consume: declares and binds the queue, prints "ready" (with "wait_go", then
waits for a line on stdin before its first poll), then prints one JSON
line per message ({"n", "redelivered", "priority", "exchange",
"routing_key", "headers"}) and acks it, until count messages came and then
idle seconds passed without more; prints "end".
"""
import json
import sys
import time

import kombu

args = json.loads(sys.argv[1])
conn = kombu.Connection(args["url"], transport_options={"polling_interval": 0.05})
exchange = kombu.Exchange(args["exchange"], args["type"]) if args["exchange"] else kombu.Exchange("")
queue = kombu.Queue(args["queue"], exchange, routing_key=args.get("binding_key") or args["queue"])


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if args["mode"] == "produce":
    with conn.Producer() as producer:
        for i in range(args["count"]):
            producer.publish(
                {"n": i, "text": "h\u00e9llo"},
                exchange=exchange,
                routing_key=args["routing_key"],
                declare=[queue] if args["type"] != "fanout" else [exchange],
                priority=i % 10,
                headers={"x-n": i},
            )
    say("done")
else:
    got = []

    def on_message(body, message):
        say(json.dumps({
            "n": body.get("n"),
            "redelivered": bool(message.delivery_info.get("redelivered")),
            "priority": message.properties.get("priority"),
            "exchange": message.delivery_info.get("exchange"),
            "routing_key": message.delivery_info.get("routing_key"),
            "headers": message.headers,
        }))
        got.append(body)
        message.ack()

    with conn.Consumer(queue, callbacks=[on_message], accept=["json"]):
        say("ready")
        if args.get("wait_go"):
            sys.stdin.readline()
        deadline = time.time() + 30
        idle_until = None
        while time.time() < deadline:
            if len(got) >= args["count"] and idle_until is None:
                idle_until = time.time() + args.get("idle", 0)
            if idle_until is not None and time.time() >= idle_until:
                break
            try:
                conn.drain_events(timeout=0.2)
            except Exception:  # socket.timeout: nothing yet
                pass
    say("end")
conn.release()
