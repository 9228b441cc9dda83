#!/usr/bin/python3
"""HTTP/2 clients that behave as real ones do, for tests: a slow reader that asks for a small
file during a download, one that cancels its download, one that credits every DATA frame it
reads, one that never opens its window and only pings, one that bombs the HPACK decoder. One
mode a run, bounded in time (--seconds), then one line of key=value results on stdout.

Frames are built with tests/tools/h2hostile.py's helpers (the same wire code)."""
import argparse
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from h2hostile import (CONTINUATION, DATA, END_HEADERS, END_STREAM, H2, HEADERS, PING,  # noqa: E402
                       PRIO, RST_STREAM, SETTINGS_INITIAL_WINDOW_SIZE, WINDOW_UPDATE, frame,
                       literal, request_block)

BIG_WINDOW = (1 << 31) - 1


class Client(H2):
    """H2 with a reader that keeps to a rate, stamps of when each stream ended, and credit
    returned per DATA frame when asked."""

    def __init__(self, a):
        super().__init__(a)
        self.ended_at = {}  # stream -> monotonic time its END_STREAM arrived
        self.ping_at = {}  # opaque -> monotonic time its ACK arrived
        self.rst_at = {}
        self.credit_each = False
        self.after_mark = {}  # stream -> DATA bytes received after mark()
        self.marked = False

    def handle(self, ftype, flags, stream, p):
        super().handle(ftype, flags, stream, p)
        now = time.monotonic()
        if ftype in (DATA, HEADERS, CONTINUATION) and stream in self.end_stream:
            self.ended_at.setdefault(stream, now)
        if ftype == PING and flags & 1:
            self.ping_at.setdefault(bytes(p[:8]), now)
        if ftype == RST_STREAM:
            self.rst_at.setdefault(stream, now)
        if ftype == DATA:
            if self.marked:
                self.after_mark[stream] = self.after_mark.get(stream, 0) + len(p)
            if self.credit_each and len(p) > 0:
                inc = struct.pack(">I", len(p))
                self.send(frame(WINDOW_UPDATE, 0, stream, inc) + frame(WINDOW_UPDATE, 0, 0, inc))

    def read_at(self, rate, seconds, until=None, on_tick=None):
        """Reads at most rate bytes a second for up to seconds, or until until() holds;
        on_tick(now) runs between reads."""
        t0 = time.monotonic()
        got = 0
        while not self.closed and time.monotonic() - t0 < seconds:
            if until and until():
                return
            if on_tick:
                on_tick(time.monotonic())
            # ahead of the rate: wait
            ahead = got / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(min(ahead, 0.05))
                continue
            self.s.settimeout(0.05)
            try:
                chunk = self.s.recv(16384)
            except (socket.timeout, BlockingIOError):
                continue
            except OSError:
                self.closed = True
                return
            if not chunk:
                self.closed = True
                return
            got += len(chunk)
            self.buf += chunk
            self.parse()


def m_slow_download(c, a, t0):
    """A browser-like client (windows open wide) reads a large download at --rate bytes/s; at
    --at s it asks for a small file (--path2) and sends a PING on the same connection. With
    --cancel it then resets the download (RST_STREAM CANCEL) and counts the download's bytes
    that still arrive."""
    c.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", BIG_WINDOW - 65535)))
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block(path=a.path)))
    state = {"sent": None}

    def tick(now):
        if state["sent"] is None and now - t0 >= a.at:
            state["sent"] = now
            c.send(frame(HEADERS, END_HEADERS | END_STREAM, 3, request_block(path=a.path2)) +
                   frame(PING, 0, 0, b"latency!"))
            if a.cancel:
                c.send(frame(RST_STREAM, 0, 1, struct.pack(">I", 8)))
                c.marked = True

    if a.cancel:
        # after the cancel, read on until the download's bytes stop coming (1 s of silence)
        c.read_at(a.rate, a.seconds, until=lambda: state["sent"] is not None, on_tick=tick)
        last = [c.data.get(1, 0), time.monotonic()]

        def quiet():
            n = c.data.get(1, 0)
            if n != last[0]:
                last[0], last[1] = n, time.monotonic()
            return (3 in c.ended_at and time.monotonic() - last[1] > 1.0) or 1 in c.end_stream
        c.read_at(a.rate, a.seconds, until=quiet)
    else:
        c.read_at(a.rate, a.seconds, until=lambda: 3 in c.ended_at and b"latency!" in c.ping_at,
                  on_tick=tick)
    sent = state["sent"]
    small = int((c.ended_at[3] - sent) * 1000) if sent and 3 in c.ended_at else -1
    ping = int((c.ping_at[b"latency!"] - sent) * 1000) if sent and b"latency!" in c.ping_at else -1
    return c.outcome(t0, small_status=c.status.get(3, "-"), small_ms=small, ping_ms=ping,
                     download_bytes=c.data.get(1, 0), after_cancel=c.after_mark.get(1, 0),
                     download_rst=c.rst.get(1, "-"), download_done=int(1 in c.end_stream))


