#!/usr/bin/env bash
# TLS: protocol versions, AEAD-only ciphers, no compression or renegotiation, and session
# resumption across workers by TLS 1.3 tickets, TLS 1.2 tickets and TLS 1.2 session IDs.
. "$(dirname "$0")/lib.sh"
make_site
LOG_LEVEL=debug start_server || exit 1

sc() { timeout $((10 * MULT)) openssl s_client -connect "127.0.0.1:$PORT" -servername localhost -CAfile "$CERTS/ca.crt" "$@" </dev/null 2>&1; }

expect "TLS 1.3 handshake" "$(tcurl --tlsv1.3 -o /dev/null -w '%{http_code}' "$BASE/")" 200
expect "TLS 1.2 handshake" "$(tcurl --tlsv1.2 --tls-max 1.2 -o /dev/null -w '%{http_code}' "$BASE/")" 200
O=$(sc -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0')
expect_match "TLS 1.1 is refused with a protocol_version alert" "$O" "alert protocol version"
O=$(sc -tls1 -cipher 'DEFAULT:@SECLEVEL=0')
expect_match "TLS 1.0 is refused with a protocol_version alert" "$O" "alert protocol version"
O=$(sc -tls1_2)
expect_match "TLS 1.2 negotiates ECDHE with AES-GCM or ChaCha20" "$O" "Cipher is ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)"
expect_match "no compression" "$O" "Compression: NONE"
for c in ECDHE-ECDSA-AES128-SHA AES128-GCM-SHA256 ECDHE-ECDSA-AES128-SHA256 DHE-RSA-AES128-GCM-SHA256; do
    O=$(sc -tls1_2 -cipher "$c")
    expect_match "non-ECDHE or non-AEAD cipher $c is refused with a handshake_failure alert" "$O" "alert handshake failure"
    expect_no_match "...and not negotiated" "$O" "Cipher is $c"
done
O=$( (sleep 1; printf 'R\n'; sleep 1) | timeout $((10 * MULT)) openssl s_client -connect "127.0.0.1:$PORT" -servername localhost -CAfile "$CERTS/ca.crt" -tls1_2 2>&1)
expect_match "client-initiated renegotiation is refused" "$O" "RENEGOTIATING"
expect_match "...with a no_renegotiation alert, not a second handshake" "$O" ":no renegotiation:"
expect "server still serves after the renegotiation attempt" "$(tcurl -o /dev/null -w '%{http_code}' "$BASE/")" 200

# Resumption across workers: each client reconnects with its latest session; with two
# workers and round-robin hand-off, consecutive connections land on different workers.
for mech in tls13 tls12-ticket tls12-id; do
    before=$(grep -c "resumed" "$T/error.log")
    R=$(probe resume --count 2000 --mech "$mech")
    ratio=$(kv "$R" ratio)
    echo "# $mech: $R"
    if awk -v r="$ratio" 'BEGIN { exit !(r >= 0.99) }'; then ok "$mech resumption ratio $ratio >= 0.99 over 2000 connections"; else
        not_ok "$mech resumption ratio $ratio < 0.99 ($R)"
    fi
    want=$(case $mech in tls13) echo tls13_ticket ;; tls12-ticket) echo tls12_ticket ;; tls12-id) echo tls12_session_id ;; esac)
    got=$(sed -n "$((before + 1)),\$p" "$T/error.log" | grep -c "resumed $want")
    if [ "$got" -ge 1980 ]; then ok "$mech: the server counted $got resumptions as $want"; else not_ok "$mech: the server counted $got resumptions as $want"; fi
    w0=$(sed -n "$((before + 1)),\$p" "$T/error.log" | grep -c "worker 0: .*resumed $want")
    w1=$(sed -n "$((before + 1)),\$p" "$T/error.log" | grep -c "worker 1: .*resumed $want")
    if [ "$w0" -ge 900 ] && [ "$w1" -ge 900 ]; then ok "$mech: resumptions on both workers ($w0 + $w1)"; else not_ok "$mech: resumptions on both workers ($w0 + $w1)"; fi
done
R=$(probe resume --count 50 --mech tls12-ticket)
expect "TLS 1.2 ticket sessions carry tickets" "$(kv "$R" ticket_sessions)" 50

# the README's openssl s_client recipe
sc -tls1_3 -sess_out "$T/sess.pem" -ign_eof <<<'' >/dev/null
printf 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -servername localhost -CAfile "$CERTS/ca.crt" -tls1_3 -sess_out "$T/sess.pem" -ign_eof >/dev/null 2>&1
O=$(printf 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -servername localhost -CAfile "$CERTS/ca.crt" -tls1_3 -sess_in "$T/sess.pem" -ign_eof 2>&1)
expect_match "openssl s_client -sess_in resumes (TLS 1.3)" "$O" "^Reused, TLSv1.3"
# TLS 1.3 clients use a ticket once: a resumed connection must bring a fresh one, or clients
# like wrk fall back to a full handshake every other connection
expect_match "a resumed TLS 1.3 connection receives a new ticket" "$O" "TLS session ticket:"
stop_server
expect "server exits 0" "$?" 0
check_server_log

# session_tickets false: TLS 1.2 falls back to session IDs, TLS 1.3 to stateful tickets
TLS_EXTRA=', "session_tickets": false' start_server || exit 1
R=$(probe resume --count 200 --mech tls12-ticket)
expect "without tickets TLS 1.2 clients get no ticket" "$(kv "$R" ticket_sessions)" 0
expect "...and still resume by session ID" "$(kv "$R" resumed)" 199
R=$(probe resume --count 200 --mech tls13)
expect "without stateless tickets TLS 1.3 resumes from the cache" "$(kv "$R" resumed)" 199
stop_server

