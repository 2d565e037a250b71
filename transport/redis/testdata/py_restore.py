"""Crash-restore interop with Python kombu.

argv[1] is a JSON object: url, transport_options, queue, count, mode.
mode "restore": run kombu's restore_visible once (the unacked entries of a
dead consumer come back), then consume count messages from the queue, ack
them and print them as a JSON list.
mode "take_and_die": receive count messages without acking them and exit
without closing, like a killed worker: they stay in kombu's unacked hash.
"""
import json
import os
import socket
import sys
import time

from kombu import Connection, Queue


def main():
    a = json.loads(sys.argv[1])
    got = []
    with Connection(a["url"], transport_options=a.get("transport_options", {})) as conn:
        ch = conn.channel()
        if a["mode"] == "restore":
            ch.qos.restore_visible(num=None)

        def on_message(body, message):
            got.append({"body": body, "redelivered": bool(message.delivery_info.get("redelivered")),
                        "headers": message.headers})
            if a["mode"] == "restore":
                message.ack()

        with conn.Consumer(Queue(a["queue"]), channel=ch, callbacks=[on_message], accept=["json", "text/plain"]):
            deadline = time.time() + 20
            while len(got) < a["count"] and time.time() < deadline:
                try:
                    conn.drain_events(timeout=0.5)
                except socket.timeout:
                    pass
        print(json.dumps(got), flush=True)
        if a["mode"] == "take_and_die":
            os._exit(0)


if __name__ == "__main__":
    main()
