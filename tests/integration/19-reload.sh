#!/usr/bin/env bash
# SIGHUP reloads the configuration file and everything it names. A valid one applies to new
# connections (root, sites, certificates, listeners, strict_sni) while connections already open
# (HTTP/1.1 keep-alive, HTTP/2) finish on the generation they were opened under; command-line
# overrides stay; restart-only keys are warned about and keep their running value. An invalid
# one (bad JSON, missing or mismatched certificate, unknown key, an address in use, a site root
# or error page that does not exist, a bad ticket key file) changes nothing: one [error] line
# names it, /status counts it. Sessions resume across a reload (TLS 1.3 tickets, TLS 1.2
# tickets and session IDs), also across a certificate renewal, but not across a change of the
# client-certificate policy. Prepending a ticket key to tls.ticket_key_file rotates tickets.
# Under systemd, RELOADING=1 with MONOTONIC_USEC, then READY=1. (19-reload-load.sh: the same
# under load, renewals and storms of SIGHUP.)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-reload.sh"
make_site
mkdir -p "$T/www2" "$T/added"
printf 'www\n' >"$T/www/which.txt"
printf 'www2\n' >"$T/www2/which.txt"
printf 'added\n' >"$T/added/which.txt"
cp "$T/www/hello.txt" "$T/www2/hello.txt"
mkcert gen1
mkcert gen2
mkcert gen3
mkcert added "DNS:added.test"
install gen1
metric() { tcurl "$BASE/metrics" | sed -n "s/^$1 //p"; }

###################################################################### status, restart-only keys
ALLOWED_ERRORS='reload failed: ' start_reload_server || exit 1
S=$(tcurl "$BASE/status")
expect "status: reload.generation is 1 at start" "$(jq -r .reload.generation <<<"$S")" 1
expect "...done 0, failed 0" "$(jq -r '"\(.reload.done) \(.reload.failed)"' <<<"$S")" "0 0"
expect "...last_at and last_error present, null" \
    "$(jq -r '.reload | "\(has("last_at")) \(has("last_error")) \(.last_at) \(.last_error)"' <<<"$S")" "true true null null"
expect "metrics: tessera_config_generation 1" "$(metric tessera_config_generation)" 1
expect "...tessera_reloads_total 0" "$(metric tessera_reloads_total)" 0
expect "...tessera_reload_failures_total 0" "$(metric tessera_reload_failures_total)" 0

hup_ok "the same configuration again"
S=$(tcurl "$BASE/status")
expect "status: generation 2, done 1, failed 0" "$(jq -r '"\(.reload.generation) \(.reload.done) \(.reload.failed)"' <<<"$S")" "2 1 0"
expect_match "...last_at is an ISO-8601 UTC time" "$(jq -r .reload.last_at <<<"$S")" \
    '^20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9](\.[0-9]+)?Z$'
expect "metrics: generation 2, 1 reload" "$(metric tessera_config_generation) $(metric tessera_reloads_total)" "2 1"
expect "it still serves" "$(tcurl "$BASE/hello.txt")" hello

# restart-only keys changed along with root, which applies
TASKS0=$(ls "/proc/$SERVER_PID/task" | wc -l)
RC_WORKERS=3 RC_TIMEOUTS='"shutdown_s": 1, "keepalive_s": 30' RC_LIMITS='"max_connections": 100' \
    RC_TLS=', "session_tickets": false, "session_cache": { "size": 100, "timeout_s": 600 }' RC_LOG_LEVEL=warn \
    RC_ROOT=$T/www2 rconf
hup_ok "restart-only keys changed with root"
LOG=$(cat "$T/error.log")
for k in 'workers' 'timeouts\.keepalive_s' 'limits\.max_connections' 'tls\.session_tickets' \
    'tls\.session_cache\.size' 'tls\.session_cache\.timeout_s' 'log\.level'; do
    expect_match "...[warn] reload: $k changed: applies at restart" "$LOG" "\[warn\] reload: $k changed: applies at restart"
done
expect "...root applies to new connections" "$(tcurl "$BASE/which.txt")" www2
expect "...the worker threads are those of the start" "$(ls "/proc/$SERVER_PID/task" | wc -l)" "$TASKS0"
expect "...session tickets stay on (tls.session_tickets false waits for a restart)" \
    "$(kv "$(probe resume --count 1 --mech tls12-ticket)" ticket_sessions)" 1
expect_match "...log.level info stays: the reload's info line is logged" "$LOG" "\[info\] reload: configuration generation $G loaded"
rconf
hup_ok "restart-only keys back to their running values"
expect "...root back" "$(tcurl "$BASE/which.txt")" www
expect_no_match "...a warning names only keys of the configuration file" \
    "$(grep 'applies at restart' "$T/error.log")" 'reload: tls\.session_timeout_s '

# limits other than max_connections apply to new connections
RC_LIMITS='"max_connections": 8192, "max_uri_bytes": 256, "max_requests_per_connection": 2' rconf
hup_ok "limits.max_uri_bytes and max_requests_per_connection lowered"
LONG="/hello.txt?$(head -c 400 /dev/zero | tr "\\0" a)"
expect "...a 400-byte target is refused with 414" "$(tcurl -o /dev/null -w '%{http_code}' "$BASE$LONG")" 414
expect_match "...the third request on a connection is on a new one" \
    "$(kv "$(probe get --keepalive 3 --path /hello.txt 2>/dev/null)" responses)" '^2$'
