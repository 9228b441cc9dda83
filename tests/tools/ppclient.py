#!/usr/bin/python3
"""A PROXY protocol client for the integration tests: sends a header (v1 text, v2 binary, raw
bytes, or none), then TLS through memory BIOs so the ClientHello can share the header's
write, then one GET; prints the status line and the body, or what went wrong.

usage: ppclient.py PORT CAFILE MODE [ARGS...] [--path P] [--split N] [--pause S] [--separate]
  MODE: v1 LINE-WITHOUT-CRLF | v2 proxy|local inet|inet6|unspec SRC DST | raw HEX | none
  --split N   send the header in N pieces with --pause seconds between them
  --separate  the ClientHello in its own write (default: in the header's last write)
  --hold S    send only the first half of the header, then wait S seconds for the close
  --fin       send half the header, then shut down the writing side and wait for the close
"""
import argparse
import ipaddress
import socket
import ssl
import struct
import sys
import time

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(cmd, fam, src, dst):
    ver_cmd = 0x20 | (1 if cmd == "proxy" else 0)
    if fam == "unspec":
        return SIG + bytes([ver_cmd, 0x00]) + struct.pack("!H", 0)
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    body = a.packed + b.packed + struct.pack("!HH", 40000, 443)
    famb = 0x11 if fam == "inet" else 0x21
    return SIG + bytes([ver_cmd, famb]) + struct.pack("!H", len(body)) + body


def wait_close(sock, limit):
    """Seconds until the server closed (EOF or reset), or None if it did not within limit."""
    start = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(4096):
            pass
    except socket.timeout:
        return None
    except OSError:
        pass
    return time.monotonic() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("cafile")
    ap.add_argument("mode")
    ap.add_argument("args", nargs="*")
    ap.add_argument("--path", default="/hello.txt")
    ap.add_argument("--split", type=int, default=1)
    ap.add_argument("--pause", type=float, default=0.2)
    ap.add_argument("--separate", action="store_true")
    ap.add_argument("--hold", type=float, default=0)
    ap.add_argument("--fin", action="store_true")
    ap.add_argument("--timeout", type=float, default=20)
    o = ap.parse_args()
    if o.mode == "v1":
        header = o.args[0].encode() + b"\r\n"
    elif o.mode == "v2":
        header = v2_header(o.args[0], o.args[1], *(o.args[2:4] or ["0.0.0.0", "0.0.0.0"]))
    elif o.mode == "raw":
        header = bytes.fromhex(o.args[0])
    else:
        header = b""
    sock = socket.create_connection(("127.0.0.1", o.port), timeout=o.timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if o.hold or o.fin:
        sock.sendall(header[: max(1, len(header) // 2)])
        if o.fin:
            sock.shutdown(socket.SHUT_WR)
        t = wait_close(sock, o.hold or o.timeout)
        print("closed after %.1f s" % t if t is not None else "still open")
        return 0
    ctx = ssl.create_default_context(cafile=o.cafile)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    pieces = []
    if header:
        n = max(1, min(o.split, len(header)))
        step = -(-len(header) // n)
        pieces = [header[i : i + step] for i in range(0, len(header), step)]
    if o.separate or not pieces:
        pieces.append(hello)
    else:
        pieces[-1] += hello
    try:
        for i, p in enumerate(pieces):
            if i:
                time.sleep(o.pause)
            sock.sendall(p)

        def pump(fn):
            while True:
                try:
                    r = fn()
                    data = out.read()
                    if data:
                        sock.sendall(data)
                    return r
                except ssl.SSLWantReadError:
                    data = out.read()
                    if data:
                        sock.sendall(data)
                    d = sock.recv(65536)
                    if not d:
                        raise ConnectionError("closed by the server")
                    inc.write(d)

        pump(tls.do_handshake)
        req = "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % o.path
        pump(lambda: tls.write(req.encode()))
        resp = b""
        while True:
            try:
                chunk = pump(lambda: tls.read(65536))
            except (ssl.SSLZeroReturnError, ConnectionError):
                break
            if not chunk:
                break
            resp += chunk
    except (OSError, ssl.SSLError, ConnectionError) as e:
        print("failed: %s" % e)
        return 1
    head, _, body = resp.partition(b"\r\n\r\n")
    print(head.split(b"\r\n")[0].decode(errors="replace"))
    sys.stdout.write(body.decode(errors="replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
