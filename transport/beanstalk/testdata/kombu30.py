"""kombu 3.0's beanstalk transport, re-enacted with Debian's kombu 5 for the
interop test: kombu builds and reads the envelope (its virtual channel),
this script moves it as kombu 3.0's Channel._put and _parse_job did
(json.dumps of the message, priority from delivery_info, delete after
reading), over beanstalkd's text protocol.

    kombu30.py put ADDR TUBE JSON   (JSON: body, priority, content_type, headers)
    kombu30.py get ADDR TUBE        prints what kombu's Message makes of the job
"""
import json
import socket
import sys

from kombu import Connection


class Beanstalk:
    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("beanstalkd closed the connection")
            self.buf += chunk
        out, self.buf = self.buf.split(b"\r\n", 1)
        return out.decode()

    def data(self, n):
        while len(self.buf) < n + 2:
            self.buf += self.sock.recv(65536)
        out, self.buf = self.buf[:n], self.buf[n + 2:]
        return out

    def cmd(self, text, body=None):
        payload = text.encode() + b"\r\n"
        if body is not None:
            payload += body + b"\r\n"
        self.sock.sendall(payload)
        return self.line()


def channel():
    return Connection("memory://").channel()


def put(addr, tube, spec):
    ch = channel()
    captured = {}
    ch._put = lambda queue, message, **kw: captured.update(message=message)
    msg = ch.prepare_message(
        spec["body"], priority=spec["priority"], content_type=spec["content_type"],
        content_encoding="utf-8", headers=spec["headers"])
    ch.basic_publish(msg, "", tube)
    message = captured["message"]
    # kombu 3.0's prepare_message kept the priority in delivery_info, and
    # its _put read it there.
    message["properties"]["delivery_info"]["priority"] = spec["priority"]
    body = json.dumps(message).encode()
    b = Beanstalk(addr)
    assert b.cmd("use " + tube).startswith("USING"), "use"
    reply = b.cmd("put %d 0 120 %d" % (spec["priority"], len(body)), body)
    assert reply.startswith("INSERTED"), reply


def get(addr, tube):
    b = Beanstalk(addr)
    assert b.cmd("watch " + tube).startswith("WATCHING")
    assert b.cmd("ignore default").startswith("WATCHING")
    reply = b.cmd("reserve-with-timeout 5")
    assert reply.startswith("RESERVED"), reply
    _, job_id, size = reply.split()
    raw = b.data(int(size))
    stats = b.cmd("stats-job " + job_id)
    yaml = b.data(int(stats.split()[1])).decode()
    pri = int([l for l in yaml.splitlines() if l.startswith("pri:")][0].split()[1])
    payload = json.loads(raw)  # kombu 3.0: loads(bytes_to_str(job.body))
    m = channel().message_to_python(payload)
    assert b.cmd("delete " + job_id) == "DELETED"  # kombu 3.0 deleted on reserve
    print(json.dumps({
        "body": m.body.decode() if isinstance(m.body, bytes) else m.body,
        "content_type": m.content_type,
        "headers": m.headers,
        "priority": payload["properties"]["delivery_info"]["priority"],
        "job_pri": pri,
        "routing_key": m.delivery_info["routing_key"],
    }))


if __name__ == "__main__":
    if sys.argv[1] == "put":
        put(sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))
    else:
        get(sys.argv[2], sys.argv[3])