expect_no_match "...no warning about them" "$(grep 'applies at restart' "$T/error.log")" 'max_uri_bytes|max_requests_per_connection'
# TLS versions and HTTP/2 apply to new connections
RC_TLS=', "protocols": ["TLSv1.3"]' RC_TOP='"http2": false,' rconf
hup_ok "TLS 1.3 only, http2 off"
expect "...a TLS 1.2 client is refused" "$(kv "$(probe resume --count 1 --mech tls12-ticket 2>/dev/null)" ok)" 0
expect "...TLS 1.3 is served" "$(kv "$(probe resume --count 1 --mech tls13)" ok)" 1
expect "...a client offering h2 gets HTTP/1.1" "$(tcurl --http2 -o /dev/null -w '%{http_version}' "$BASE/hello.txt")" 1.1
rconf
hup_ok "TLS 1.2 and http2 back"
expect "...a TLS 1.2 client is served" "$(kv "$(probe resume --count 1 --mech tls12-ticket)" ok)" 1
expect "...h2 again" "$(tcurl --http2 -o /dev/null -w '%{http_version}' "$BASE/hello.txt")" 2
stop_server
check_server_log

### command-line overrides stay applied across a reload
PORT=$(pick_port)
rconf
spawn_server "$TS_BIN" --config "$RC" --root "$T/www2" || exit 1
G=1
expect "--root overrides the file's root" "$(tcurl "$BASE/which.txt")" www2
hup_ok "with --root"
expect "...after the reload --root still applies" "$(tcurl "$BASE/which.txt")" www2
stop_server
check_server_log

### a SIGHUP already pending when tessera starts (a hasty reload while it loads): a reload
# once it runs, not an exit (the signal mask and pending signals survive exec)
cat >"$T/hup-pending.py" <<'PY'
import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
os.kill(os.getpid(), signal.SIGHUP)
os.execv(sys.argv[1], sys.argv[1:])
PY
PORT=$(pick_port)
rconf
spawn_server python3 "$T/hup-pending.py" "$TS_BIN" --config "$RC" || exit 1
check "a SIGHUP pending at start: one reload once running" \
    wait_until 10 grep -q 'reload: configuration generation 2 loaded' "$T/error.log"
expect "...and it serves" "$(tcurl "$BASE/hello.txt")" hello
stop_server
check_server_log

###################################################################### invalid configurations
ALLOWED_ERRORS='reload failed: ' start_reload_server || exit 1
CUR_OU=gen1 CUR_WHICH=www
# bad_reload DESCRIPTION PATTERN: the configuration (or a file it names) is broken now
bad_reload() {
    local f0
    f0=$(num "$(rstat failed)")
    hup_fail "$1" "$2"
    local S
    S=$(tcurl "$BASE/status")
    expect "...status: failed $((f0 + 1)), generation still $G" \
        "$(jq -r '"\(.reload.failed) \(.reload.generation)"' <<<"$S")" "$((f0 + 1)) $G"
    expect_match "...status: last_error names it" "$(jq -r .reload.last_error <<<"$S")" "$2"
    expect "...the old certificate is served" "$(served_ou)" "$CUR_OU"
    expect "...the old content" "$(tcurl "$BASE/which.txt")" "$CUR_WHICH"
}
rconf
sed -i '$d' "$RC"
bad_reload "JSON without its closing brace" 'reload\.json'
printf '' >"$RC"
bad_reload "an empty configuration file" 'reload\.json'
rm -f "$RC"
bad_reload "the configuration file gone" 'reload\.json'
mkdir "$RC"
bad_reload "the configuration file a directory" 'reload\.json'
rmdir "$RC"
RC_TOP='"frobnicate": 1,' rconf
bad_reload "an unknown key" 'frobnicate'
RC_WORKERS='"two"' rconf
bad_reload "a restart-only key of the wrong type (still validated)" 'workers'
RC_LIMITS='"max_connections": 8192, "max_header_bytes": 1' rconf
bad_reload "a limit out of range" 'limits\.max_header_bytes'
rconf
mv "$LIVE/server.crt" "$LIVE/server.crt.away"
bad_reload "the certificate file missing" 'tls\.certificate'
head -c 300 "$PKI/gen2.crt" >"$LIVE/server.crt"
bad_reload "a certificate file half written" 'tls\.certificate'
cp "$PKI/gen2.crt" "$LIVE/server.crt" # gen2's certificate, gen1's key
bad_reload "a key that does not match the certificate" 'tls\.(key|certificate)'
cp "$PKI/gen1.crt" "$LIVE/server.crt"
# a second listen address held by another socket
P3=$(pick_port)
timeout $((60 * MULT)) python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1)
open(sys.argv[2], "w").close()
time.sleep(3600)' "$P3" "$T/holder.ready" &
HOLDER=$!
PIDS+=("$HOLDER")
wait_until 10 test -f "$T/holder.ready"
RC_LISTEN="[\"127.0.0.1:$PORT\", \"127.0.0.1:$P3\"]" rconf
bad_reload "a listen address another socket holds" 'listen'
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null
RC_TOP="\"sites\": [ { \"server_names\": [\"added.test\"], \"root\": \"$T/no-such-dir\",
    \"certificates\": [ { \"certificate\": \"$PKI/added.crt\", \"key\": \"$PKI/added.key\" } ] } ]," rconf