def m_credit_each(c, a, t0):
    """Windows open wide, as browsers have them, and a WINDOW_UPDATE for the stream and the
    connection for every DATA frame read, as several clients do, reading at --rate; then a
    second request on the connection."""
    c.credit_each = True
    c.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", BIG_WINDOW - 65535)))
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block(path=a.path)))
    c.read_at(a.rate, a.seconds, until=lambda: 1 in c.end_stream or c.goaway is not None or 1 in c.rst)
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, 3, request_block(path=a.path2)))
    c.poll(min(a.seconds, 10), lambda: 3 in c.end_stream or c.goaway is not None or 3 in c.rst)
    return c.outcome(t0, status=c.status.get(1, "-"), bytes=c.data.get(1, 0),
                     complete=int(1 in c.end_stream), next_status=c.status.get(3, "-"))


def m_zero_window(c, a, t0):
    """--count requests with SETTINGS_INITIAL_WINDOW_SIZE 0, never opened; a PING every
    --every s. Reports how many streams the server reset, and when the last of them came."""
    ids = [1 + 2 * i for i in range(a.count)]
    block = request_block(path=a.path)
    c.send(b"".join(frame(HEADERS, END_HEADERS | END_STREAM, i, block) for i in ids))
    print("ready", flush=True)
    next_ping = time.monotonic()
    n = 0
    while time.monotonic() - t0 < a.seconds and not c.closed and c.goaway is None:
        if all(i in c.rst for i in ids):
            break
        if time.monotonic() >= next_ping:
            n += 1
            c.send(frame(PING, 0, 0, struct.pack(">Q", n)))
            next_ping += a.every
        c.poll(min(0.2, max(next_ping - time.monotonic(), 0)))
    reset = [i for i in ids if i in c.rst]
    last = int((max(c.rst_at[i] for i in reset) - t0) * 1000) if reset else -1
    return c.outcome(t0, reset=len(reset), cancel=sum(1 for i in reset if c.rst[i] == "CANCEL"),
                     last_reset_ms=last, pings=n, ping_acks=c.ping_acks)


def header_block(sid, block):
    """A header block in a HEADERS frame (END_STREAM) and as many CONTINUATIONs as it needs."""
    chunks = [block[i:i + 16384] for i in range(0, len(block), 16384)]
    out = b""
    for k, f in enumerate(chunks):
        flags = (END_HEADERS if k == len(chunks) - 1 else 0) | (END_STREAM if k == 0 else 0)
        out += frame(HEADERS if k == 0 else CONTINUATION, flags, sid, f)
    return out


def m_hpack_bomb(c, a, t0):
    """One 4000-byte field stored in the HPACK table, then header blocks of 16,000 references
    to it (64 MB decoded each), one after another for --seconds or until the server ends the
    connection."""
    big = literal("x-bomb", "b" * 4000, incremental=True)
    refs = bytes([0xBE]) * 16000
    sid = 1
    blocks = 0
    first = True
    while time.monotonic() - t0 < a.seconds and not c.closed and c.goaway is None:
        block = request_block(path=a.path) + (big if first else b"") + refs
        first = False
        if not c.send(header_block(sid, block), timeout=2):
            break
        blocks += 1
        sid += 2
        c.poll(0.05)
    c.poll(2, lambda: c.goaway is not None or c.closed)
    return c.outcome(t0, blocks=blocks)


