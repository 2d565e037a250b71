"""Trace context interop with a Python kombu peer, in the format of
OpenTelemetry's Python instrumentation (opentelemetry-instrumentation-celery
calls propagate.inject(headers) on the message headers before publish and
propagate.extract on them in the worker; the default propagator writes
W3C "traceparent", "tracestate" and "baggage" as string headers).

argv[1] is a JSON object: url, queue, mode.
mode "produce": publish one Celery-style task message whose headers carry
  the trace context given as traceparent/tracestate, then print "sent".
mode "consume": receive one message, ack it, and print a JSON line with
  the trace id, parent span id and flags parsed from its traceparent with
  the W3C rules the Python propagator applies, and its tracestate.
"""
import json
import re
import socket
import sys

from kombu import Connection, Consumer, Producer, Queue

# The header format OpenTelemetry's Python TraceContextTextMapPropagator
# accepts (version 00: exactly four fields).
TRACEPARENT = re.compile(
    r"^[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?[ \t]*$")


def main():
    a = json.loads(sys.argv[1])
    queue = Queue(a["queue"], routing_key=a["queue"], auto_delete=True)
    with Connection(a["url"]) as conn:
        if a["mode"] == "produce":
            p = Producer(conn.channel())
            headers = {"lang": "py", "task": "tasks.add", "id": "3149beef-4e06-4ae5-a9d6-9ab1c6e7f0b1",
                       "traceparent": a["traceparent"], "tracestate": a["tracestate"]}
            p.publish({"args": [2, 3]}, routing_key=a["queue"], headers=headers,
                      declare=[queue], serializer="json")
            print("sent", flush=True)
            return
        got = []

        def on_message(message):
            got.append(message.headers)
            message.ack()

        with Consumer(conn, [queue], on_message=on_message):
            while not got:
                try:
                    conn.drain_events(timeout=20)
                except socket.timeout:
                    print(json.dumps({"error": "no message"}), flush=True)
                    return
        h = got[0]
        m = TRACEPARENT.match(h.get("traceparent", ""))
        if not m or m.group(1) == "ff" or (m.group(1) == "00" and m.group(5)):
            print(json.dumps({"error": "bad traceparent %r" % h.get("traceparent")}), flush=True)
            return
        print(json.dumps({"trace_id": m.group(2), "span_id": m.group(3), "flags": m.group(4),
                          "tracestate": h.get("tracestate", "")}), flush=True)


if __name__ == "__main__":
    main()
