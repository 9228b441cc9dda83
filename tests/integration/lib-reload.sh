# shellcheck shell=bash
# Helpers for the configuration-reload tests (19-reload*.sh), sourced after lib.sh: a
# configuration written from parts a test changes between reloads, server certificates renewed
# from the suite's CA, SIGHUP with a wait for its outcome line, the "reload" object of /status,
# and a client that keeps one connection (HTTP/1.1 or HTTP/2) open across reloads.

# sanitized: the build under test is the ASan or TSan one (TS_BUILD ends in /asan or /tsan)
sanitized() { case ${TS_BUILD%/} in */asan | */tsan) return 0 ;; esac; return 1; }

### certificates: leaves issued by the suite's CA ($CERTS/ca.key), told apart by their OU
PKI=$T/pki
LIVE=$T/live
mkdir -p "$PKI" "$LIVE"
# mkcert NAME [SAN] [KEYFILE]: $PKI/NAME.crt (subject OU=NAME, a random serial) and NAME.key
# (a new P-256 key, or a copy of KEYFILE: a renewal that keeps the key)
mkcert() {
    local n=$1 san=${2:-DNS:localhost,IP:127.0.0.1}
    if [ -n "${3:-}" ]; then cp "$3" "$PKI/$n.key"; else
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/$n.key" 2>/dev/null
    fi
    openssl req -new -key "$PKI/$n.key" -out "$PKI/$n.csr" -subj "/O=tessera/OU=$n/CN=localhost" 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$san" >"$PKI/$n.ext"
    openssl x509 -req -in "$PKI/$n.csr" -CA "$CERTS/ca.crt" -CAkey "$CERTS/ca.key" \
        -set_serial "0x$(openssl rand -hex 12)" -days 2 -extfile "$PKI/$n.ext" -out "$PKI/$n.crt" 2>/dev/null
}
# install NAME [DEST]: copies NAME's certificate and key over $LIVE/DEST.crt and .key (default
# server) the way an operator should, each by a rename of a complete file
install() {
    local d=${2:-server}
    cp "$PKI/$1.crt" "$LIVE/.$d.crt.tmp" && mv -f "$LIVE/.$d.crt.tmp" "$LIVE/$d.crt"
    cp "$PKI/$1.key" "$LIVE/.$d.key.tmp" && mv -f "$LIVE/.$d.key.tmp" "$LIVE/$d.key"
}
# served_ou [SNI]: the OU of the certificate a new connection gets (none: no handshake)
served_ou() {
    local ou
    ou=$(timeout $((15 * MULT)) openssl s_client -connect "127.0.0.1:$PORT" -servername "${1:-localhost}" \
        </dev/null 2>/dev/null | openssl x509 -noout -subject -nameopt sep_multiline 2>/dev/null |
        sed -n 's/^ *OU=//p')
    echo "${ou:-none}"
}
# served_serial: the serial of the certificate a new connection gets
served_serial() {
    timeout $((15 * MULT)) openssl s_client -connect "127.0.0.1:$PORT" -servername localhost </dev/null \
        2>/dev/null | openssl x509 -noout -serial 2>/dev/null | sed 's/^serial=//'
}
cert_serial() { openssl x509 -in "$1" -noout -serial | sed 's/^serial=//'; }

