#!/usr/bin/env bash
# Several sites on one server: SNI picks the site (exact name, then wildcard, then the default
# site), each site has its own root, certificates, error pages, locations and client-auth
# policy; a request naming another site than its connection's gets 421; a session made on one
# site never resumes on another (TLS 1.3 tickets, TLS 1.2 tickets, TLS 1.2 session IDs).
. "$(dirname "$0")/lib.sh"
make_site
printf 'default same\n' >"$T/www/same.txt"

### certificates: a root, an intermediate, and leaves (ECDSA and RSA)
C=$T/pki
mkdir -p "$C"
serial() { echo "0x$(openssl rand -hex 8)"; }
newkey() { # file ec|rsa
    if [ "$2" = rsa ]; then openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null
    else openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; fi
}
newkey "$C/root.key" ec
openssl req -x509 -new -key "$C/root.key" -out "$C/root.crt" -days 2 -subj "/CN=Sites Test Root" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
newkey "$C/inter.key" ec
openssl req -new -key "$C/inter.key" -out "$C/inter.csr" -subj "/CN=Sites Test Intermediate" 2>/dev/null
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' >"$C/ca.ext"
openssl x509 -req -in "$C/inter.csr" -CA "$C/root.crt" -CAkey "$C/root.key" -set_serial "$(serial)" \
    -days 2 -extfile "$C/ca.ext" -out "$C/inter.crt" 2>/dev/null
leaf() { # name keytype issuer SAN-list
    newkey "$C/$1.key" "$2"
    openssl req -new -key "$C/$1.key" -out "$C/$1.csr" -subj "/CN=$1" 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$4" >"$C/$1.ext"
    openssl x509 -req -in "$C/$1.csr" -CA "$C/$3.crt" -CAkey "$C/$3.key" -set_serial "$(serial)" \
        -days 2 -extfile "$C/$1.ext" -out "$C/$1.crt" 2>/dev/null
}
leaf alpha-ec ec root "DNS:alpha.test,DNS:www.alpha.test"
leaf alpha-rsa rsa root "DNS:alpha.test,DNS:www.alpha.test"
leaf beta ec inter "DNS:*.beta.test"
cat "$C/beta.crt" "$C/inter.crt" >"$C/beta-chain.crt" # leaf first, then the intermediate
leaf secure ec root "DNS:secure.test"
leaf other ec root "DNS:other.test"
leaf alpha-ec2 ec root "DNS:alpha.test"
check "the test certificates were made" test -s "$C/beta-chain.crt" -a -s "$C/alpha-rsa.crt" -a -s "$C/secure.crt"

### three roots, each with a file of the same name
for s in alpha beta secure; do
    mkdir -p "$T/$s/private" "$T/$s/errors"
    printf '%s home\n' "$s" >"$T/$s/index.html"
    printf '%s same\n' "$s" >"$T/$s/same.txt"
    printf '%s private\n' "$s" >"$T/$s/private/p.txt"
done
printf '<p>alpha has no such page</p>\n' >"$T/alpha/errors/404.html"
# a listed directory of the same name in alpha's root and the default site's
mkdir -p "$T/alpha/list" "$T/www/list"
printf 'a\n' >"$T/alpha/list/alpha-listed.txt"
printf 'd\n' >"$T/www/list/default-unlisted.txt"

