#!/usr/bin/env bash
# Session-ticket keys. Generated keys rotate every tls.ticket_key_rotation_s: a ticket from
# before a rotation still resumes (TLS 1.2 and TLS 1.3) and is renewed under the new key;
# retired keys are wiped once their tickets have expired; a ticket older than lifetime +
# rotation does not resume. Keys from tls.ticket_key_file: the first encrypts, all decrypt.
# Rotation under concurrent resumptions (run it under TSan). Configuration errors name their key.
. "$(dirname "$0")/lib.sh"
make_site

# tk FIELD: a field of tls.ticket_keys in /status (grep, not a JSON parser: python takes a
# second to start on a loaded machine, and rotations come every few seconds)
tk() { tcurl "$BASE/status" | grep -o '"ticket_keys":{[^}]*}' | grep -o "\"$1\":[^,}]*" | cut -d: -f2 | tr -d '"'; }
# the ticket's first 16 bytes: the name of the key that encrypted it
keyname() {
    openssl sess_id -in "$1" -noout -text |
        sed -n '/TLS session ticket:$/{n;s/^ *0000 - //;s/   .*//;p;q}'
}
# resume MECH IN|"" OUT: one connection; prints 1 if it resumed IN
resume() {
    local a=(--count 1 --mech "$1" --sess-out "$3")
    [ -n "$2" ] && a+=(--sess-in "$2")
    kv "$(probe resume "${a[@]}")" first_resumed
}
rotations() { tk rotations; }
# rotated N: at least N rotations so far (for wait_until, which runs it again each time)
rotated() { [ "$(rotations)" -ge "$1" ]; }

# the seconds since the server started, for the log of a slow run
T0=
at() { echo "# at $(($(date +%s) - T0)) s: $*"; }

### rotation: a lifetime long enough for the slowest run between a ticket and its resumptions
# The first tickets must all be taken under the first key. A machine too slow to take them
# within the rotation period (13 s for 3 connections under ASan at a load of 15 on 2 cores)
# finds it rotated already: the server starts again with twice the period, at most twice.
R=$((3 * MULT))
for attempt in 1 2 3; do
    L=$((10 * R))
    TLS_EXTRA=", \"session_cache\": { \"timeout_s\": $L }, \"ticket_key_rotation_s\": $R" \
        start_server || exit 1
    T0=$(date +%s)
    src=$(tk source) nkeys=$(tk keys)
    resume tls12-ticket "" "$T/a12.pem" >/dev/null
    b=$(resume tls12-ticket "$T/a12.pem" "$T/b12.pem")
    resume tls13 "" "$T/a13.pem" >/dev/null
    n0=$(rotations)
    [ "$n0" = 0 ] || [ $attempt = 3 ] && break
    at "rotated before the first tickets were taken: again with a period of $((2 * R)) s"
    stop_server
    check_server_log
    R=$((2 * R))
done
expect "keys are generated" "$src" generated
expect "one key at the start" "$nkeys" 1
expect "no rotation yet (all the above within $R s)" "$n0" 0
k0=$(keyname "$T/a12.pem")
expect_match "a TLS 1.2 ticket names its key" "$k0" '^[0-9a-f]{2}( |-)'
expect "TLS 1.3 tickets are under the same key" "$(keyname "$T/a13.pem")" "$k0"
expect "a TLS 1.2 ticket resumes under the current key" "$b" 1
expect "...and is not renewed" "$(openssl sess_id -in "$T/b12.pem" -noout -text | grep -A8 'ticket:$')" \
    "$(openssl sess_id -in "$T/a12.pem" -noout -text | grep -A8 'ticket:$')"

# the first handshake after R rotates (or the main loop's look once a second)
at "first tickets taken"
wait_until $((R / MULT + 5)) rotated 1
at "rotated"
n=$(rotations) keys=$(tk keys)
if [ "$n" -ge 1 ] && [ "$keys" -ge 2 ]; then ok "the key rotated after $R s; $keys keys decrypt"; else
    not_ok "after $R s: $n rotations, $keys keys"; fi
expect "a TLS 1.2 ticket from before the rotation resumes" "$(resume tls12-ticket "$T/a12.pem" "$T/c12.pem")" 1
k1=$(keyname "$T/c12.pem")
if [ -n "$k1" ] && [ "$k1" != "$k0" ]; then ok "...and is renewed under the new key"; else
    not_ok "...and is renewed under the new key (got '$k1', old '$k0')"; fi
expect "the renewed ticket resumes" "$(resume tls12-ticket "$T/c12.pem" "$T/d12.pem")" 1
expect "a TLS 1.3 ticket from before the rotation resumes" "$(resume tls13 "$T/a13.pem" "$T/c13.pem")" 1
k13=$(keyname "$T/c13.pem")
if [ -n "$k13" ] && [ "$k13" != "$k0" ]; then ok "...and brings a ticket under the new key"; else
    not_ok "...and brings a ticket under the new key (got '$k13', old '$k0')"; fi

at "resumed"
stop_server
check_server_log

### lifetime + rotation later, tickets are dead; retired keys past their time are wiped
# (without wiping, one more key every rotation)
R=$((1 * MULT)) L=$((3 * MULT))
TLS_EXTRA=", \"session_cache\": { \"timeout_s\": $L }, \"ticket_key_rotation_s\": $R" \
    start_server || exit 1
