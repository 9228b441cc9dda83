#!/usr/bin/env bash
# A response that ends the connection reaches a slow reader whole: its last records and the
# close_notify stay under timeouts.send_s until they are in the socket, and only then does the
# shutdown_s wait for the client's close_notify begin. The sizes swept sit around what the
# kernel buffers for a paused reader, where the end of the response is still staged in tessera
# when the client stops reading; the client pauses longer than shutdown_s. (A response that
# fits in those buffers entirely is in the socket at once, so its shutdown wait may expire
# while the client sleeps: it still arrives whole, but counts as a timeout; not swept here.)
. "$(dirname "$0")/lib.sh"
make_site
mkdir -p "$T/www/f"
SLOW="timeout $((90 * MULT)) python3 $TS_TOP/tests/tools/slowread.py --cafile $CERTS/ca.crt --rcvbuf 8192"
stat_of() { tcurl "$BASE/status" | python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }
# only_one: no connection open but the one asking, counted in POLLS: each is a clean close
# too (for wait_until)
only_one() { POLLS=$((POLLS + 1)); [ "$(stat_of "['connections']['active']")" = 1 ]; }

# The client needs a moment to read megabytes once it wakes up (Python, a loaded machine): the
# shutdown wait is long enough for that, and the pause longer than it.
SHUT=$((3 * MULT))
PAUSE=$SHUT.6
WORKERS=2 TIMEOUTS="\"shutdown_s\": $SHUT, \"send_s\": 30" start_server || exit 1

# What the kernel holds for a paused reader of this connection: the server's Send-Q plus the
# client's Recv-Q, seen while the client sleeps.
truncate -s 20000000 "$T/www/f/big"
$SLOW --port "$PORT" --path /f/big --sizes 1 --pause 3 --timeout 10 >"$T/measure.out" &
M=$!
# The queues fill over a moment (more so on a loaded machine): the capacity is the total once it
# has stopped growing for three samples in a row. Taken too early it would be too small, and
# the sizes swept below would fit in the buffers whole.
cap=0
prev=-1
same=0
for _ in $(seq 1 $((30 * MULT))); do
    sleep 0.2
    # with a state filter ss prints no State column: Recv-Q is $1, Send-Q $2
    s=$(ss -tnH state established "( sport = :$PORT )" | awk '$2 > 1000000 {print $2}' | head -1)
    r=$(ss -tnH state established "( dport = :$PORT )" | awk '{s += $1} END {print s + 0}')
    [ -n "$s" ] || continue
    now=$((s + r))
    [ "$now" -gt "$cap" ] && cap=$now # the largest seen, in case the client wakes first
    if [ "$now" -eq "$prev" ]; then same=$((same + 1)); else same=0; fi
    prev=$now
    [ "$same" -ge 2 ] && break
done
wait $M
if [ "$cap" -gt 0 ]; then ok "a paused reader's connection buffers about $cap bytes"; else
    not_ok "could not measure the socket buffers"; cap=3300000; fi

sizes=""
for d in $(seq 8192 16384 90112); do
    n=$((cap + d))
    truncate -s "$n" "$T/www/f/$n"
    sizes="$sizes${sizes:+,}$n"
done
nsizes=$(echo "$sizes" | tr ',' '\n' | wc -l)

sweep() { # label, slowread options...
    local label=$1 out bad
    shift
    out=$($SLOW --port "$PORT" --sizes "$sizes" "$@")
    bad=$(printf '%s\n' "$out" | awk '{split($1,a,"="); split($2,b,"=");
        if (a[2] != b[2] || $3 != "end=close_notify") print}')
    if [ -z "$bad" ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq "$nsizes" ]; then
        ok "$label: every byte of $nsizes responses, then close_notify"
    else
        not_ok "$label: short responses"
        printf '%s\n' "$bad" | head -5 | sed 's/^/#   /'
    fi
}

for mode in close http10; do
    c0=$(stat_of "['connections']['closed_clean']")
    t0=$(stat_of "['connections']['closed_timeout']")
    if [ $mode = close ]; then sweep "Connection: close, pause $PAUSE s" --pause "$PAUSE"
    else sweep "HTTP/1.0, pause $PAUSE s" --pause "$PAUSE" --http10; fi
    # the server counts a close once the client's close_notify is in, which may come after the
    # client has its response: wait until only the connection asking is open
    POLLS=0
    wait_until 10 only_one
    c1=$(stat_of "['connections']['closed_clean']")
    # (the connections of the polls but the last are clean closes too)
    if [ "$c1" -ge $((c0 + nsizes + POLLS - 1)) ]; then ok "...all closed clean"; else
        not_ok "...all closed clean (closed_clean went from $c0 to $c1, $POLLS polls)"; fi
    expect "...none by a timeout" "$(stat_of "['connections']['closed_timeout']")" "$t0"
done

# Draining at SIGTERM: responses in flight still reach their paused readers whole.
$SLOW --port "$PORT" --sizes "$sizes" --pause "$PAUSE" --signal-file "$T/sent" >"$T/drain.out" &
D=$!
for _ in $(seq 1 $((100 * MULT))); do [ "$(ls "$T"/sent.* 2>/dev/null | wc -l)" -eq "$nsizes" ] && break; sleep 0.1; done
# SIGTERM once the server is sending every response (more than 64 KiB queued to each client),
# however long the requests took to arrive
sending() { [ "$(ss -tnH state established "( sport = :$PORT )" | awk '$2 > 65536' | wc -l)" -ge "$nsizes" ]; }
check "at SIGTERM: $nsizes responses under way" wait_until 10 sending
stop_server
expect "server exits 0 after draining" "$?" 0
wait $D
bad=$(awk '{split($1,a,"="); split($2,b,"="); if (a[2] != b[2] || $3 != "end=close_notify") print}' "$T/drain.out")
if [ -z "$bad" ]; then ok "at SIGTERM: every byte, then close_notify"; else
    not_ok "at SIGTERM: short responses"; printf '%s\n' "$bad" | head -5 | sed 's/^/#   /'; fi

# shutdown_s = 0: no wait for the client, but only once everything is in the socket
WORKERS=2 TIMEOUTS='"shutdown_s": 0, "send_s": 20' start_server || exit 1
sweep "shutdown_s=0, Connection: close, pause 1.5 s" --pause 1.5
sleep 0.5
expect "...none closed by a timeout" "$(stat_of "['connections']['closed_timeout']")" 0
stop_server
expect "server exits 0" "$?" 0
check_server_log