# sites_config FILE [TLS_EXTRA] [TOP_EXTRA] [SITES]: the three sites behind a default site
sites_json() {
    cat <<JSON
[
  { "server_names": ["alpha.test", "www.alpha.test"], "root": "$T/alpha",
    "certificates": [ { "certificate": "$C/alpha-ec.crt", "key": "$C/alpha-ec.key" },
                      { "certificate": "$C/alpha-rsa.crt", "key": "$C/alpha-rsa.key" } ],
    "error_pages": { "404": "/errors/404.html" }, "cache_control": "max-age=7",
    "locations": [ { "path": "/list/", "autoindex": true } ] },
  { "server_names": ["*.beta.test"], "root": "$T/beta",
    "certificates": [ { "certificate": "$C/beta-chain.crt", "key": "$C/beta.key" } ],
    "client_auth": "optional", "client_ca": "$CERTS/ca.crt",
    "locations": [ { "path": "/private/", "require_client_cert": true } ] },
  { "server_names": ["secure.test"], "root": "$T/secure",
    "certificates": [ { "certificate": "$C/secure.crt", "key": "$C/secure.key" } ],
    "client_auth": "required", "client_ca": "$CERTS/ca.crt" }
]
JSON
}
sites_config() {
    cat >"$1" <<JSON
{
    ${3:-}
    "listen": "127.0.0.1:$PORT",
    "root": "$T/www",
    "workers": 2,
    "tls": { "certificate": "$CERTS/server.crt", "key": "$CERTS/server.key" ${2:-} },
    "sites": ${4:-$(sites_json)},
    "timeouts": { "shutdown_s": 1 },
    "log": { "access": "$T/access.log", "format": "json", "error": "-", "level": "info" }
}
JSON
}
start_sites() { # [TLS_EXTRA] [TOP_EXTRA]
    PORT=$(pick_port) || return 1
    sites_config "$T/sites.json" "${1:-}" "${2:-}"
    spawn_server "$TS_BIN" --config "$T/sites.json"
}

