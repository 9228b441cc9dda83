#!/usr/bin/env bash
# The session cache is bounded by memory, not only by entries: a client presenting a huge
# certificate at every full handshake (TLS 1.2 session IDs and TLS 1.3 stateful tickets, with
# tickets off) fills at most tls.session_cache.max_bytes; sessions that do not fit are counted
# and left out (the connection goes on), and ordinary clients resume again once there is room.
. "$(dirname "$0")/lib.sh"
make_site
CA=$CERTS/ca.crt
PY() { timeout $((180 * MULT)) python3 "$T/cache.py" "$@"; }
status_json() { tcurl -s "$BASE/status"; }
cache() { status_json | jq -r ".tls.session_cache.$1"; }
sed -n '/^# ---- cache.py ----$/,$p' "$0" | tail -n +2 >"$T/cache.py"
# client certificates: self-signed (an unknown issuer, let in by "optional") with 14 KB and
# 30 KB of junk, and the suite's ordinary client certificate
big_cert big14k 14000
big_cert big30k 30000
CACHE() { # extra session_cache keys
    echo ", \"session_tickets\": false, \"client_auth\": \"optional\", \"client_ca\": \"$CA\",
          \"session_cache\": { $1 }"
}
le() { # name value bound
    if [ "$2" -le "$3" ]; then ok "$1 ($2 <= $3)"; else not_ok "$1 ($2 > $3)"; fi
}
release_only() { case $TS_BUILD in *asan* | *tsan*) return 1 ;; esac; }

### defaults: a session larger than max_session_bytes (16 KB) is not cached at all
TLS_EXTRA=$(CACHE '"timeout_s": 300') start_server || exit 1
expect "max_bytes defaults to 64 MiB" "$(cache max_bytes)" 67108864
# every /status request over curl leaves a small session of its own: compare before and after
B0=$(cache bytes)
R=$(PY full "$PORT" 40 tls12 "$T/big30k.crt" "$T/big30k.key")
expect "40 handshakes with a 30 KB certificate are served" "$R" "200=40 resumed=0"
S=$(status_json)
expect "...their sessions are refused as oversized" "$(jq -r .tls.session_cache.refused_oversized <<<"$S")" 40
le "...none is charged (the two tickets of one curl connection at most)" $(($(jq -r .tls.session_cache.bytes <<<"$S") - B0)) 32768
R=$(PY resume "$PORT" 5 tls12 "$CERTS/client.crt" "$CERTS/client.key")
expect "an ordinary TLS 1.2 client resumes" "$R" "200=5 resumed=4"
R=$(PY resume "$PORT" 5 tls13 "$CERTS/client.crt" "$CERTS/client.key")
expect "an ordinary TLS 1.3 client resumes (stateful tickets)" "$R" "200=5 resumed=4"
B=$(cache bytes)
E=$(cache entries)
if [ "$B" -gt 0 ] && [ "$B" -le $((E * 8192)) ]; then ok "ordinary sessions are charged ($E entries, $B bytes)"
else not_ok "ordinary sessions: $E entries, $B bytes"; fi
stop_server
check_server_log

### a small budget filled by a hostile client
MAX=1048576
TLS_EXTRA=$(CACHE "\"max_bytes\": $MAX, \"max_session_bytes\": 65536, \"timeout_s\": $((4 * MULT))") start_server || exit 1
PID=$SERVER_PID
PY full "$PORT" 10 tls12 "$CERTS/client.crt" "$CERTS/client.key" >/dev/null # warm up
R0=$(rss_kb "$PID")
R=$(PY full "$PORT" 300 tls12 "$T/big30k.crt" "$T/big30k.key")
expect "300 TLS 1.2 handshakes with a 30 KB certificate are served" "$R" "200=300 resumed=0"
R=$(PY full "$PORT" 100 tls13 "$T/big30k.crt" "$T/big30k.key")
expect "100 TLS 1.3 handshakes with a 30 KB certificate are served" "$R" "200=100 resumed=0"
R1=$(rss_kb "$PID")
B=$(cache bytes)
E=$(cache entries)
F=$(cache refused_full)
echo "# budget $MAX: $E entries, $B bytes charged, $F refused; RSS $R0 -> $R1 kB"
le "the bytes charged stay within max_bytes" "$B" $MAX
# a 30 KB session is charged over 60 kB: 16 fit at most
le "sessions that did not fit are counted" $((400 - 16)) "$F"
R=$(PY resume "$PORT" 3 tls12 "$CERTS/client.crt" "$CERTS/client.key")
expect_match "an ordinary client is served whatever the cache holds" "$R" "^200=3 "
if release_only; then
    # the cache's share of RSS: the budget, with slack for the allocator and 400 handshakes
    le "RSS grew by at most 3 MB" $((R1 - R0)) 3072