### the configuration: $T/reload.json, from these parts
# RC_LISTEN (a JSON value), RC_ROOT, RC_WORKERS, RC_TLS (", key: value" inside tls), RC_TOP
# ("key": value, at the top level), RC_TIMEOUTS, RC_LIMITS, RC_LOG_LEVEL
RC=$T/reload.json
rconf() {
    local listen=${RC_LISTEN:-\"127.0.0.1:$PORT\"} timeouts=${RC_TIMEOUTS:-'"shutdown_s": 1'}
    local limits=${RC_LIMITS:-'"max_connections": 8192'}
    cat >"$RC.tmp" <<JSON
{
    ${RC_TOP:-}
    "listen": $listen,
    "root": "${RC_ROOT:-$T/www}",
    "workers": ${RC_WORKERS:-2},
    "tls": {
        "certificate": "$LIVE/server.crt",
        "key": "$LIVE/server.key"
        ${RC_TLS:-}
    },
    "timeouts": { $timeouts },
    "limits": { $limits },
    "log": { "access": "$T/access.log", "error": "-", "level": "${RC_LOG_LEVEL:-info}" }
}
JSON
    mv -f "$RC.tmp" "$RC"
}

# start_reload_server [ARGS...]: installs the certificate "gen1" unless one is live, picks a
# port, writes the configuration and starts the server on it. G is the generation expected.
start_reload_server() {
    [ -f "$LIVE/server.crt" ] || { [ -f "$PKI/gen1.crt" ] || mkcert gen1; install gen1; }
    for _ in 1 2 3; do
        PORT=$(pick_port) || return 1
        rconf
        spawn_server "$TS_BIN" --config "$RC" "$@" >"$T/spawn.out" && { G=1; return 0; }
        if [ -n "$SERVER_PID" ] || ! grep -q "Address already in use" "$T/error.log"; then break; fi
        LOG_DONE[SERVER_IDX]=retried
    done
    cat "$T/spawn.out"
    return 1
}

### reloading
# loaded_lines / failed_lines: outcome lines in the log of the server started last
loaded_lines() { grep -c 'reload: configuration generation [0-9]* loaded' "$T/error.log"; }
failed_lines() { grep -c 'reload failed: ' "$T/error.log"; }
# more_than COMMAND N: COMMAND prints a number above N (for wait_until, which runs it again)
more_than() { [ "$($1)" -gt "$2" ]; }
# hup_ok DESCRIPTION: SIGHUP, then the "generation G+1 loaded" line must come; G is then G+1
hup_ok() {
    local n
    n=$(loaded_lines)
    kill -HUP "$SERVER_PID"
    if wait_until "${RELOAD_WAIT:-15}" more_than loaded_lines "$n"; then
        G=$((G + 1))
        local line
        line=$(grep 'reload: configuration generation [0-9]* loaded' "$T/error.log" | tail -1)
        expect_match "$1: reload succeeds" "$line" "\[info\] reload: configuration generation $G loaded"
    else
        not_ok "$1: no 'reload: configuration generation' line within ${RELOAD_WAIT:-15} s"
        tail -5 "$T/error.log" | sed 's/^/#   /'
    fi
}
# hup_fail DESCRIPTION PATTERN: SIGHUP, then one "reload failed" line naming PATTERN, and the
# generation it still serves is G; the status reports the failure
hup_fail() {
    local n line
    n=$(failed_lines)
    kill -HUP "$SERVER_PID"
    if wait_until "${RELOAD_WAIT:-15}" more_than failed_lines "$n"; then
        line=$(grep 'reload failed: ' "$T/error.log" | tail -1)
        expect_match "$1: refused with one [error] line naming it" "$line" "\[error\] reload failed: .*$2"
        expect_match "...still serving generation $G" "$line" "; still serving generation $G\$"
        expect "...one line only" "$(($(failed_lines) - n))" 1
    else
        not_ok "$1: no 'reload failed' line within ${RELOAD_WAIT:-15} s"
        tail -5 "$T/error.log" | sed 's/^/#   /'
    fi
}
# rstat FIELD: reload.FIELD in /status (over a new connection)
rstat() { tcurl "$BASE/status" | jq -r ".reload.$1"; }
# num VALUE: VALUE if it is a number, else 0 (a field missing from /status is "null")
num() { case $1 in '' | *[!0-9]*) echo 0 ;; *) echo "$1" ;; esac; }