T0=$(date +%s)
resume tls12-ticket "" "$T/a12.pem" >/dev/null
resume tls13 "" "$T/a13.pem" >/dev/null
at "tickets taken"
sleep $((L + R + 1))
expect "a TLS 1.2 ticket older than lifetime + rotation does not resume" "$(resume tls12-ticket "$T/a12.pem" "$T/e12.pem")" 0
expect "...nor a TLS 1.3 one" "$(resume tls13 "$T/a13.pem" "$T/e13.pem")" 0
bound=$((1 + (L + 1 + R - 1) / R))
wait_until $((2 * R + 5)) rotated $((bound + 1))
n=$(rotations) keys=$(tk keys)
at "$n rotations"
if [ "$n" -ge $((bound + 1)) ] && [ "$keys" -le "$bound" ]; then
    ok "after $n rotations $keys keys decrypt (at most $bound: the others were dropped)"
else not_ok "after $n rotations $keys keys decrypt (expected at most $bound)"; fi
age=$(tk current_age_s)
if [ "$age" -le $((R + 1)) ]; then ok "the current key is $age s old"; else not_ok "the current key is $age s old (rotation $R s)"; fi
expect_match "/metrics has the rotations" "$(tcurl "$BASE/metrics")" 'tessera_tls_ticket_key_rotations_total [1-9]'
stop_server
check_server_log

### the default period is the session lifetime
TLS_EXTRA=", \"session_cache\": { \"timeout_s\": $((1 * MULT)) }" \
    start_server || exit 1
wait_until 5 rotated 1
if [ "$(rotations)" -ge 1 ]; then ok "without ticket_key_rotation_s keys rotate every timeout_s"; else
    not_ok "no rotation within 5 s with timeout_s $MULT"; fi
stop_server
check_server_log

### rotations while clients resume on both workers all the time (TSan watches the key set):
# rounds of 200 connections by each mechanism at once until 3 rotations have happened, however
# many rounds that takes (a fast machine runs ten rounds in less than the 3 s it takes), bounded
# in time and in rounds
TLS_EXTRA=', "session_cache": { "timeout_s": 2 }, "ticket_key_rotation_s": 1' start_server || exit 1
T0=$(date +%s)
served=0 resumed=0 rounds=0 n=0 end=$((SECONDS + 30 * MULT))
while [ "${n:-0}" -lt 3 ] && [ $SECONDS -lt $end ] && [ $rounds -lt 1000 ]; do
    rounds=$((rounds + 1))
    probe resume --count 200 --mech tls13 >"$T/load13" &
    P13=$!
    probe resume --count 200 --mech tls12-ticket >"$T/load12" &
    P12=$!
    wait "$P13" "$P12"
    for f in load13 load12; do
        served=$((served + $(kv "$(cat "$T/$f")" ok))) resumed=$((resumed + $(kv "$(cat "$T/$f")" resumed)))
    done
    n=$(rotations)
done
at "$n rotations in $rounds rounds"
if [ "${n:-0}" -ge 3 ]; then ok "$n rotations during $rounds rounds"; else
    not_ok "only ${n:-no} rotations in $rounds rounds ($((30 * MULT)) s)"; fi
expect "every connection served" "$served" $((rounds * 400))
if [ "$resumed" -ge $((rounds * 300)) ]; then ok "$resumed of $((rounds * 400)) connections resumed across rotations"; else
    not_ok "only $resumed of $((rounds * 400)) connections resumed"; fi
stop_server
check_server_log

### keys from a file: the first encrypts, every one decrypts
head -c 80 /dev/urandom >"$T/k1.key"
head -c 80 /dev/urandom >"$T/k2.key"
TLS_EXTRA=", \"ticket_key_file\": \"$T/k1.key\"" start_server || exit 1
expect "keys from the file" "$(tk source)" file
expect "...never rotated" "$(rotations)" 0
resume tls12-ticket "" "$T/f12.pem" >/dev/null
stop_server
cat "$T/k2.key" "$T/k1.key" >"$T/k21.key"
TLS_EXTRA=", \"ticket_key_file\": \"$T/k21.key\"" start_server || exit 1
expect "two keys in the file" "$(tk keys)" 2
expect "a ticket under the second key resumes" "$(resume tls12-ticket "$T/f12.pem" "$T/g12.pem")" 1
expect "...renewed under the first key" "$(keyname "$T/g12.pem" | tr -d ' -')" "$(head -c 16 "$T/k2.key" | od -An -tx1 | tr -d ' \n')"
stop_server
check_server_log

### configuration errors
bad() { # DESCRIPTION TLS_EXTRA PATTERN
    local out
    out=$(TLS_EXTRA=$2 write_config && oneshot "$TS_BIN" --config "$T/tessera.json" --check-config)
    expect "$1: exit status 2" "$?" 2
    expect_match "...$1: names the key" "$out" "$3"
}
bad "rotation with a key file" ", \"ticket_key_file\": \"$T/k1.key\", \"ticket_key_rotation_s\": 60" \
    'tls.ticket_key_rotation_s: applies to generated keys only'
bad "rotation too short for the lifetime" ', "session_cache": { "timeout_s": 86400 }, "ticket_key_rotation_s": 1' \
    'tls.ticket_key_rotation_s: 1 s would keep more than 64 keys .* use at least 1372 s'
bad "rotation 0" ', "ticket_key_rotation_s": 0' 'tls.ticket_key_rotation_s: '
head -c 79 /dev/urandom >"$T/short.key"
bad "a key file of 79 bytes" ", \"ticket_key_file\": \"$T/short.key\"" \
    "tls.ticket_key_file: $T/short.key: holds 79 bytes, must hold 80 bytes per key"
: >"$T/empty.key"
bad "an empty key file" ", \"ticket_key_file\": \"$T/empty.key\"" \
    "tls.ticket_key_file: $T/empty.key: holds 0 bytes"
OUT=$(TLS_EXTRA=', "session_cache": { "timeout_s": 86400 }, "ticket_key_rotation_s": 1372' write_config &&
    oneshot "$TS_BIN" --config "$T/tessera.json" --check-config)
expect "the shortest rotation it names is accepted" "$?" 0
check_server_log
