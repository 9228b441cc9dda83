#!/usr/bin/env python3
"""Load for the upgrade test: threads that open a new TLS connection per request and threads
that keep HTTP/1.1 connections alive, against 127.0.0.1:PORT, until STOPFILE exists (or
--max-s passes). Every request must get a whole 200 response. A keep-alive connection the
server closed while it was idle (close_notify, no byte of the next response) is reopened and
counted apart, as an HTTP client retries an idempotent request then; anything else (refused,
reset, a cut response, another status) is a failure. Prints one line of key=value counts and
the first failures; exits 0."""
import argparse
import os
import socket
import ssl
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--cafile", required=True)
ap.add_argument("--stop-file", required=True)
ap.add_argument("--progress-file", required=True)
ap.add_argument("--max-s", type=float, default=120)
ap.add_argument("--new", type=int, default=3, help="threads opening a connection per request")
ap.add_argument("--keepalive", type=int, default=2, help="threads reusing connections")
args = ap.parse_args()

ctx = ssl.create_default_context(cafile=args.cafile)
lock = threading.Lock()
counts = {"new_ok": 0, "ka_ok": 0, "ka_idle_closed": 0, "failed": 0}
failures = []
deadline = time.monotonic() + args.max_s


def done():
    return os.path.exists(args.stop_file) or time.monotonic() > deadline


def add(key, detail=None):
    with lock:
        counts[key] += 1
        if detail and len(failures) < 10:
            failures.append(detail)


def connect():
    raw = socket.create_connection(("127.0.0.1", args.port), timeout=20)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def read_response(s):
    """Returns (status, keep_alive, bytes_seen); raises on a cut response."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            if buf:
                raise EOFError("response cut in its head")
            return None, False, 0
        buf += d
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    n = int(hdrs.get("content-length", "0"))
    while len(body) < n:
        d = s.recv(4096)
        if not d:
            raise EOFError("response cut in its body")
        body += d
    return status, hdrs.get("connection", "").lower() != "close", len(buf)


REQ = b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n%s\r\n"


def new_loop():
    while not done():
        try:
            with connect() as s:
                s.sendall(REQ % b"Connection: close\r\n")
                status, _, _ = read_response(s)
                if status == 200:
                    add("new_ok")
                else:
                    add("failed", "new: status %s" % status)
        except Exception as e:  # refused, reset, handshake cut: all failures
            add("failed", "new: %r" % e)


def keepalive_loop():
    s = None
    used = False
    while not done():
        try:
            if s is None:
                s, used = connect(), False
            s.sendall(REQ % b"")
            status, keep, seen = read_response(s)
            if status is None and used:
                add("ka_idle_closed")
            elif status == 200:
                add("ka_ok")
            else:
                add("failed", "keep-alive: status %s" % status)
            used = True
            if status is None or not keep:
                s.close()
                s = None
        except Exception as e:
            add("failed", "keep-alive (reused=%s): %r" % (used, e))
            if s is not None:
                s.close()
            s = None
    if s is not None:
        s.close()


def progress():
    while not done():
        with lock:
            line = " ".join("%s=%d" % kv for kv in counts.items())
        with open(args.progress_file + ".tmp", "w") as f:
            f.write(line + "\n")
        os.replace(args.progress_file + ".tmp", args.progress_file)
        time.sleep(0.1)


threads = [threading.Thread(target=new_loop) for _ in range(args.new)]
threads += [threading.Thread(target=keepalive_loop) for _ in range(args.keepalive)]
threads.append(threading.Thread(target=progress))
for t in threads:
    t.start()
for t in threads:
    t.join()
print(" ".join("%s=%d" % kv for kv in counts.items()))
for f in failures:
    print("# failure: " + f)
