"""Declare, delete or look up a queue with Python kombu for the Go interop tests.

argv[1] is a JSON object: url, transport_options, exchange, type, queue,
binding_key, mode. mode "delete" declares the queue with its binding (so
that this process knows what to delete, as kombu requires) and deletes it;
both modes then passive-declare it and print "exists" or "not found".
"""
import json
import sys

from kombu.exceptions import ChannelError
from kombu import Connection, Exchange, Queue


def main():
    a = json.loads(sys.argv[1])
    with Connection(a["url"], transport_options=a.get("transport_options", {})) as conn:
        ch = conn.channel()
        if a["mode"] == "delete":
            q = Queue(a["queue"], Exchange(a["exchange"], type=a["type"]), routing_key=a["binding_key"], channel=ch)
            q.declare()
            q.delete()
        try:
            ch.queue_declare(queue=a["queue"], passive=True)
            print("exists", flush=True)
        except ChannelError:
            print("not found", flush=True)


if __name__ == "__main__":
    main()
