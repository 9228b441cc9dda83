#!/usr/bin/env bash
# The access log tells a verified client certificate from one whose issuer is unknown
# (tls.client_auth optional_no_ca): a self-signed "CN=alice" must not look like the real alice,
# in the combined format and in JSON, and a subject with spaces and quotes keeps the line whole.
. "$(dirname "$0")/lib.sh"
make_site
CA=$CERTS/ca.crt
TLS_EXTRA=", \"client_auth\": \"optional_no_ca\", \"client_ca\": \"$CA\""
# the real alice's subject, signed by nobody but herself
openssl req -new -x509 -key "$CERTS/client.key" -subj '/CN=alice/O=tessera' -days 2 \
    -out "$T/fake-alice.crt" 2>/dev/null
openssl req -new -x509 -key "$CERTS/client.key" -subj '/CN=alice "admin"/O=evil corp' -days 2 \
    -out "$T/spaced.crt" 2>/dev/null
requests() {
    tcurl --cert "$CERTS/client.crt" --key "$CERTS/client.key" -A real -o /dev/null "$BASE/hello.txt"
    tcurl --cert "$T/fake-alice.crt" --key "$CERTS/client.key" -A fake -o /dev/null "$BASE/hello.txt"
    tcurl --cert "$CERTS/client-other.crt" --key "$CERTS/client-other.key" -A other -o /dev/null "$BASE/hello.txt"
    tcurl --cert "$T/spaced.crt" --key "$CERTS/client.key" -A spaced -o /dev/null "$BASE/hello.txt"
    tcurl -A none -o /dev/null "$BASE/hello.txt"
    tcurl --cert "$CERTS/client-expired.crt" --key "$CERTS/client-expired.key" -A expired -o /dev/null "$BASE/hello.txt"
}
user_of() { grep "\"$1\"\$" "$T/access.log" | awk '{print $3}'; }

### combined
start_server || exit 1
requests
stop_server
expect "combined: six lines" "$(wc -l <"$T/access.log")" 6
expect "combined: a verified subject as it is" "$(user_of real)" "O=tessera,CN=alice"
expect "combined: a self-signed look-alike is marked unverified" "$(user_of fake)" "unverified:O=tessera,CN=alice"
expect "combined: an unknown CA's subject is marked unverified" "$(user_of other)" "unverified:O=elsewhere,CN=eve"
expect "combined: spaces and quotes in a subject are escaped" "$(user_of spaced)" 'unverified:O=evil\x20corp,CN=alice\x20\\\"admin\\\"'
expect "combined: no certificate -> -" "$(user_of none)" "-"
expect "combined: an expired certificate is no identity -> -" "$(user_of expired)" "-"
expect "combined: every line has the same 12 space-separated fields" "$(awk '{print NF}' "$T/access.log" | sort -u)" 12
check_server_log

### JSON
rm -f "$T/access.log"
LOG_EXTRA=', "format": "json"' start_server || exit 1
requests
stop_server
J=$(python3 -c '
import json, sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    print(d["user_agent"], d["user"], d.get("user_unverified", "<absent>"))
' "$T/access.log" 2>&1)
expect "JSON: verified, unverified and absent identities in separate fields" "$J" "real O=tessera,CN=alice <absent>
fake - O=tessera,CN=alice
other - O=elsewhere,CN=eve
spaced - O=evil corp,CN=alice \\\"admin\\\"
none - <absent>
expired - <absent>"
check_server_log