# sc NAME|- [OPENSSL ARGS...] <<< request: s_client with SNI NAME (- for none); prints all
sc() {
    local name=$1
    shift
    local sni=(-servername "$name")
    [ "$name" = - ] && sni=(-noservername)
    timeout $((15 * MULT)) openssl s_client -connect "127.0.0.1:$PORT" "${sni[@]}" \
        -CAfile "$C/root.crt" -ign_eof "$@" 2>&1
}
req() { printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$2" "$1"; }
# scurl NAME [CURL ARGS...] URL-PATH: curl to https://NAME:PORT/... resolved to the server
scurl() {
    local name=$1
    shift
    curl -sS --http1.1 --max-time $((20 * MULT)) --cacert "$C/root.crt" \
        --resolve "$name:$PORT:127.0.0.1" "${@:1:$#-1}" "https://$name:$PORT${*: -1}"
}
code() { # NAME [CURL ARGS...] PATH: the status code (000: no response)
    local name=$1
    shift
    scurl "$name" -o /dev/null -w '%{http_code}' "$@"
}

PORT=0
sites_config "$T/check.json"
OUT=$(oneshot "$TS_BIN" --check-config --config "$T/check.json")
expect "the configuration with three sites is valid" "$?" 0
expect_no_match "...with no warning (every certificate covers its names)" "$OUT" "covers none"

start_sites || exit 1

### SNI selects the site
expect "alpha.test: its own root" "$(scurl alpha.test /)" "alpha home"
expect "www.alpha.test: the same site" "$(scurl www.alpha.test /)" "alpha home"
expect "x.beta.test (wildcard) verifies with the root alone through the served intermediate" \
    "$(scurl x.beta.test /)" "beta home"
expect "secure.test with a client certificate" \
    "$(scurl secure.test --cert "$CERTS/client.crt" --key "$CERTS/client.key" /)" "secure home"
expect "secure.test without one: the handshake fails" "$(code secure.test /)" "000"
expect "a.b.beta.test: a wildcard stands for one label only (default site)" \
    "$(scurl a.b.beta.test -k /same.txt)" "default same"
expect "beta.test: not covered by *.beta.test (default site)" "$(scurl beta.test -k /same.txt)" "default same"
expect "an unknown name: the default site" "$(scurl unknown.test -k /same.txt)" "default same"
R=$(req ALPHA.TEST /same.txt | sc ALPHA.Test.)
expect_match "SNI is matched case-insensitively and without its trailing dot" "$R" "alpha same"
R=$(req 127.0.0.1 /same.txt | sc -)
expect_match "no SNI: the default site's certificate" "$R" "subject=CN = localhost"
expect_match "...and its pages" "$R" "default same"
R=$(sc x.beta.test -showcerts </dev/null)
expect "the chain is served as the file gives it (leaf, intermediate)" \
    "$(grep -c 'BEGIN CERTIFICATE' <<<"$R")" 2
expect_match "...and verifies against the root" "$R" "Verify return code: 0 \(ok\)"

### ECDSA and RSA certificates on one site: OpenSSL picks by the client's signature algorithms
R=$(sc alpha.test -sigalgs "RSA-PSS+SHA256:rsa_pkcs1_sha256" </dev/null)
expect_match "a client accepting RSA signatures only gets the RSA certificate" "$R" "Server public key is 2048 bit"
R=$(sc alpha.test -sigalgs "ECDSA+SHA256" </dev/null)
expect_match "a client accepting ECDSA gets the ECDSA certificate" "$R" "Server public key is 256 bit"
R=$(sc alpha.test -tls1_2 -sigalgs "RSA-PSS+SHA256:rsa_pkcs1_sha256" </dev/null)
expect_match "...also in TLS 1.2" "$R" "Server public key is 2048 bit"

R=$(req alpha.test / | sc alpha.test -tls1_3 -groups P-384:P-256)
expect_match "a second ClientHello (HelloRetryRequest) keeps the site" "$R" "alpha home"

### a malformed server_name extension is refused (decode_error), whatever its lengths say
cat >"$T/hello.py" <<'PY'
import os, socket, struct, sys
port, mode = int(sys.argv[1]), sys.argv[2]
def ext(t, data): return struct.pack(">HH", t, len(data)) + data
name = b"alpha.test"
if mode == "entry-too-long":   # the name's length runs past the list
    sni = struct.pack(">H", len(name) + 3) + b"\x00" + struct.pack(">H", len(name) + 40) + name
elif mode == "list-too-long":  # the list's length runs past the extension
    sni = struct.pack(">H", len(name) + 10) + b"\x00" + struct.pack(">H", len(name)) + name
elif mode == "nul":            # a NUL inside the name
    n = b"x.beta.test\x00.alpha.test"
    sni = struct.pack(">H", len(n) + 3) + b"\x00" + struct.pack(">H", len(n)) + n
else:                          # a well-formed one, for comparison
    sni = struct.pack(">H", len(name) + 3) + b"\x00" + struct.pack(">H", len(name)) + name
exts = ext(0, sni) + ext(10, b"\x00\x04\x00\x1d\x00\x17") + ext(11, b"\x01\x00") + \
    ext(13, b"\x00\x04\x04\x03\x08\x04")
body = b"\x03\x03" + os.urandom(32) + b"\x00" + b"\x00\x04\xc0\x2b\xc0\x2f" + b"\x01\x00" + \
    struct.pack(">H", len(exts)) + exts
hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs)
data = b""
try:
    while len(data) < 7:
        d = s.recv(4096)
        if not d: break
        data += d
except OSError:
    pass
print("alert=%d" % data[6] if len(data) >= 7 and data[0] == 0x15 else
      "handshake" if data[:1] == b"\x16" else "nothing")
PY
for m in entry-too-long list-too-long nul; do
    expect "SNI $m: decode_error alert" "$(timeout $((20 * MULT)) python3 "$T/hello.py" "$PORT" "$m")" "alert=50"
done
expect "a well-formed SNI in the same hello: the handshake goes on" \
    "$(timeout $((20 * MULT)) python3 "$T/hello.py" "$PORT" ok)" "handshake"

### the file cache keeps the roots apart (the same path in each)
for i in 1 2; do
    expect "alpha's same.txt ($i)" "$(scurl alpha.test /same.txt)" "alpha same"
    expect "beta's same.txt ($i)" "$(scurl x.beta.test /same.txt)" "beta same"
    expect "the default site's same.txt ($i)" "$(scurl localhost --cacert "$CERTS/ca.crt" /same.txt)" "default same"
done