bad_reload "a site whose root does not exist" 'sites\[0\].*root'
RC_TOP="\"sites\": [ { \"server_names\": [\"added.test\"], \"root\": \"$T/added\",
    \"certificates\": [ { \"certificate\": \"$PKI/no-such.crt\", \"key\": \"$PKI/added.key\" } ] } ]," rconf
bad_reload "a site whose certificate does not exist" 'sites\[0\].*certificate'
RC_TOP='"error_pages": { "404": "/no-such-page.html" },' rconf
bad_reload "an error page that does not exist" 'error_pages'
# the same rule twice: the second, requiring a client certificate, would have been dropped
RC_TLS=", \"client_auth\": \"optional\", \"client_ca\": \"$CERTS/ca.crt\"" RC_TOP='"locations": [ { "path": "/private/", "cache_control": "private" },
    { "path": "/private/", "require_client_cert": true } ],' rconf
bad_reload "a location path given twice" 'locations\[1\]\.path: "/private/" duplicates locations\[0\]\.path'
# a location path not in normal form never matched a request: its certificate protected nothing
RC_TLS=", \"client_auth\": \"optional\", \"client_ca\": \"$CERTS/ca.crt\"" RC_TOP='"locations": [ { "path": "/%70rivate/", "require_client_cert": true } ],' rconf
bad_reload "a location path not in normal form" 'locations\[0\]\.path: "/%70rivate/" is not in normal form: write "/private/"'
RC_TOP='"error_pages": { "404": "/hello.txt", "404": "/which.txt" },' rconf
bad_reload "an error_pages status given twice" 'error_pages\.404: duplicate key'
RC_ROOT=$T/no-such-root rconf
bad_reload "a root that does not exist" 'root'
RC_TLS=', "client_auth": "required"' rconf
bad_reload "client_auth required without client_ca" 'client_(auth|ca)'
head -c 500 /dev/urandom >"$T/garbage.ocsp"
RC_TLS=", \"ocsp_response\": \"$T/garbage.ocsp\"" rconf
bad_reload "an OCSP response file that is not one" 'ocsp_response'
RC_TLS=", \"client_auth\": \"optional\", \"client_ca\": \"$PKI/gen1.key\"" rconf
bad_reload "a client CA file holding a key, not a certificate" 'client_ca'
expect "after $(rstat failed) failures: no reload done" "$(rstat "done")" 0
# a client that connected before the reload but sends its ClientHello after it: the
# connection belongs to the generation it was accepted under (its certificate)
cat >"$T/late.py" <<'PY'
import os, socket, ssl, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
open(sys.argv[2] + ".connected", "w").close()
end = time.time() + 60
while not os.path.exists(sys.argv[2]) and time.time() < end:
    time.sleep(0.05)