# a short session timeout: sessions older than it are not resumed
TLS_EXTRA=', "session_cache": { "size": 100, "timeout_s": 1 }' start_server || exit 1
probe resume --count 1 --mech tls12-id --sess-out "$T/old.pem" >/dev/null
sleep 2.5
R=$(probe resume --count 1 --mech tls12-id --sess-in "$T/old.pem")
expect "an expired session is not resumed" "$(kv "$R" first_resumed)" 0
R=$(probe resume --count 20 --mech tls12-id)
expect "fresh sessions within the timeout resume" "$(kv "$R" resumed)" 19
R=$(probe resume --count 1 --mech tls13 --sess-out "$T/old13.pem")
sleep 2.5
R=$(probe resume --count 1 --mech tls13 --sess-in "$T/old13.pem")
expect "an expired TLS 1.3 ticket is not resumed" "$(kv "$R" first_resumed)" 0
stop_server

# protocols: ["TLSv1.3"] only
TLS_EXTRA=', "protocols": ["TLSv1.3"]' start_server || exit 1
expect "TLS 1.3-only server serves TLS 1.3" "$(tcurl --tlsv1.3 -o /dev/null -w '%{http_code}' "$BASE/")" 200
O=$(sc -tls1_2)
expect_match "TLS 1.3-only server refuses TLS 1.2 with a protocol_version alert" "$O" "alert protocol version"
expect_no_match "...and no TLS 1.2 session" "$O" "New, TLSv1.2"
stop_server

# a ticket key file shared by two server runs: tickets survive a restart
head -c 80 /dev/urandom >"$T/ticket.key"
TLS_EXTRA=", \"ticket_key_file\": \"$T/ticket.key\"" start_server || exit 1
probe resume --count 1 --mech tls13 --sess-out "$T/t13.pem" >/dev/null
probe resume --count 1 --mech tls12-ticket --sess-out "$T/t12.pem" >/dev/null
stop_server
TLS_EXTRA=", \"ticket_key_file\": \"$T/ticket.key\"" start_server || exit 1
expect "a TLS 1.3 ticket resumes after a restart with the same key file" "$(kv "$(probe resume --count 1 --mech tls13 --sess-in "$T/t13.pem")" first_resumed)" 1
expect "a TLS 1.2 ticket resumes after a restart with the same key file" "$(kv "$(probe resume --count 1 --mech tls12-ticket --sess-in "$T/t12.pem")" first_resumed)" 1
stop_server
head -c 80 /dev/urandom >"$T/ticket.key"
TLS_EXTRA=", \"ticket_key_file\": \"$T/ticket.key\"" start_server || exit 1
expect "a ticket made under another key is not resumed" "$(kv "$(probe resume --count 1 --mech tls13 --sess-in "$T/t13.pem")" first_resumed)" 0
stop_server
head -c 50 /dev/urandom >"$T/bad.key"
OUT=$(TLS_EXTRA=", \"ticket_key_file\": \"$T/bad.key\"" write_config; oneshot "$TS_BIN" --config "$T/tessera.json" --check-config)
expect_match "a ticket key file of the wrong size is refused" "$OUT" "tls.ticket_key_file: .*80 bytes"
check_server_log

# the default site takes an ECDSA and an RSA certificate (tls.certificates), as any site does:
# each client gets the one its signature algorithms allow
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/rsa.key" 2>/dev/null
openssl req -new -key "$T/rsa.key" -subj /CN=localhost -out "$T/rsa.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$T/rsa.ext"
openssl x509 -req -in "$T/rsa.csr" -CA "$CERTS/ca.crt" -CAkey "$CERTS/ca.key" -set_serial 9 \
    -days 2 -extfile "$T/rsa.ext" -out "$T/rsa.crt" 2>/dev/null
PORT=$(pick_port)
cat >"$T/two.json" <<JSON
{ "listen": "127.0.0.1:$PORT", "root": "$T/www", "workers": 1,
  "tls": { "certificates": [ { "certificate": "$CERTS/server.crt", "key": "$CERTS/server.key" },
                             { "certificate": "$T/rsa.crt", "key": "$T/rsa.key" } ] },
  "log": { "access": "off", "error": "-", "level": "info" } }
JSON
OUT=$(oneshot "$TS_BIN" --check-config --config "$T/two.json")
expect "tls.certificates: a default site with ECDSA and RSA is valid" "$?" 0
spawn_server "$TS_BIN" --config "$T/two.json" || exit 1
keytype() { # SIGALGS: the server key's type as s_client shows it
    echo | timeout $((10 * MULT)) openssl s_client -connect "127.0.0.1:$PORT" -servername localhost \
        -CAfile "$CERTS/ca.crt" -sigalgs "$1" 2>/dev/null | sed -n 's/^Server public key is \([0-9]*\) bit/\1/p'
}
expect "an ECDSA-only client gets the ECDSA certificate" "$(keytype ECDSA+SHA256)" 256
expect "an RSA-only client gets the RSA certificate" "$(keytype RSA-PSS+SHA256:RSA+SHA256)" 2048
stop_server
sed 's|"certificates": \[|"key": "x", "certificates": [|' "$T/two.json" >"$T/both.json"
OUT=$(oneshot "$TS_BIN" --check-config --config "$T/both.json")
expect "tls.certificates beside tls.key is refused" "$?" 2
expect_match "...naming the key" "$OUT" "tls.certificates: given with tls.certificate, tls.key"
check_server_log
