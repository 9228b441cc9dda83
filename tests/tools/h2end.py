#!/usr/bin/python3
"""How an HTTP/2 connection ends, as seen on the wire, for tests. Two modes:

  end   one connection, --streams GET requests for --path at once, read at --rate bytes/s;
        prints "started" once the first DATA byte arrives (a test sends SIGTERM then), and at
        the end one key=value line, for instance
            goaway=NO_ERROR last_stream=1 done=1 bytes_1=10485760 end=close_notify
            order=goaway,end_1,close_notify elapsed_ms=2630
        goaway is the code of the server's GOAWAY (none when it sent none), done the streams
        that ended (END_STREAM), bytes_N the body bytes of stream N, end how the TLS connection
        ended: close_notify (the server's close_notify: python reads b''), eof (TCP closed
        without close_notify: SSLEOFError), reset (ECONNRESET), open (still open at --seconds)
        and order the events in the order they arrived. With --late-path, one more request
        goes --late-after seconds after the first byte, whatever arrived meanwhile, and the
        server's PINGs are answered only after it (a request that crossed the GOAWAY).
  hold  --count connections, one GET --path each, answered, then held idle; prints
        "held=N failed=N" and keeps them until stdin closes or --seconds pass, then prints
        "closed_by_server=N" (connections the server ended meanwhile). Each line on stdin
        makes every held connection send one more request: "answered=N" follows.
  race  stream 1 answered, then "ready" (the test stops the server); at the first GOAWAY the
        client sends stream 3, as if it had been on the way, before it answers the server's
        PING; prints for instance
            goaways=2147483647,3 done=2 bytes_1=6 bytes_3=6 end=close_notify
            order=end_1,goaway_notice,ping,sent_3,end_3,goaway,close_notify
        goaways lists the last stream of each GOAWAY (2147483647: the notice naming no limit).

A graceful close sends two GOAWAYs: goaway_notice in order (naming no limit), ping (the
server's PING), then goaway;
goaway= and last_stream= tell the last one. The server's PINGs are answered at once, as
clients do, except in race mode.

Frames are built with the helpers of h2hostile.py; the server's TLS end is told apart by
wrapping the socket with suppress_ragged_eofs=False."""
import argparse
import errno
import os
import select
import socket
import ssl
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from h2hostile import (ACK, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, PING, PREFACE,  # noqa: E402
                       SETTINGS, SETTINGS_INITIAL_WINDOW_SIZE, WINDOW_UPDATE, errname, frame,
                       request_block)

BIG_WINDOW = 0x7FFFFFFF


def connect(a):
    ctx = ssl.create_default_context(cafile=a.cafile)
    ctx.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", a.port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
    if s.selected_alpn_protocol() != "h2":
        raise OSError("no h2 in ALPN")
    return s


class Conn:
    """Reads frames off one connection and notes what arrives."""

    def __init__(self, a, streams):
        self.s = connect(a)
        self.buf = b""
        self.goaway = None  # the last GOAWAY: (code, last stream)
        self.goaways = []   # the last stream of each GOAWAY, in order
        self.pings = []     # PINGs left unanswered (hold_pings)
        self.hold_pings = False
        self.bytes = {}
        self.done = set()
        self.order = []
        self.end = None
        # windows wide open: the reading rate alone paces the server
        settings = struct.pack(">HI", SETTINGS_INITIAL_WINDOW_SIZE, BIG_WINDOW)
        out = PREFACE + frame(SETTINGS, 0, 0, settings)
        out += frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", BIG_WINDOW - 65535))
        for i in range(streams):
            out += frame(HEADERS, END_HEADERS | END_STREAM, 2 * i + 1, request_block(path=a.path))
        self.s.sendall(out)

    def read(self, size, timeout):
        """Reads once; False when the connection ended (self.end says how)."""
        self.s.settimeout(timeout)
        try:
            chunk = self.s.recv(size)
        except (socket.timeout, ssl.SSLWantReadError):
            return True
        except ssl.SSLEOFError:
            self.end = "eof"
        except ssl.SSLZeroReturnError:
            self.end = "close_notify"
        except ConnectionResetError:
            self.end = "reset"
        except (OSError, ssl.SSLError) as e:
            self.end = "error:" + (errno.errorcode.get(e.errno, "") if e.errno else type(e).__name__)
        else:
            if not chunk:
                self.end = "close_notify"  # python's read returns b'' for a close_notify
            else:
                self.buf += chunk
                self.parse()
                return True
        self.order.append(self.end)
        return False

    def parse(self):
        while len(self.buf) >= 9:
            hi, lo, ftype, flags, stream = struct.unpack(">BHBBI", self.buf[:9])
            n = (hi << 16) | lo
            if len(self.buf) < 9 + n:
                return
            p, self.buf = self.buf[9:9 + n], self.buf[9 + n:]
            stream &= 0x7FFFFFFF
            if ftype == SETTINGS and not flags & ACK:
                self.s.sendall(frame(SETTINGS, ACK, 0))
            elif ftype == PING and not flags & ACK:
                self.order.append("ping")
                if self.hold_pings:
                    self.pings.append(p)
                else:
                    self.s.sendall(frame(PING, ACK, 0, p))  # as every client does
            elif ftype == GOAWAY and len(p) >= 8:
                last, code = struct.unpack(">II", p[:8])
                self.goaway = (errname(code), last & 0x7FFFFFFF)
                self.goaways.append(last & 0x7FFFFFFF)
                # the graceful close's first GOAWAY names no limit (2^31-1)
                self.order.append("goaway_notice" if last & 0x7FFFFFFF == 0x7FFFFFFF else "goaway")
            elif ftype == DATA:
                self.bytes[stream] = self.bytes.get(stream, 0) + len(p)
            if ftype in (DATA, HEADERS) and flags & END_STREAM and stream not in self.done:
                self.done.add(stream)
                self.order.append("end_%d" % stream)


