#!/usr/bin/env python3
"""A slow reader for tessera's tests: sends one request that ends the connection, pauses before
reading a byte, then reads the whole response. One line per size: size=N got=BYTES end=HOW
(close_notify | eof | error:...). Several sizes run at once, each on its own connection."""
import argparse
import socket
import ssl
import threading
import time


def one(args, size, out):
    ctx = ssl.create_default_context(cafile=args.cafile)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if args.rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
    sock.settimeout(args.timeout)
    got, end, read_ms = 0, "none", -1
    try:
        sock.connect(("127.0.0.1", args.port))
        s = ctx.wrap_socket(sock, server_hostname="localhost", suppress_ragged_eofs=False)
        path = args.path.replace("SIZE", str(size))
        if args.http10:
            req = "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n" % path
        else:
            req = "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % path
        s.sendall(req.encode())
        if args.signal_file:
            open(args.signal_file + "." + str(size), "w").close()
        time.sleep(args.pause)
        t0 = time.monotonic()
        buf = bytearray()
        while True:
            try:
                chunk = s.recv(65536)
            except ssl.SSLEOFError:
                end = "eof"
                break
            if not chunk:
                end = "close_notify"
                break
            buf += chunk
        read_ms = int((time.monotonic() - t0) * 1000)
        head, _, body = bytes(buf).partition(b"\r\n\r\n")
        got = len(body)
        if end == "close_notify":
            try:
                s.unwrap()  # our close_notify: the server can count a clean close
            except (OSError, ssl.SSLError):
                pass
        s.close()
    except (OSError, ssl.SSLError) as e:
        end = "error:" + type(e).__name__
    out[size] = "size=%d got=%d end=%s read_ms=%d" % (size, got, end, read_ms)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cafile", required=True)
    p.add_argument("--path", default="/f/SIZE")
    p.add_argument("--sizes", required=True, help="comma-separated byte counts")
    p.add_argument("--pause", type=float, default=1.6)
    p.add_argument("--rcvbuf", type=int, default=0)
    p.add_argument("--http10", action="store_true")
    p.add_argument("--timeout", type=float, default=30)
    p.add_argument("--signal-file", default="")
    args = p.parse_args()
    out = {}
    threads = [threading.Thread(target=one, args=(args, int(n), out)) for n in args.sizes.split(",")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n in args.sizes.split(","):
        print(out.get(int(n), "size=%s got=0 end=error:thread" % n))


main()