### per-site error pages, headers, locations
expect_match "alpha's own 404 page" "$(scurl alpha.test /nope)" "alpha has no such page"
expect_no_match "...not beta's" "$(scurl x.beta.test /nope)" "alpha has no such page"
expect_match "alpha's cache_control" "$(scurl alpha.test -D - -o /dev/null /same.txt)" "Cache-Control: max-age=7"
expect_no_match "...not the default site's" "$(scurl localhost --cacert "$CERTS/ca.crt" -D - -o /dev/null /same.txt)" "Cache-Control"
expect "beta's location needs a client certificate" "$(code x.beta.test /private/p.txt)" 403
expect_match "...and says why on its 403 page" "$(scurl x.beta.test -H 'Accept: text/html' /private/p.txt)" "certificate"
expect "...which opens it" "$(scurl x.beta.test --cert "$CERTS/client.crt" --key "$CERTS/client.key" /private/p.txt)" "beta private"
R=$(scurl alpha.test /list/)
expect_match "alpha's autoindex lists alpha's directory" "$R" "alpha-listed.txt"
expect_no_match "...not the default site's of the same name" "$R" "default-unlisted"
expect "alpha has no such location" "$(scurl alpha.test /private/p.txt)" "alpha private"

### 421: the request names another site than the connection's
expect "Host of the same site (alias): served" "$(code alpha.test -H 'Host: www.alpha.test' /)" 200
expect "Host in capitals with a port: served" "$(code alpha.test -H "Host: WWW.ALPHA.TEST:$PORT" /)" 200
expect "Host of another site: 421" "$(code alpha.test -H 'Host: x.beta.test' /)" 421
expect "Host of the client-certificate site on a connection made without one: 421" \
    "$(code alpha.test -H 'Host: secure.test' /)" 421
expect "...also for its private location" "$(code alpha.test -H 'Host: secure.test' /private/p.txt)" 421
expect "Host of a named site on the default site's connection: 421" \
    "$(code localhost --cacert "$CERTS/ca.crt" -H 'Host: alpha.test' /)" 421
expect "a Host no site claims on the default site's connection: served" \
    "$(code localhost --cacert "$CERTS/ca.crt" -H 'Host: nowhere.test' /)" 200
expect "a Host no site claims on a named site's connection: 421" \
    "$(code alpha.test -H 'Host: nowhere.test' /)" 421
R=$(req secure.test /same.txt | sc -)
expect_match "no SNI, Host of the client-certificate site: 421" "$R" "HTTP/1.1 421 Misdirected Request"
expect_no_match "...nothing of it served" "$R" "secure same"
for h in secure.test. SECURE.TEST:443 alpha.test@secure.test "[::1]" ""; do
    R=$(req "$h" /same.txt | sc secure.test -cert "$CERTS/client.crt" -key "$CERTS/client.key")
    case "$h" in # the names of secure itself, or none: served from secure
    secure.test. | SECURE.TEST:443 | "") expect_match "SNI secure, Host '$h': served" "$R" "secure same" ;;
    *) expect_match "SNI secure, Host '$h' (no site): 421" "$R" "HTTP/1.1 421" ;;
    esac
    R=$(req "$h" /same.txt | sc alpha.test)
    expect_no_match "SNI alpha, Host '$h': never secure's file" "$R" "secure same"
done
R=$(printf 'GET https://secure.test/same.txt HTTP/1.1\r\nHost: alpha.test\r\nConnection: close\r\n\r\n' | sc alpha.test)
expect_no_match "absolute-form naming secure on alpha's connection: not secure's file" "$R" "secure same"
expect_match "...but 421: the target's authority replaces Host" "$R" "HTTP/1.1 421"
R=$(printf 'GET https://user@secure.test:443/same.txt HTTP/1.1\r\nHost: alpha.test\r\nConnection: close\r\n\r\n' | sc alpha.test)
expect_match "...with userinfo and a port too" "$R" "HTTP/1.1 421"
R=$(printf 'GET https://alpha.test/same.txt HTTP/1.1\r\nHost: secure.test\r\nConnection: close\r\n\r\n' | sc alpha.test)
expect_match "absolute-form naming alpha on alpha's connection, Host secure: served (the target wins)" "$R" "alpha same"
for n in beta.test x.y.beta.test .beta.test; do
    R=$(req "$n" /same.txt | sc "$n")
    expect_match "SNI $n is no name of *.beta.test: the default site" "$R" "default same"