fi
# once the hostile sessions expire, a full budget sweeps them and has room again
PY full "$PORT" 20 tls12 "$T/big30k.crt" "$T/big30k.key" >/dev/null
sleep $((5 * MULT))
PY full "$PORT" 20 tls12 "$T/big30k.crt" "$T/big30k.key" >/dev/null
le "after the sessions expire and others fill the cache, still within max_bytes" "$(cache bytes)" $MAX
R=$(PY resume "$PORT" 4 tls12 "$CERTS/client.crt" "$CERTS/client.key")
expect_match "...an ordinary client is served" "$R" "^200=4 "
sleep $((5 * MULT))
R=$(PY resume "$PORT" 4 tls12 "$CERTS/client.crt" "$CERTS/client.key")
expect "after they expire in turn, an ordinary client resumes again" "$R" "200=4 resumed=3"
stop_server
check_server_log

### the estimate covers what a session really holds (release build: RSS is meaningful)
if release_only; then
    for c in big14k client; do
        case $c in client) crt=$CERTS/client.crt key=$CERTS/client.key ;; *) crt=$T/$c.crt key=$T/$c.key ;; esac
        TLS_EXTRA=$(CACHE '"max_session_bytes": 65536') start_server || exit 1
        PID=$SERVER_PID
        PY full "$PORT" 20 tls12 "$crt" "$key" >/dev/null
        R0=$(rss_kb "$PID") B0=$(cache bytes)
        PY full "$PORT" 300 tls12 "$crt" "$key" >/dev/null
        R1=$(rss_kb "$PID") B1=$(cache bytes)
        PER_RSS=$(((R1 - R0) * 1024 / 300)) PER_EST=$(((B1 - B0) / 300))
        echo "# $c: $PER_RSS bytes of RSS per cached session, $PER_EST estimated"
        le "$c: a session's estimate is at least the memory it holds" "$PER_RSS" "$PER_EST"
        stop_server
        check_server_log
    done
fi

exit 0
# ---- cache.py ----
# Clients for 57-session-cache.sh (python3 standard library only).
import socket, ssl, sys

def ctx(cert, key, version):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    v = ssl.TLSVersion.TLSv1_2 if version == "tls12" else ssl.TLSVersion.TLSv1_3
    c.minimum_version = c.maximum_version = v
    if version == "tls12":
        c.options |= ssl.OP_NO_TICKET  # a session ID, kept in the server's cache
    c.load_cert_chain(cert, key)
    return c

def get(c, port, session=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        t = c.wrap_socket(s, server_hostname="localhost", session=session)
        t.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            b = t.recv(65536)
            if not b:
                break
            data += b
        status = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "noreply"
        # TLS 1.3: the ticket arrives after the handshake; read above, so t.session has it
        return status, t.session_reused, t.session
    except (ssl.SSLError, OSError) as e:
        return "error:" + type(e).__name__, False, None
    finally:
        s.close()

def run(port, count, version, cert, key, resume):
    c = ctx(cert, key, version)
    res, resumed, sess = {}, 0, None
    for _ in range(count):
        st, reused, s = get(c, port, sess if resume else None)
        res[st] = res.get(st, 0) + 1
        resumed += reused
        if resume and s is not None:
            sess = s
    print(" ".join("%s=%d" % kv for kv in sorted(res.items())) + " resumed=%d" % resumed)

if __name__ == "__main__":
    a = sys.argv
    run(int(a[2]), int(a[3]), a[4], a[5], a[6], a[1] == "resume")