ctx = ssl.create_default_context(cafile=os.environ["CA"])
t = ctx.wrap_socket(s, server_hostname="localhost")
ou = [v for rdn in t.getpeercert()["subject"] for k, v in rdn if k == "organizationalUnitName"]
t.sendall(b"GET /which.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
data = b""
while True:
    d = t.recv(65536)
    if not d:
        break
    data += d
print(ou[0] if ou else "none", data.split(b"\r\n\r\n", 1)[-1].decode().strip())
PY
CA=$CERTS/ca.crt timeout $((90 * MULT)) python3 "$T/late.py" "$PORT" "$T/late.go" >"$T/late.out" 2>&1 &
LATE=$!
PIDS+=("$LATE")
# connected, and taken by the server (not only queued by the kernel): one connection handshaking
handshaking() { [ "$(tcurl "$BASE/status" | jq -r .connections.handshaking)" -ge 1 ]; }
wait_until 10 test -f "$T/late.go.connected"
check "the early client's connection is accepted" wait_until 10 handshaking
# a valid one now: the renewed certificate
install gen2
rconf
hup_ok "a valid configuration after the failures"
CUR_OU=gen2
touch "$T/late.go"
wait "$LATE"
expect "a connection accepted before the reload, handshaking after it: the old certificate and root" \
    "$(cat "$T/late.out")" "gen1 www"
expect "...the renewed certificate is served" "$(served_ou)" gen2
expect "...its serial too" "$(served_serial)" "$(cert_serial "$PKI/gen2.crt")"
expect "...status: last_error cleared" "$(rstat last_error)" null
expect "...generation $G" "$(rstat generation)" "$G"
expect "...metrics count the failures" "$(metric tessera_reload_failures_total)" "$(rstat failed)"

###################################################################### open connections keep their generation
printf 'www2 index\n' >"$T/www2/index.html"
hold h1 ka1 localhost /which.txt /which.txt /status /which.txt
hold h2 ka2 localhost /which.txt /which.txt /status
expect "HTTP/1.1 keep-alive connection: first response" "$(held ka1 1)" "1 200 4"
expect "HTTP/2 connection: first response" "$(held ka2 1)" "1 200 4"
SITE_ADDED="\"sites\": [ { \"server_names\": [\"added.test\"], \"root\": \"$T/added\",
    \"certificates\": [ { \"certificate\": \"$PKI/added.crt\", \"key\": \"$PKI/added.key\" } ] } ],"
RC_ROOT=$T/www2 RC_TOP=$SITE_ADDED rconf
hup_ok "root changed and a site added"
expect "new connections: the new root" "$(tcurl "$BASE/which.txt")" www2
step ka1 2
step ka2 2
held ka1 2 >/dev/null
held ka2 2 >/dev/null
expect "HTTP/1.1 connection opened before: served from the old root (its generation)" "$(held_body ka1 2)" www
expect "HTTP/2 connection opened before: served from the old root" "$(held_body ka2 2)" www
step ka1 3
step ka2 3
held ka1 3 >/dev/null
held ka2 3 >/dev/null
# the site table is the configuration in use, also for a scraper's old keep-alive connection
expect "/status on the old HTTP/1.1 connection: the sites now in use" \
    "$(jq -r '[.sites[]?.name] | join(",")' "$T/ka1.body.3")" "default,added.test"
expect "...on the old HTTP/2 connection too" "$(jq -r '[.sites[]?.name] | join(",")' "$T/ka2.body.3")" "default,added.test"
expect_match "/status on a new connection: the new site is listed" \
    "$(tcurl "$BASE/status" | jq -r '[.sites[]?.name] | join(",")')" 'added\.test'
expect "...and the generation count is global" "$(jq -r .reload.generation "$T/ka1.body.3")" "$G"

# but whether /status may be read is the business of the connection's own generation
hold h1 ka5 localhost /status /status
held ka5 1 >/dev/null
RC_ROOT=$T/www2 RC_TOP="$SITE_ADDED \"status\": { \"enabled\": false }," rconf
hup_ok "status.enabled false"
expect "...a new connection: /status is not served" "$(tcurl -o /dev/null -w '%{http_code}' "$BASE/status")" 404
step ka5 2
expect "...the connection accepted before: still served" "$(held ka5 2 | cut -d' ' -f1,2)" "2 200"
RC_ROOT=$T/www2 RC_TOP=$SITE_ADDED rconf
hup_ok "status.enabled back"

### sites by reload
expect "SNI added.test: the added site's certificate" "$(served_ou added.test)" added
expect "...and its root" "$(curl -sS --http1.1 --max-time $((20 * MULT)) --cacert "$CERTS/ca.crt" \
    --resolve "added.test:$PORT:127.0.0.1" "https://added.test:$PORT/which.txt")" added
RC_ROOT=$T/www2 rconf
hup_ok "the site removed"
expect "SNI added.test: the default site's certificate" "$(served_ou added.test)" gen2
step ka1 4
held ka1 4 >/dev/null
expect "the HTTP/1.1 connection from two generations ago still gets the old root" "$(held_body ka1 4)" www
RC_ROOT=$T/www2 RC_TOP='"server_names": ["localhost"],' RC_TLS=', "strict_sni": true' rconf
hup_ok "strict_sni turned on"
expect "SNI added.test: refused" "$(served_ou added.test)" none
expect "SNI localhost: served" "$(served_ou localhost)" gen2
RC_ROOT=$T/www2 RC_TOP="\"server_names\": [\"localhost\"], $SITE_ADDED" RC_TLS=', "strict_sni": true' rconf
hup_ok "the site back under strict_sni"
expect "SNI added.test: the site's certificate again" "$(served_ou added.test)" added
rconf
hup_ok "back to one site"

### certificates behind symbolic links swapped by a renewal tool (certbot's live/ -> archive/)
mkdir -p "$T/archive"
cp "$PKI/gen1.crt" "$T/archive/cert1.pem"
cp "$PKI/gen1.key" "$T/archive/key1.pem"
cp "$PKI/gen3.crt" "$T/archive/cert2.pem"
cp "$PKI/gen3.key" "$T/archive/key2.pem"
ln -sfn "$T/archive/cert1.pem" "$LIVE/server.crt"
ln -sfn "$T/archive/key1.pem" "$LIVE/server.key"
hup_ok "certificate and key as symbolic links"
expect "...the link's target is served" "$(served_ou)" gen1
ln -sfn "$T/archive/cert2.pem" "$LIVE/server.crt"
ln -sfn "$T/archive/key2.pem" "$LIVE/server.key"
hup_ok "the links moved to the renewed files"
expect "...the new target is served" "$(served_ou)" gen3
ln -sfn "$T/archive/cert1.pem" "$LIVE/server.crt"
hup_fail "the certificate link moved, the key link not yet" 'tls\.(key|certificate)'
expect "...gen3 still served" "$(served_ou)" gen3
rm -f "$LIVE/server.crt" "$LIVE/server.key"
install gen2
hup_ok "plain files again"

###################################################################### one worker: its file cache across generations
stop_server
check_server_log
mkdir -p "$T/www3"
printf 'www3\n' >"$T/www3/which.txt"
# serves_on NAME: the body of which.txt over a new connection
which() { tcurl "$BASE/which.txt"; }
RC_WORKERS=1 start_reload_server || exit 1
expect "one worker: www" "$(which)" www
hold h1 ka3 localhost /which.txt /which.txt /which.txt
KA3=$HOLD_PID
held ka3 1 >/dev/null
RC_WORKERS=1 RC_ROOT=$T/www2 rconf
hup_ok "one worker: root www -> www2"
expect "...new connection: www2" "$(which)" www2
step ka3 2
held ka3 2 >/dev/null
expect "...the old connection, after the new one cached its file: www" "$(held_body ka3 2)" www
expect "...a new connection after the old one cached its own: www2" "$(which)" www2
RC_WORKERS=1 RC_ROOT=$T/www3 rconf
hup_ok "one worker: root www2 -> www3"
expect "...new connection: www3" "$(which)" www3
step ka3 3
held ka3 3 >/dev/null
expect "...the connection from two generations back: www" "$(held_body ka3 3)" www
wait "$KA3" # its connection closed: the first generation can go
# the first generation is gone with its last connection: a root descriptor may come back
# under the same number for the next one; what was cached under it must not be served
for r in www www2 www3 www; do
    RC_WORKERS=1 RC_ROOT=$T/$r rconf
    hup_ok "one worker: root $r"
    expect "...served from $r" "$(which)" "$r"
done
# an operator deploying by renaming directories, then SIGHUP
mkdir -p "$T/deploy.new"
printf 'deploy 2\n' >"$T/deploy.new/which.txt"
mkdir -p "$T/deploy"
printf 'deploy 1\n' >"$T/deploy/which.txt"
RC_WORKERS=1 RC_ROOT=$T/deploy rconf
hup_ok "one worker: root deploy"
expect "...deploy 1" "$(which)" "deploy 1"
hold h1 ka4 localhost /which.txt /which.txt
held ka4 1 >/dev/null
mv "$T/deploy" "$T/deploy.old"
mv "$T/deploy.new" "$T/deploy"
expect "renamed without a reload: the old directory still serves (its root is held open)" "$(which)" "deploy 1"
hup_ok "one worker: the same root path, now another directory"
expect "...new connections: the new directory" "$(which)" "deploy 2"
step ka4 2
held ka4 2 >/dev/null
expect "...the connection opened before: the old one" "$(held_body ka4 2)" "deploy 1"
stop_server
check_server_log
ALLOWED_ERRORS='reload failed: ' start_reload_server || exit 1
CUR_OU=gen2

###################################################################### listeners
P2=$(pick_port)
P4=$(pick_port)
# a client loop on the unchanged address while listeners come and go: never refused
rm -f "$T/loop.stop" "$T/loop.out"
(
    for _ in $(seq 1 200); do
        [ -f "$T/loop.stop" ] && break
        probe resume --count 20 --mech tls13 --timeout-ms $((5000 * MULT))
    done >"$T/loop.out" 2>"$T/loop.err"
) &
LOOP=$!
PIDS+=("$LOOP")
RC_LISTEN="[\"127.0.0.1:$PORT\", {\"address\": \"127.0.0.1:$P2\", \"proxy_protocol\": true}]" \
    RC_TOP="\"http_redirect\": { \"listen\": \"127.0.0.1:$P4\" }," rconf
hup_ok "a listener (PROXY protocol) and an http_redirect listener added"
pp_curl() { curl -sS --http1.1 --max-time $((20 * MULT)) --cacert "$CERTS/ca.crt" --resolve "localhost:$P2:127.0.0.1" "$@"; }
expect "the new listener serves, with the PROXY protocol" "$(pp_curl --haproxy-protocol "https://localhost:$P2/hello.txt")" hello
expect "...a client without the PROXY header is not served" "$(pp_curl "https://localhost:$P2/hello.txt" 2>/dev/null)" ""
expect "the redirect listener answers 301" "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$P4/x")" 301
RC_LISTEN="[\"127.0.0.1:$PORT\", \"127.0.0.1:$P2\"]" RC_TOP="\"http_redirect\": { \"listen\": \"127.0.0.1:$P4\" }," rconf
hup_ok "proxy_protocol turned off on the added listener"
expect "...a client without the PROXY header is served" "$(pp_curl "https://localhost:$P2/hello.txt")" hello
HOLD_PORT=$P2 hold h1 onp2 localhost /hello.txt /hello.txt
expect "a connection accepted on the second listener" "$(held onp2 1)" "1 200 6"
rconf
hup_ok "both added listeners removed"
check "the removed listener refuses connections" sh -c "! (exec 3<>/dev/tcp/127.0.0.1/$P2) 2>/dev/null"
check "the removed redirect listener refuses connections" sh -c "! (exec 3<>/dev/tcp/127.0.0.1/$P4) 2>/dev/null"
step onp2 2
expect "...the connection it had accepted finishes its requests" "$(held onp2 2)" "2 200 6"
RC_LISTEN="[\"127.0.0.1:$PORT\", \"127.0.0.1:$P2\"]" rconf
hup_ok "the listener added again"
expect "...it serves again" "$(pp_curl "https://localhost:$P2/hello.txt")" hello
rconf
hup_ok "and removed again"
touch "$T/loop.stop"
wait "$LOOP"
RUNS=$(grep -c 'mode=resume' "$T/loop.out")
SERVED=$(awk '{for (i = 1; i <= NF; i++) if ($i ~ /^ok=/) s += substr($i, 4)} END {print s + 0}' "$T/loop.out")
expect "the unchanged listener refused no connection during $((G - 1)) reloads ($RUNS runs of 20)" "$SERVED" $((RUNS * 20))
stop_server
check_server_log