done
expect_match "SNI X.BETA.TEST. (capitals, trailing dot): beta" "$(req x.beta.test /same.txt | sc X.BETA.TEST.)" "beta same"
R=$(req x.beta.test /same.txt | sc ALPHA.TEST)
expect_match "SNI alpha, Host beta over raw HTTP/1.1: 421" "$R" "HTTP/1.1 421"
# HTTP/2: curl sends a custom Host as :authority
h2code() { scurl "$1" --http2 -o /dev/null -w '%{http_version} %{http_code}' -H "Host: $2" /; }
expect "HTTP/2, :authority of the same site: served" "$(h2code alpha.test www.alpha.test)" "2 200"
expect "HTTP/2, :authority of another site: 421" "$(h2code alpha.test secure.test)" "2 421"
expect "HTTP/2 on the default site, :authority of a named site: 421" \
    "$(scurl localhost --cacert "$CERTS/ca.crt" --http2 -o /dev/null -w '%{http_version} %{http_code}' -H 'Host: x.beta.test' /)" "2 421"
R=$(timeout $((20 * MULT)) nghttp -v --no-verify-peer -H ":authority: secure.test" "https://alpha.test:$PORT/" \
    2>&1 </dev/null | grep -m1 ':status' || true)
if [ -n "$R" ]; then expect_match "nghttp with SNI alpha and :authority secure.test: 421" "$R" "421"; fi

### no resumption across sites, for each mechanism
resume_check() { # label proto-args...
    local label=$1
    shift
    req alpha.test / | sc alpha.test "$@" -sess_out "$T/sess.pem" >/dev/null
    local same other dflt
    same=$(req alpha.test / | sc alpha.test "$@" -sess_in "$T/sess.pem")
    req alpha.test / | sc alpha.test "$@" -sess_out "$T/sess.pem" >/dev/null
    other=$(req x.beta.test / | sc x.beta.test "$@" -sess_in "$T/sess.pem")
    req alpha.test / | sc alpha.test "$@" -sess_out "$T/sess.pem" >/dev/null
    dflt=$(req localhost / | sc localhost "$@" -sess_in "$T/sess.pem")
    expect_match "$label: resumes on the same site" "$same" "^Reused,"
    expect_match "$label: a session of alpha is not resumed on beta" "$other" "^New,"
    expect_match "$label: ...nor on the default site" "$dflt" "^New,"
    expect_match "$label: ...which serves its own pages" "$other" "beta home"
}
resume_check "TLS 1.3 ticket" -tls1_3
resume_check "TLS 1.2 ticket" -tls1_2
resume_check "TLS 1.2 session ID" -tls1_2 -no_ticket
# a session of the default site on the client-certificate site: a full handshake, which
# asks for the certificate
req localhost / | sc localhost -tls1_3 -sess_out "$T/sess.pem" >/dev/null
R=$(req secure.test / | sc secure.test -tls1_3 -sess_in "$T/sess.pem")
expect_no_match "a default-site session does not open secure.test" "$R" "secure home|^Reused"

# on its own site a session keeps the identity it was verified with
for p in -tls1_3 -tls1_2; do
    req secure.test /same.txt | sc secure.test $p -cert "$CERTS/client.crt" -key "$CERTS/client.key" \
        -sess_out "$T/sess.pem" >/dev/null
    R=$(req secure.test /same.txt | sc secure.test $p -sess_in "$T/sess.pem")
    expect_match "secure.test ($p): resumed without presenting the certificate again" "$R" "^Reused,"
    expect_match "...and served" "$R" "secure same"