def m_priority_chain(c, a, t0):
    """As Chrome does: each request depends exclusively on the one before (RFC 7540
    priorities), so the second gets no DATA while the first downloads; read at --rate for
    --seconds. The second stream must not be reset for it."""
    c.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", BIG_WINDOW - 65535)))

    def prio(dep, weight):
        return struct.pack(">IB", dep | 0x80000000, weight - 1)
    c.send(frame(HEADERS, END_HEADERS | END_STREAM | PRIO, 1, prio(0, 256) + request_block(path=a.path)))
    c.send(frame(HEADERS, END_HEADERS | END_STREAM | PRIO, 3, prio(1, 220) + request_block(path=a.path2)))
    c.read_at(a.rate, a.seconds, until=lambda: 3 in c.rst or 1 in c.end_stream)
    return c.outcome(t0, second_rst=c.rst.get(3, "-"), first_bytes=c.data.get(1, 0),
                     second_status=c.status.get(3, "-"))


def m_trailer_bomb(c, a, t0):
    """Requests whose trailers are an HPACK bomb (header blocks after the body's start)."""
    big = literal("x-bomb", "b" * 4000, incremental=True)
    refs = bytes([0xBE]) * 16000
    sid, n = 1, 0
    while time.monotonic() - t0 < a.seconds and not c.closed and c.goaway is None:
        out = frame(HEADERS, END_HEADERS, sid, request_block(path=a.path) + (big if n == 0 else b""))
        out += header_block(sid, refs)  # the trailers
        if not c.send(out, timeout=2):
            break
        n += 1
        sid += 2
        c.poll(0.05)
    c.poll(2, lambda: c.goaway is not None or c.closed)
    return c.outcome(t0, blocks=n)


def m_dribble(c, a, t0):
    """A window of 0 opened one byte at a time, a frame of one byte each (CVE-2019-9511)."""
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block(path=a.path)))
    n = 0
    while time.monotonic() - t0 < a.seconds and not c.closed and c.goaway is None and n < a.count:
        c.send(frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 1)) + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1)))
        n += 1
        c.poll(0)
    c.poll(2, lambda: c.goaway is not None or c.closed)
    return c.outcome(t0, window_updates=2 * n, data_bytes=c.data.get(1, 0))


MODES = {
    "priority-chain": (m_priority_chain, 10),
    "trailer-bomb": (m_trailer_bomb, 10),
    "dribble": (m_dribble, 10),
    "slow-download": (m_slow_download, 60),
    "credit-each": (m_credit_each, 60),
    "zero-window": (m_zero_window, 30),
    "hpack-bomb": (m_hpack_bomb, 10),
}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=sorted(MODES))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sni", default="localhost")
    p.add_argument("--cafile")
    p.add_argument("--path", default="/")
    p.add_argument("--path2", default="/")
    p.add_argument("--rate", type=float, default=2e6, help="slow-download: bytes read a second")
    p.add_argument("--at", type=float, default=1.0, help="slow-download: when the second request goes")
    p.add_argument("--cancel", action="store_true", help="slow-download: reset the download then")
    p.add_argument("--count", type=int, default=64, help="zero-window: streams")
    p.add_argument("--every", type=float, default=2.0, help="zero-window: seconds between PINGs")
    p.add_argument("--seconds", type=float)
    a = p.parse_args()
    # the attributes H2 reads
    a.alpn, a.rcvbuf, a.no_settings_ack = "h2", 0, False
    fn, seconds = MODES[a.mode]
    a.seconds = seconds if a.seconds is None else a.seconds
    t0 = time.monotonic()
    try:
        c = Client(a)
    except OSError as e:
        print("result=error what=%s" % str(e).replace(" ", "_")[:120])
        return 2
    if c.alpn != "h2":
        print("result=no_h2 alpn=%s" % (c.alpn or "none"))
        return 3
    settings = []
    if a.mode in ("slow-download", "credit-each", "priority-chain"):
        settings = [(SETTINGS_INITIAL_WINDOW_SIZE, BIG_WINDOW)]
    elif a.mode in ("zero-window", "dribble"):
        settings = [(SETTINGS_INITIAL_WINDOW_SIZE, 0)]
    c.start(settings)
    fields = fn(c, a, t0)
    c.close()
    print(" ".join("%s=%s" % kv for kv in fields.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