###################################################################### resumption across reloads
# sess MECH NAME: a new session, saved as $T/NAME.pem; resumes MECH NAME: 1 if it resumes
sess() { probe resume --count 1 --mech "$1" --sess-out "$T/$2.pem" >/dev/null; }
resumes() { kv "$(probe resume --count 1 --mech "$1" --sess-in "$T/$2.pem" --sess-out "$T/$2.next.pem")" first_resumed; }
MECHS="tls13 tls12-ticket tls12-id"
# resume_all WHAT EXPECTED: every mechanism's session taken before resumes (1) or not (0)
resume_all() {
    local m
    for m in $MECHS; do expect "$m: $1" "$(resumes "$m" "s-$m")" "$2"; done
}
take_all() { local m; for m in $MECHS; do sess "$m" "s-$m"; done; }
# the client CA file and CRL as an operator keeps them, changed in place
cp "$CERTS/ca.crt" "$LIVE/client-ca.pem"
cp "$CERTS/ca.crl" "$LIVE/client.crl"
mkdir -p "$T/cacopy"
cp -r "$CERTS/ca.crt" "$CERTS/ca.key" "$CERTS/ca.db" "$T/cacopy/"
(cd "$T/cacopy" && openssl ca -batch -config ca.db/ca.cnf -revoke "$CERTS/client.crt" >/dev/null 2>&1 &&
    openssl ca -batch -config ca.db/ca.cnf -gencrl -out crl2.pem >/dev/null 2>&1)