done
wait_until 5 grep -q '"target":"/same.txt".*"user":"O=tessera,CN=alice"\|"user":"O=tessera,CN=alice".*"target":"/same.txt"' "$T/access.log"
expect_match "...with its client identity in the log" "$(grep '"site":"secure.test"' "$T/access.log" | grep '/same.txt' | tail -1)" '"user":"O=tessera,CN=alice"'

### logs and status
wait_until 5 grep -q '"site":"\*.beta.test"' "$T/access.log"
expect_match "the JSON access log names the site" "$(cat "$T/access.log")" '"site":"alpha.test"'
expect_match "...and the default site" "$(cat "$T/access.log")" '"site":"default"'
S=$(curl -sS --max-time $((20 * MULT)) --cacert "$CERTS/ca.crt" --resolve "localhost:$PORT:127.0.0.1" "https://localhost:$PORT/status")
expect "status lists the sites" "$(jq -r '[.sites[].name] | join(",")' <<<"$S")" "default,alpha.test,*.beta.test,secure.test"
A=$(jq -r '.sites[1].requests' <<<"$S")
if [ "${A:-0}" -ge 10 ] 2>/dev/null; then ok "alpha's requests are counted ($A)"; else not_ok "alpha's requests: $A"; fi
expect_match "alpha's handshakes are counted" "$(jq -r '.sites[1].handshakes' <<<"$S")" '^[1-9][0-9]*$'
expect_match "secure.test counts its verified client certificates" "$(jq -r '.sites[3].client_certs.verified' <<<"$S")" '^[1-9][0-9]*$'
expect_match "...its handshakes that failed for want of one" "$(jq -r '.sites[3].handshakes_failed' <<<"$S")" '^[1-9][0-9]*$'
expect_match "...counted as absent certificates" "$(jq -r '.sites[3].client_certs.absent' <<<"$S")" '^[1-9][0-9]*$'
expect "alpha asks for no certificate: nothing counted" "$(jq -r '.sites[1].client_certs | [.[]] | add' <<<"$S")" 0
M=$(curl -sS --max-time $((20 * MULT)) --cacert "$CERTS/ca.crt" --resolve "localhost:$PORT:127.0.0.1" "https://localhost:$PORT/metrics")
expect_match "metrics carry a site label" "$M" 'tessera_site_requests_total\{site="alpha.test"\} [1-9]'
stop_server
check_server_log

### tls.strict_sni: an unknown name gets the unrecognized_name alert
start_sites ', "strict_sni": true' '"server_names": ["localhost"],' || exit 1
R=$(req unknown.test / | sc unknown.test)
expect_match "strict_sni: an unknown name is refused with unrecognized_name" "$R" "unrecognized name"
expect_no_match "...and gets no page" "$R" "home"
R=$(req localhost /same.txt | sc localhost -CAfile "$CERTS/ca.crt")
expect_match "a name of the default site is served" "$R" "default same"
R=$(req 127.0.0.1 /same.txt | sc -)
expect_match "no SNI at all: the default site" "$R" "default same"
expect "a named site is served" "$(scurl x.beta.test /)" "beta home"
S=$(curl -sS --max-time $((20 * MULT)) --cacert "$CERTS/ca.crt" --resolve "localhost:$PORT:127.0.0.1" "https://localhost:$PORT/status")
expect "the refusal is counted" "$(jq -r '.tls.handshakes.failure_reasons.unrecognized_name' <<<"$S")" 1
stop_server
check_server_log

