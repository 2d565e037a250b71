# Python kombu's side of the SQL interop tests (internal/sqltest).
# argv[1] is a JSON object: mode, url, queue, n, timeout.
import json
import sys

from kombu import Connection

args = json.loads(sys.argv[1])
mode, url, name = args["mode"], args["url"], args["queue"]

with Connection(url) as conn:
    q = conn.SimpleQueue(name)
    if mode == "publish":
        for i in range(args["n"]):
            q.put({"n": i, "text": "h\u00e9llo", "list": [1, 2.5, None, True]},
                  headers={"x-seq": i}, correlation_id="py-%d" % i)
        print("published", flush=True)
    elif mode == "consume":
        for _ in range(args["n"]):
            m = q.get(timeout=args.get("timeout", 20))
            print(json.dumps({"payload": m.payload, "headers": m.headers,
                              "correlation_id": m.properties.get("correlation_id"),
                              "content_type": m.content_type}), flush=True)
            m.ack()
    elif mode == "get_nowait":
        try:
            m = q.get_nowait()
            print(json.dumps({"payload": m.payload}), flush=True)
            m.ack()
        except q.Empty:
            print("empty", flush=True)
    elif mode == "qsize":
        print(q.qsize(), flush=True)
    q.close()