check "a second CRL was made" test -s "$T/cacopy/crl2.pem"

resumption_server() { # TLS_EXTRA common to every configuration of this server
    BASE_TLS=$1
    install gen1
    RC_TLS=$BASE_TLS start_reload_server || return 1
}
for tickets in true false; do
    if [ $tickets = false ]; then MECHS="tls13 tls12-id"; fi
    echo "# session_tickets $tickets: $MECHS"
    resumption_server ", \"session_tickets\": $tickets" || exit 1
    take_all
    resume_all "tickets $tickets: resumes before any reload (the client works)" 1
    hup_ok "tickets $tickets: unchanged"
    resume_all "tickets $tickets: a session from before an unchanged reload resumes" 1
    install gen3
    hup_ok "tickets $tickets: certificate renewed (new key)"
    expect "...the renewed certificate is served" "$(served_ou)" gen3
    resume_all "tickets $tickets: a session from before a renewal resumes" 1
    CA_TLS="$BASE_TLS, \"client_auth\": \"optional\", \"client_ca\": \"$LIVE/client-ca.pem\""
    RC_TLS=$CA_TLS rconf
    hup_ok "tickets $tickets: client_auth none -> optional"
    resume_all "tickets $tickets: a session from before client_auth changed does not resume" 0
    take_all
    resume_all "tickets $tickets: ...a session made after it resumes" 1
    cp "$LIVE/client-ca.pem" "$LIVE/client-ca-moved.pem"
    RC_TLS="$BASE_TLS, \"client_auth\": \"optional\", \"client_ca\": \"$LIVE/client-ca-moved.pem\"" rconf
    hup_ok "tickets $tickets: client CA file moved, same contents"
    resume_all "tickets $tickets: a session from before the CA file moved resumes (same policy)" 1
    RC_TLS=$CA_TLS rconf
    hup_ok "tickets $tickets: client CA file back"
    take_all
    cat "$CERTS/ca.crt" "$CERTS/other-ca.crt" >"$LIVE/client-ca.pem"
    hup_ok "tickets $tickets: client CA file's contents changed (same path)"
    resume_all "tickets $tickets: a session from before the CA file changed does not resume" 0
    take_all
    install gen2
    hup_ok "tickets $tickets: certificate renewed under client_auth optional"
    resume_all "tickets $tickets: a session from before that renewal resumes (same policy)" 1
    take_all
    RC_TLS="$CA_TLS, \"client_crl\": \"$LIVE/client.crl\"" rconf
    hup_ok "tickets $tickets: a CRL added"
    resume_all "tickets $tickets: a session from before the CRL was added does not resume" 0
    take_all
    cp "$T/cacopy/crl2.pem" "$LIVE/client.crl"
    hup_ok "tickets $tickets: the CRL's contents changed"
    resume_all "tickets $tickets: a session from before the CRL changed does not resume" 0
    take_all
    RC_TLS="$CA_TLS, \"client_crl\": \"$LIVE/client.crl\", \"verify_depth\": 4" rconf
    hup_ok "tickets $tickets: verify_depth 3 -> 4"
    resume_all "tickets $tickets: a session from before verify_depth changed does not resume" 0
    cp "$CERTS/ca.crt" "$LIVE/client-ca.pem"
    cp "$CERTS/ca.crl" "$LIVE/client.crl"
    stop_server
    check_server_log
done
MECHS="tls13 tls12-ticket tls12-id"