def m_end(a):
    t0 = time.monotonic()
    c = Conn(a, a.streams)
    c.hold_pings = bool(a.late_path)  # the late request goes before any PING's ACK
    started = None
    chunk = 16384
    while time.monotonic() - t0 < a.seconds:
        t = time.monotonic()
        if not c.read(chunk, 0.5):
            break
        if started is None and c.bytes:
            started = time.monotonic()
            print("started", flush=True)
        if c.hold_pings and started is not None and time.monotonic() - started >= a.late_after:
            sid = 2 * a.streams + 1
            c.s.sendall(frame(HEADERS, END_HEADERS | END_STREAM, sid, request_block(path=a.late_path)))
            c.order.append("sent_%d" % sid)
            for p in c.pings:
                c.s.sendall(frame(PING, ACK, 0, p))
            c.hold_pings, c.pings = False, []
        if a.rate:
            # pace the reads: chunk bytes per chunk/rate seconds
            pause = chunk / a.rate - (time.monotonic() - t)
            if pause > 0:
                time.sleep(pause)
    else:
        c.end = "open"
    ga = "goaway=%s last_stream=%d" % c.goaway if c.goaway else "goaway=none"
    sizes = " ".join("bytes_%d=%d" % kv for kv in sorted(c.bytes.items()))
    print("%s done=%d %s end=%s order=%s elapsed_ms=%d" % (
        ga, len(c.done), sizes, c.end, ",".join(c.order), (time.monotonic() - t0) * 1000), flush=True)


def m_race(a):
    """A request that crosses the graceful close: stream 1 answered, "ready" printed (the test
    stops the server then); at the server's first GOAWAY the client sends stream 3, as one whose
    request was on the way, and only then answers the server's PING."""
    t0 = time.monotonic()
    c = Conn(a, 1)
    c.hold_pings = True
    while 1 not in c.done and time.monotonic() - t0 < a.seconds and c.read(65536, 0.5):
        pass
    print("ready", flush=True)
    while not (c.goaways and c.pings) and time.monotonic() - t0 < a.seconds and c.read(65536, 0.5):
        pass
    if c.end is None and c.goaways:
        c.s.sendall(frame(HEADERS, END_HEADERS | END_STREAM, 3, request_block(path=a.path)))
        c.order.append("sent_3")
        for p in c.pings:
            c.s.sendall(frame(PING, ACK, 0, p))
        c.hold_pings, c.pings = False, []
        while time.monotonic() - t0 < a.seconds and c.read(65536, 0.5):
            pass
    if c.end is None:
        c.end = "open"
    sizes = " ".join("bytes_%d=%d" % kv for kv in sorted(c.bytes.items()))
    print("goaways=%s done=%d %s end=%s order=%s" % (
        ",".join(map(str, c.goaways)) or "none", len(c.done), sizes, c.end, ",".join(c.order)), flush=True)


def m_hold(a):
    t0 = time.monotonic()
    held, failed = [], 0
    for _ in range(a.count):
        if time.monotonic() - t0 > a.seconds:
            break
        try:
            c = Conn(a, 1)
            while 1 not in c.done and time.monotonic() - t0 < a.seconds:
                if not c.read(65536, 2.0):
                    raise OSError("closed")
            if 1 not in c.done:
                raise OSError("no answer")
            held.append(c)
        except (OSError, ssl.SSLError):
            failed += 1
    print("held=%d failed=%d" % (len(held), failed), flush=True)
    socks = {c.s.fileno(): c for c in held}
    closed, sid = 0, 1
    while time.monotonic() - t0 < a.seconds:
        fds = [sys.stdin.fileno()] if not a.ignore_stdin else []
        r, _, _ = select.select(fds + list(socks), [], [], 1.0)
        if sys.stdin.fileno() in r:
            line = os.read(sys.stdin.fileno(), 4096)
            if not line:
                break
            # "again": one more request on every connection still open, after its idle time
            sid += 2
            answered = 0
            for c in list(socks.values()):
                try:
                    c.s.sendall(frame(HEADERS, END_HEADERS | END_STREAM, sid, request_block(path=a.path)))
                    until = time.monotonic() + 10
                    while sid not in c.done and time.monotonic() < until and c.read(65536, 1.0):
                        pass
                except (OSError, ssl.SSLError):
                    pass
                answered += sid in c.done
            print("answered=%d" % answered, flush=True)
            continue
        for fd in r:
            c = socks.get(fd)
            if c and not c.read(65536, 0):
                closed += 1
                del socks[fd]
    print("closed_by_server=%d" % closed, flush=True)
    for c in held:
        c.s.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["end", "hold", "race"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cafile", required=True)
    p.add_argument("--path", default="/")
    p.add_argument("--streams", type=int, default=1)
    p.add_argument("--late-path", help="end mode: one more request, --late-after s after the first byte; "
                   "PINGs are answered only after it")
    p.add_argument("--late-after", type=float, default=1.5)
    p.add_argument("--rate", type=int, default=0, help="bytes/s the end mode reads (0: as fast as it comes)")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--ignore-stdin", action="store_true")
    a = p.parse_args()
    try:
        {"end": m_end, "hold": m_hold, "race": m_race}[a.mode](a)
    except (OSError, ssl.SSLError) as e:
        print("error=%s" % str(e).replace(" ", "_"), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
