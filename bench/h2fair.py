#!/usr/bin/python3
"""HTTP/2 fairness on one connection: a large download (restarted whenever it ends) runs on one
stream while small requests follow one another on other streams of the same connection; prints
the small requests' latency:

    mode=h2fair small=812 p50_ms=1.9 p99_ms=7.4 max_ms=12.1 big_done=3 big_bytes=31457280 errors=0

A server that schedules streams fairly answers the small requests in about the time they take
alone; one that drains the large response first makes them wait behind it. Uses the Debian
python3-h2 package. usage: h2fair.py --port N [--big /10m.bin] [--small /1k.html] [--seconds S]"""
import argparse
import select
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.settings


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sni", default="localhost")
    p.add_argument("--cafile")
    p.add_argument("--big", default="/10m.bin")
    p.add_argument("--small", default="/1k.html")
    p.add_argument("--seconds", type=float, default=10)
    a = p.parse_args()

    ctx = ssl.create_default_context(cafile=a.cafile) if a.cafile else ssl._create_unverified_context()
    ctx.set_alpn_protocols(["h2"])
    raw = socket.create_connection((a.host, a.port), timeout=10)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s = ctx.wrap_socket(raw, server_hostname=a.sni)
    if s.selected_alpn_protocol() != "h2":
        print("mode=h2fair result=no_h2 alpn=%s" % (s.selected_alpn_protocol() or "none"))
        return 3
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    c.local_settings = h2.settings.Settings(client=True, initial_values={
        h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20})
    c.initiate_connection()
    c.increment_flow_control_window(16 << 20)
    s.sendall(c.data_to_send())
    auth = "%s:%d" % (a.sni, a.port)

    def get(path):
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, [(":method", "GET"), (":scheme", "https"), (":authority", auth),
                             (":path", path)], end_stream=True)
        return sid

    big = get(a.big)
    big_done, big_bytes, errors = 0, 0, 0
    lat = []
    small, small_t0 = None, 0.0
    end = time.monotonic() + a.seconds
    s.setblocking(False)
    while time.monotonic() < end:
        if small is None and big_bytes > 0:  # the large response is flowing: ask for a small one
            small, small_t0 = get(a.small), time.monotonic()
        out = c.data_to_send()
        if out:
            s.setblocking(True)
            s.sendall(out)
            s.setblocking(False)
        if not s.pending():
            select.select([s], [], [], 0.2)
        try:
            data = s.recv(1 << 16)
        except (ssl.SSLWantReadError, BlockingIOError):
            continue
        if not data:
            errors += 1
            break
        for ev in c.receive_data(data):
            if isinstance(ev, h2.events.DataReceived):
                c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                if ev.stream_id == big:
                    big_bytes += len(ev.data)
            elif isinstance(ev, h2.events.ResponseReceived):
                if dict(ev.headers).get(":status") != "200":
                    errors += 1
            elif isinstance(ev, h2.events.StreamEnded):
                if ev.stream_id == big:
                    big_done += 1
                    big = get(a.big)
                elif ev.stream_id == small:
                    lat.append((time.monotonic() - small_t0) * 1000)
                    small = None
            elif isinstance(ev, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                errors += 1
                if isinstance(ev, h2.events.ConnectionTerminated):
                    end = 0
    s.close()
    lat.sort()

    def pct(q):
        return "%.2f" % lat[min(len(lat) - 1, int(q * len(lat)))] if lat else "NA"
    print("mode=h2fair small=%d p50_ms=%s p99_ms=%s max_ms=%s big_done=%d big_bytes=%d errors=%d" % (
        len(lat), pct(0.5), pct(0.99), "%.2f" % lat[-1] if lat else "NA", big_done, big_bytes, errors))
    return 0


if __name__ == "__main__":
    sys.exit(main())