###################################################################### ticket keys from a file
keyname() {
    openssl sess_id -in "$1" -noout -text |
        sed -n '/TLS session ticket:$/{n;s/^ *0000 - //;s/   .*//;p;q}' | tr -d ' -'
}
keyfile_name() { head -c 16 "$1" | od -An -tx1 | tr -d ' \n'; }
tk() { tcurl "$BASE/status" | jq -r ".tls.ticket_keys.$1"; }
head -c 80 /dev/urandom >"$T/k1.key"
head -c 80 /dev/urandom >"$T/k2.key"
cp "$T/k1.key" "$LIVE/tickets.key"
RC_TLS=", \"ticket_key_file\": \"$LIVE/tickets.key\"" ALLOWED_ERRORS='reload failed: ' start_reload_server || exit 1
sess tls12-ticket a12
sess tls13 a13
cp "$T/a12.pem" "$T/old12.pem"
cp "$T/a13.pem" "$T/old13.pem"
expect "a TLS 1.2 ticket under the file's key" "$(keyname "$T/a12.pem")" "$(keyfile_name "$T/k1.key")"
cat "$T/k2.key" "$T/k1.key" >"$LIVE/tickets.key.new"
mv "$LIVE/tickets.key.new" "$LIVE/tickets.key"
hup_ok "a new key prepended to tls.ticket_key_file"
expect "status: two keys" "$(tk keys)" 2
sess tls12-ticket b12
expect "a new TLS 1.2 ticket carries the new key's name" "$(keyname "$T/b12.pem")" "$(keyfile_name "$T/k2.key")"
sess tls13 b13
expect "...a new TLS 1.3 ticket too" "$(keyname "$T/b13.pem")" "$(keyfile_name "$T/k2.key")"
expect "a TLS 1.2 ticket under the old key resumes" "$(resumes tls12-ticket a12)" 1
expect "...and is renewed under the new key" "$(keyname "$T/a12.next.pem")" "$(keyfile_name "$T/k2.key")"
expect "a TLS 1.3 ticket under the old key resumes" "$(resumes tls13 a13)" 1
sess tls12-ticket a12
head -c 79 /dev/urandom >"$LIVE/tickets.key"
hup_fail "a key file of 79 bytes" 'tls\.ticket_key_file'
expect "...status: last_error names it" "$(rstat last_error | grep -c 'tls.ticket_key_file')" 1
expect "...still two keys" "$(tk keys)" 2
expect "...tickets still resume" "$(resumes tls12-ticket a12)" 1
sess tls12-ticket c12
expect "...new tickets still under the new key" "$(keyname "$T/c12.pem")" "$(keyfile_name "$T/k2.key")"
rm -f "$LIVE/tickets.key"
hup_fail "the key file gone" 'tls\.ticket_key_file'
# the old key removed: its tickets no longer resume
cp "$T/k2.key" "$LIVE/tickets.key"
hup_ok "the old key removed from the file"
expect "status: one key" "$(tk keys)" 1
expect "a TLS 1.2 ticket under the removed key does not resume" "$(resumes tls12-ticket old12)" 0
expect "...nor a TLS 1.3 one" "$(resumes tls13 old13)" 0
sess tls12-ticket d12
expect "a ticket under the remaining key resumes" "$(resumes tls12-ticket d12)" 1
rconf_nokey() { RC_TLS='' rconf; }
rconf_nokey
hup_ok "tls.ticket_key_file removed from the configuration"
expect_match "...[warn] names tls.ticket_key_file" "$(cat "$T/error.log")" '\[warn\] reload: tls\.ticket_key_file changed: applies at restart'
expect "...keys still from the file" "$(tk source)" file
expect "...tickets under it still resume" "$(resumes tls12-ticket d12)" 1
stop_server
check_server_log

###################################################################### OCSP responses are re-read
EXPD=$(date -u -d '+2 days' +%y%m%d%H%M%SZ)
ocsp_for() { # NAME OUT DAYS: a "good" response for $PKI/NAME.crt signed by the suite's CA
    printf 'V\t%s\t\t%s\tunknown\t/CN=localhost\n' "$EXPD" "$(cert_serial "$PKI/$1.crt")" >"$PKI/$1.idx"
    openssl ocsp -index "$PKI/$1.idx" -rsigner "$CERTS/ca.crt" -rkey "$CERTS/ca.key" -CA "$CERTS/ca.crt" \
        -issuer "$CERTS/ca.crt" -cert "$PKI/$1.crt" -no_nonce -respout "$2" -ndays "$3" >/dev/null 2>&1
}
# next_update: the stapled response's nextUpdate, as a new connection gets it (none: no staple)
next_update() {
    local n
    n=$(timeout $((15 * MULT)) openssl s_client -connect "127.0.0.1:$PORT" -servername localhost -status \
        </dev/null 2>&1 | sed -n 's/^ *Next Update: //p' | head -1)
    echo "${n:-none}"
}
# OCSP wants the issuer after the leaf in the certificate file
for n in gen1 gen3; do
    cat "$PKI/$n.crt" "$CERTS/ca.crt" >"$PKI/$n-chain.crt"
    cp "$PKI/$n.key" "$PKI/$n-chain.key"
done
install gen1-chain
ocsp_for gen1 "$LIVE/server.ocsp" 1
RC_TLS=", \"ocsp_response\": \"$LIVE/server.ocsp\"" ALLOWED_ERRORS='reload failed: ' start_reload_server || exit 1
N1=$(next_update)
check "a response is stapled ($N1)" test "$N1" != none
ocsp_for gen1 "$LIVE/server.ocsp.new" 3
mv "$LIVE/server.ocsp.new" "$LIVE/server.ocsp"
hup_ok "a fresh OCSP response"
N2=$(next_update)
if [ "$N2" != none ] && [ "$N2" != "$N1" ]; then ok "...new connections get it ($N2)"; else
    not_ok "...new connections get '$N2' (before: '$N1')"; fi