### configuration errors name the site and the key
bad() { # description regex sites-json
    sites_config "$T/bad.json" "" "" "$3"
    local out rc
    out=$(oneshot "$TS_BIN" --check-config --config "$T/bad.json")
    rc=$?
    expect "$1: refused" "$rc" 2
    expect_match "$1: the message names it" "$out" "$2"
}
S1='{ "server_names": ["alpha.test"], "root": "'$T/alpha'", "certificates": [ { "certificate": "'$C/alpha-ec.crt'", "key": "'$C/alpha-ec.key'" } ] }'
site() { # names cert key [extra]
    echo '{ "server_names": '"$1"', "root": "'$T/beta'", "certificates": [ { "certificate": "'"$2"'", "key": "'"$3"'" } ] '"${4:-}"' }'
}
bad "a name claimed by two sites" 'sites\[1\] \(www.alpha.test\)\.server_names: "alpha.test" is already a name of sites\[0\] \(alpha.test\)' \
    "[ $S1, $(site '["www.alpha.test", "ALPHA.test."]' "$C/other.crt" "$C/other.key") ]"
sites_config "$T/bad.json" "" '"server_names": ["localhost"],' "[ $(site '["localhost"]' "$C/other.crt" "$C/other.key") ]"
OUT=$(oneshot "$TS_BIN" --check-config --config "$T/bad.json")
expect_match "a name of the default site (top-level server_names) is refused" "$OUT" 'sites\[0\] \(localhost\)\.server_names: "localhost" is already a name of the default site'
bad "a key that does not match its certificate" 'sites\[0\] \(other.test\)\.certificates\[0\]\.key: .*(does not match|key values mismatch)' \
    "[ $(site '["other.test"]' "$C/other.crt" "$C/secure.key") ]"
bad "an RSA key for an ECDSA certificate" 'sites\[0\] \(other.test\)\.certificates\[0\]\.key' \
    "[ $(site '["other.test"]' "$C/other.crt" "$C/alpha-rsa.key") ]"
bad "two ECDSA certificates in one site" 'sites\[0\] \(alpha.test\)\.certificates\[1\]\.certificate: .*a second certificate with a' \
    '[ { "server_names": ["alpha.test"], "root": "'$T/alpha'", "certificates": [ { "certificate": "'$C/alpha-ec.crt'", "key": "'$C/alpha-ec.key'" }, { "certificate": "'$C/alpha-ec2.crt'", "key": "'$C/alpha-ec2.key'" } ] } ]'
for w in '*.*.x.test' 'a*.x.test' '*' '*.' 'x..test' 'bad name.test'; do
    bad "the name \"$w\"" 'sites\[0\] \(.*\)\.server_names\[0\]: not a host name' \
        "[ $(site "[\"$w\"]" "$C/other.crt" "$C/other.key") ]"
done
bad "a site without root" 'sites\[0\] \(other.test\)\.root: missing' \
    '[ { "server_names": ["other.test"], "certificates": [ { "certificate": "'$C/other.crt'", "key": "'$C/other.key'" } ] } ]'
bad "a site without certificates" 'sites\[0\] \(other.test\)\.certificates: missing' \
    '[ { "server_names": ["other.test"], "root": "'$T/beta'" } ]'
bad "an unknown site key" 'sites\[0\] \(other.test\)\.workers: unknown key' \
    "[ $(site '["other.test"]' "$C/other.crt" "$C/other.key" ', "workers": 2') ]"
bad "client_auth without client_ca" 'sites\[0\] \(other.test\)\.client_ca: required when sites\[0\] \(other.test\)\.client_auth is "required"' \
    "[ $(site '["other.test"]' "$C/other.crt" "$C/other.key" ', "client_auth": "required"') ]"
bad "a missing root" 'sites\[0\] \(other.test\)\.root: /nonexistent: No such file' \
    '[ { "server_names": ["other.test"], "root": "/nonexistent", "certificates": [ { "certificate": "'$C/other.crt'", "key": "'$C/other.key'" } ] } ]'
sites_config "$T/warn.json" "" "" "[ $(site '["nothing.test"]' "$C/other.crt" "$C/other.key") ]"
OUT=$(oneshot "$TS_BIN" --check-config --config "$T/warn.json")
expect "a certificate covering none of its site's names is accepted" "$?" 0
expect_match "...with a warning naming the site" "$OUT" 'sites\[0\] \(nothing.test\)\.certificates\[0\]\.certificate: the certificate covers none of the site.s names'
check_server_log
exit $((FAILS > 0))