### hold.py: one connection across reloads
cat >"$T/hold.py" <<'PY'
# hold.py PROTO PORT SNI CTRL PATH...: one TLS connection to 127.0.0.1:PORT (verified against
# $CA for SNI), HTTP/1.1 keep-alive or HTTP/2 (PROTO h1|h2), one GET per PATH in turn. Before
# the request for PATH number i (from 1), waits (at most 120 s) for the file CTRL.i to exist.
# Prints "i STATUS BYTES" per response (the body goes to CTRL.body.i), "i error WHAT" on failure.
import os, socket, ssl, sys, time
proto, port, sni, ctrl, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
ctx = ssl.create_default_context(cafile=os.environ["CA"])
ctx.set_alpn_protocols(["h2"] if proto == "h2" else ["http/1.1"])
t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30), server_hostname=sni)

def h1_get(path):
    t.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, sni)).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = t.recv(65536)
        if not d:
            raise EOFError("closed before the header")
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    body = bytearray(rest)
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for l in lines[1:]:
        k, v = l.split(":", 1)
        if k.strip().lower() == "content-length":
            length = int(v)
    while len(body) < length:
        d = t.recv(65536)
        if not d:
            raise EOFError("closed in the body")
        body += d
    return int(lines[0].split()[1]), bytes(body)

if proto == "h2":
    import h2.connection, h2.config, h2.events
    c = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    c.initiate_connection()
    t.sendall(c.data_to_send())

def h2_get(path):
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, [(":method", "GET"), (":scheme", "https"), (":authority", sni), (":path", path)],
                   end_stream=True)
    t.sendall(c.data_to_send())
    status, body = 0, bytearray()  # bytes += would copy the whole body at every frame
    while True:
        d = t.recv(65536)
        if not d:
            raise EOFError("closed")
        for e in c.receive_data(d):
            if isinstance(e, h2.events.ResponseReceived) and e.stream_id == sid:
                status = int(dict(e.headers)[b":status"])
            elif isinstance(e, h2.events.DataReceived) and e.stream_id == sid:
                body += e.data
                c.acknowledge_received_data(e.flow_controlled_length, sid)
            elif isinstance(e, h2.events.StreamEnded) and e.stream_id == sid:
                t.sendall(c.data_to_send())
                return status, bytes(body)
            elif isinstance(e, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                raise EOFError(type(e).__name__)
        t.sendall(c.data_to_send())

for i, p in enumerate(paths, 1):
    if i > 1:
        end = time.time() + 120
        while not os.path.exists("%s.%d" % (ctrl, i)) and time.time() < end:
            time.sleep(0.05)
    try:
        st, body = (h2_get if proto == "h2" else h1_get)(p)
    except Exception as e:
        print("%d error %s" % (i, type(e).__name__), flush=True)
        sys.exit(1)
    with open("%s.body.%d" % (ctrl, i), "wb") as f:
        f.write(body)
    print("%d %d %d" % (i, st, len(body)), flush=True)
PY
# hold PROTO NAME SNI PATH...: starts hold.py in the background (HOLD_PID), output in $T/NAME.out; step
# NAME I lets it send request I; held NAME I waits for response I, then prints its line
hold() {
    local proto=$1 name=$2 sni=$3
    shift 3
    rm -f "$T/$name".*
    CA=${HOLD_CA:-$CERTS/ca.crt} timeout $((150 * MULT)) /usr/bin/python3 "$T/hold.py" "$proto" "${HOLD_PORT:-$PORT}" "$sni" \
        "$T/$name" "$@" >"$T/$name.out" 2>"$T/$name.err" &
    HOLD_PID=$!
    PIDS+=("$HOLD_PID")
}
step() { touch "$T/$1.$2"; }
held() {
    wait_until 20 grep -q "^$2 " "$T/$1.out"
    grep "^$2 " "$T/$1.out" || echo "$2 none $(tail -1 "$T/$1.err")"
}
held_body() { cat "$T/$1.body.$2" 2>/dev/null; }