install gen3-chain
hup_fail "a renewed certificate with the old certificate's OCSP response" 'ocsp_response'
expect "...the old certificate is still served" "$(served_ou)" gen1
expect "...with its response" "$(next_update)" "$N2"
ocsp_for gen3 "$LIVE/server.ocsp" 1
hup_ok "the renewed certificate with its own response"
expect "...served" "$(served_ou)" gen3
N3=$(next_update)
if [ "$N3" != none ] && [ "$N3" != "$N2" ]; then ok "...with its own response stapled ($N3)"; else
    not_ok "...stapled: '$N3' (the old certificate's: '$N2')"; fi
stop_server
check_server_log

###################################################################### socket activation: listeners stay
cat >"$T/activate.py" <<'PY'
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
os.execve(sys.argv[2], sys.argv[2:], env)
PY
PORT=$(pick_port)
P2=$(pick_port)
install gen1
rconf
spawn_server python3 "$T/activate.py" "$PORT" "$TS_BIN" --config "$RC" || exit 1
G=1
# the port accepts from the moment the wrapper binds it: wait for tessera itself, which
# would otherwise read the configuration written next as its first
check "the activated server is up" wait_until 10 grep -q 'listening on 1 socket from socket activation' "$T/error.log"
RC_LISTEN="[\"127.0.0.1:$PORT\", \"127.0.0.1:$P2\"]" RC_ROOT=$T/www2 rconf
hup_ok "socket activation: a listen address added"
expect_match "...a warning at the reload says the listeners do not change" \
    "$(sed -n '/SIGHUP received/,$p' "$T/error.log" | grep '\[warn\]')" 'reload: listen.*(restart|socket activation)'
check "...the added address is not bound" sh -c "! (exec 3<>/dev/tcp/127.0.0.1/$P2) 2>/dev/null"
expect "...the inherited socket serves, with the new root" "$(tcurl "$BASE/which.txt")" www2
stop_server
check_server_log

###################################################################### systemd notify around a reload
cat >"$T/notify.py" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
open(sys.argv[2] + ".bound", "w").close()
s.settimeout(1)
end = time.time() + float(sys.argv[3])
with open(sys.argv[2], "a") as f:
    while time.time() < end:
        try:
            msg = s.recv(4096)
        except socket.timeout:
            continue
        # our own CLOCK_MONOTONIC at receipt, in microseconds, to compare MONOTONIC_USEC with
        f.write(msg.decode().replace("\n", "|") + "|RECEIVED_USEC=%d\n" % (time.monotonic_ns() // 1000))
        f.flush()
PY
timeout $((150 * MULT)) python3 "$T/notify.py" "$T/notify.sock" "$T/notify.log" $((120 * MULT)) &
PIDS+=("$!")
wait_until 10 test -f "$T/notify.log.bound"
PORT=$(pick_port)
install gen1
rconf
ALLOWED_ERRORS='reload failed: ' spawn_server env NOTIFY_SOCKET="$T/notify.sock" "$TS_BIN" --config "$RC" || exit 1
G=1
wait_until 10 grep -q 'READY=1' "$T/notify.log"
hup_ok "under NOTIFY_SOCKET"
readies() { grep -c 'READY=1' "$T/notify.log"; }
wait_until 10 more_than readies 1
N=$(cat "$T/notify.log")
echo "$N" | sed 's/^/# notify: /'
R=$(grep -n 'RELOADING=1' <<<"$N" | head -1)
expect_match "RELOADING=1 and MONOTONIC_USEC in one message" "$R" 'MONOTONIC_USEC=[0-9]+'
if [ -n "$R" ]; then
    mono=$(sed -n 's/.*MONOTONIC_USEC=\([0-9]*\).*/\1/p' <<<"$R")
    recv=$(sed -n 's/.*RECEIVED_USEC=\([0-9]*\).*/\1/p' <<<"$R")
    if [ -n "$mono" ] && [ "$mono" -le "$recv" ] && [ $((recv - mono)) -lt $((10000000 * MULT)) ]; then
        ok "...MONOTONIC_USEC is CLOCK_MONOTONIC, just before receipt ($((recv - mono)) us)"
    else not_ok "...MONOTONIC_USEC $mono, received at $recv (CLOCK_MONOTONIC)"; fi
    after=$(tail -n +"${R%%:*}" <<<"$N" | grep -c 'READY=1')
    expect "...then READY=1" "$after" 1
    expect_match "...with a STATUS line" "$(tail -n +"${R%%:*}" <<<"$N" | grep 'READY=1')" 'STATUS='
fi
rconf
sed -i '$d' "$RC"
hup_fail "broken configuration under NOTIFY_SOCKET" 'reload\.json'
wait_until 10 more_than readies 2
expect "a failed reload: RELOADING=1 then READY=1 too" \
    "$(grep -c 'RELOADING=1' "$T/notify.log") $(grep -c 'READY=1' "$T/notify.log")" "2 3"
expect_match "...the last message is READY=1" "$(tail -1 "$T/notify.log")" 'READY=1'
stop_server
check_server_log
exit $((FAILS > 0))
