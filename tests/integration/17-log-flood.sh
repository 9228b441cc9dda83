#!/usr/bin/env bash
# Clients cannot flood the error log: failed handshakes are logged one by one only at debug; at
# info the main thread writes one summary line per log.summary_interval_s with the counts by
# reason, and a last one at stop. Thousands of plain-HTTP requests, TLS 1.1 ClientHellos and
# garbage records add a line or two, with counts that match /status.
. "$(dirname "$0")/lib.sh"
make_site
cat >"$T/flood.py" <<'PY'
# flood.py PORT KIND COUNT: COUNT connections, one after another, each failing the handshake one
# way: it sends its bytes, reads until the server closes (bounded), and closes.
import os, socket, sys, time
port, kind, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def hello_tls11():  # a TLS 1.1 ClientHello: no supported_versions, one TLS 1.0 suite
    body = b"\x03\x02" + os.urandom(32) + b"\x00" + b"\x00\x02\x00\x2f" + b"\x01\x00"
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(hs).to_bytes(2, "big") + hs
payloads = {
    "http": lambda: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "tls11": hello_tls11,
    "garbage": lambda: b"\x16\x03\x01\x00\x08" + b"\xff" * 8,
}
deadline = time.monotonic() + 60 * int(os.environ.get("MULT", "1"))
done = 0
for i in range(count):
    if time.monotonic() > deadline:
        break
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(payloads[kind]())
        while s.recv(4096):
            pass
        s.close()
    except OSError:
        pass
    done += 1
print(done)
PY
flood() { MULT=$MULT timeout $((120 * MULT)) python3 "$T/flood.py" "$PORT" "$1" "$2"; }
# failure_reasons from /status as "reason count" lines, without zeros
reasons() {
    tcurl "$BASE/status" | python3 -c '
import json, sys
r = json.load(sys.stdin)["tls"]["handshakes"]["failure_reasons"]
for k, v in sorted(r.items()):
    if v: print(k, v)'
}
# the reasons of summary lines, summed, as "reason count" lines
summed() {
    grep 'TLS handshakes failed in the last' "$T/error.log" | sed 's/.*(\(.*\)); .*/\1/' |
        tr ',' '\n' | awk 'NF == 2 { n[$1] += $2 } END { for (k in n) print k, n[k] }' | sort
}

### info: a flood of 2000 adds no line until the summary
start_server || exit 1
before=$(wc -l <"$T/error.log")
expect "700 plain-HTTP requests on the TLS port" "$(flood http 700)" 700
expect "700 TLS 1.1 ClientHellos" "$(flood tls11 700)" 700
expect "600 garbage records" "$(flood garbage 600)" 600
R=$(reasons)
expect_match "/status counts them" "$R" "http_on_tls_port 700"
during=$(($(wc -l <"$T/error.log") - before))
if [ "$during" -le 1 ]; then ok "info: the flood added $during lines to the error log"; else
    not_ok "info: the flood added $during lines to the error log"; sed 's/^/#   /' "$T/error.log" | tail -5
fi
expect "info: no line per handshake" "$(grep -c 'TLS handshake failed (' "$T/error.log")" 0
stop_server
expect "server exits 0" "$?" 0
expect "info: one summary line at stop (or two if a minute passed)" \
    "$(grep -c 'TLS handshakes failed in the last' "$T/error.log" | sed 's/^2$/1/')" 1
expect_match "info: ...it is at info, with the total" "$(cat "$T/error.log")" \
    '\[info\] TLS handshakes failed in the last [0-9]+ s: 2000 \('
expect "info: ...and counts by reason that match /status" "$(summed)" "$(printf '%s\n' "$R" | sort)"
expect "info: the error log has at most 5 lines in all" "$(($(wc -l <"$T/error.log") <= 5))" 1
check_server_log

### a short interval: a line per interval with failures, none for quiet ones
LOG_EXTRA=', "summary_interval_s": 1' start_server || exit 1
expect "a burst of 100" "$(flood http 100)" 100
# the burst may straddle two intervals: wait until the lines add up to it
for _ in $(seq 1 $((50 * MULT))); do [ "$(summed)" = "http_on_tls_port 100" ] && break; sleep 0.1; done
expect "summary_interval_s 1: the summaries come without a stop and add up" "$(summed)" "http_on_tls_port 100"
expect_match "...at info, with the interval" "$(cat "$T/error.log")" \
    '\[info\] TLS handshakes failed in the last [0-9]+ s: [0-9]+ \(http_on_tls_port [0-9]+\); one line each at log.level debug'
lines=$(grep -c 'TLS handshakes failed' "$T/error.log")
sleep 2.5
expect "...and quiet intervals write nothing" "$(grep -c 'TLS handshakes failed' "$T/error.log")" "$lines"
expect "a second burst of 50 TLS 1.1" "$(flood tls11 50)" 50
for _ in $(seq 1 $((50 * MULT))); do grep -q 'protocol_version' "$T/error.log" && break; sleep 0.1; done
R=$(reasons)
stop_server
expect "server exits 0" "$?" 0
expect "...every failure summed once over the lines" "$(summed)" "$(printf '%s\n' "$R" | sort)"
check_server_log

### debug: one line per failed handshake, with its reason and address
LOG_LEVEL=debug start_server || exit 1
flood http 30 >/dev/null
flood tls11 20 >/dev/null
flood garbage 10 >/dev/null
R=$(reasons)
stop_server
expect "debug: a line per plain-HTTP request" \
    "$(grep -c '\[debug\] 127\.0\.0\.1: TLS handshake failed (http_on_tls_port)' "$T/error.log")" 30
expect "debug: a line per TLS 1.1 attempt" \
    "$(grep -c '\[debug\] 127\.0\.0\.1: TLS handshake failed (protocol_version)' "$T/error.log")" 20
expect "debug: as many detail lines as /status counts" \
    "$(grep -c '\[debug\] 127\.0\.0\.1: TLS handshake failed (' "$T/error.log")" 60
expect "debug: the summary too" "$(summed)" "$(printf '%s\n' "$R" | sort)"
check_server_log

# the interval is checked like every other key
LOG_EXTRA=', "summary_interval_s": 0' write_config
OUT=$(oneshot "$TS_BIN" --config "$T/tessera.json" --check-config)
expect "summary_interval_s 0 is refused (exit 2)" "$?" 2
expect_match "...naming the key" "$OUT" "log.summary_interval_s: must be an integer from 1 to 3600"
