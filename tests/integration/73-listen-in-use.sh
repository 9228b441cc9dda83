#!/usr/bin/env bash
# An address another process listens on: a second tessera started there by mistake is refused
# at start, exit 2, with "Address already in use" naming the address and --upgrade (as nginx
# and Caddy refuse), and the first one keeps every connection; --upgrade shares the address and
# takes the new connections (71-upgrade: the same under load). Any listener counts, a program
# with SO_REUSEPORT of the same user too, and a wildcard covers the addresses under it; the
# TIME_WAIT connections of a server just stopped do not. Two tessera started at the same
# moment never both listen: the check and the listen() are done under a per-user lock, which
# a tessera waits for (bounded) while another one holds it.
. "$(dirname "$0")/lib.sh"
make_site

ACCESS_LOG=$T/access.first.log start_server || exit 1
FIRST_PID=$SERVER_PID FIRST_IDX=$SERVER_IDX
expect "the first tessera serves" "$(tcurl "$BASE/hello.txt")" hello
cp "$T/tessera.json" "$T/first.json"
ACCESS_LOG=$T/access.second.log write_config
cp "$T/tessera.json" "$T/second.json"
OUT=$(oneshot "$TS_BIN" --config "$T/second.json")
expect "a second tessera on the same address: exit 2" "$?" 2
expect_match "...naming the address, why, and --upgrade" "$OUT" \
    "^tessera: configuration error: listen: \"127\.0\.0\.1:$PORT\": Address already in use: another process listens there \(to replace a running tessera without downtime, start the new one with --upgrade"
OUT=$(oneshot "$TS_BIN" --config "$T/second.json" --listen "0.0.0.0:$PORT")
expect "...on the wildcard address that covers it: exit 2" "$?" 2
expect_match "...naming that address" "$OUT" "listen: \"0\.0\.0\.0:$PORT\": Address already in use"
for i in $(seq 1 20); do tcurl -o /dev/null "$BASE/hello.txt?after-$i"; done
wait_until 5 grep -q 'after-20 ' "$T/access.first.log"
expect "...and the first one still gets every new connection" \
    "$(grep -c 'GET /hello.txt?after-' "$T/access.first.log")" 20
expect "...none of them reached the refused one" "$(cat "$T/access.second.log" 2>/dev/null | wc -l)" 0

# --upgrade: the address is shared, and the new connections go to the new process
spawn_server "$TS_BIN" --config "$T/second.json" --upgrade >/dev/null
check "with --upgrade the second one starts on the same address" \
    wait_until 20 grep -q "listening on 127.0.0.1:$PORT" "$T/error.$SERVER_IDX.log"
expect_match "...saying it shares it" "$(cat "$T/error.$SERVER_IDX.log")" \
    "\[info\] listen: \"127\.0\.0\.1:$PORT\": another process listens there: shared with it \(--upgrade\), new connections come to this process"
SECOND_PID=$SERVER_PID SECOND_IDX=$SERVER_IDX
for i in $(seq 1 20); do tcurl -o /dev/null "$BASE/hello.txt?upgraded-$i"; done
wait_until 5 grep -q 'upgraded-20 ' "$T/access.second.log"
expect "...and takes the new connections" "$(grep -c 'upgraded-' "$T/access.second.log")" 20
expect "...the old one gets none" "$(grep -c 'upgraded-' "$T/access.first.log")" 0
SERVER_PID=$FIRST_PID SERVER_IDX=$FIRST_IDX
stop_server
expect "the old one stops (exit 0)" "$?" 0
SERVER_PID=$SECOND_PID SERVER_IDX=$SECOND_IDX
expect "the new one serves on alone" "$(tcurl "$BASE/hello.txt")" hello

# a server just stopped leaves TIME_WAIT connections on its port: they hold no address
for i in 1 2 3; do tcurl -o /dev/null -H 'Connection: close' "$BASE/hello.txt"; done
stop_server
expect "the new one stops (exit 0)" "$?" 0
echo "# TIME_WAIT connections on the port: $(ss -Htan state time-wait "sport = :$PORT" | wc -l)"
spawn_server "$TS_BIN" --config "$T/first.json"
expect "a tessera restarted at once on the port of one just stopped serves" "$(tcurl "$BASE/hello.txt")" hello
stop_server
check_server_log

# its own listeners are no other process: a specific address and the wildcard of its port
PORT=$(pick_port) || exit 1
LISTEN="0.0.0.0:$PORT" write_config
sed -i "s|\"listen\": \"0.0.0.0:$PORT\"|\"listen\": [\"127.0.0.1:$PORT\", \"0.0.0.0:$PORT\"]|" "$T/tessera.json"
spawn_server "$TS_BIN" --config "$T/tessera.json"
expect "listen naming 127.0.0.1:P and 0.0.0.0:P: it starts and serves" "$(tcurl "$BASE/hello.txt")" hello
stop_server

# any program listening counts, one with SO_REUSEPORT of the same user too (which tessera's
# own SO_REUSEPORT bind would have joined without a word)
cat >"$T/holder.py" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
open(sys.argv[2], "w").close()
time.sleep(float(sys.argv[3]))
PY
PORT=$(pick_port) || exit 1
python3 "$T/holder.py" "$PORT" "$T/holder.up" $((60 * MULT)) &
HOLDER=$!
PIDS+=("$HOLDER")
wait_until 10 test -f "$T/holder.up"
write_config
OUT=$(oneshot "$TS_BIN" --config "$T/tessera.json")
expect "a program listening with SO_REUSEPORT: tessera refuses its address (exit 2)" "$?" 2
expect_match "...Address already in use" "$OUT" "listen: \"127\.0\.0\.1:$PORT\": Address already in use"
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null

# the lock of the check: while another tessera of this user holds it (here a stand-in), a
# starting tessera waits and does not listen; once it is released, it goes on
cat >"$T/lock.py" <<'PY'
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\0tessera-listen-%d" % os.geteuid())
open(sys.argv[1], "w").close()
time.sleep(float(sys.argv[2]))
PY
PORT=$(pick_port) || exit 1
write_config
python3 "$T/lock.py" "$T/lock.up" 1.5 &
LOCKER=$!
PIDS+=("$LOCKER")
wait_until 10 test -f "$T/lock.up"
START_WAIT=5 spawn_server "$TS_BIN" --config "$T/tessera.json" >/dev/null
check "while the lock is held, a starting tessera does not listen yet" sh -c "! (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null"
wait "$LOCKER"
check "...and listens once it is released" wait_until 10 port_in_use "$PORT"
expect "...and serves" "$(tcurl "$BASE/hello.txt")" hello
stop_server
# a holder that does not let go is waited for 3 s, then the check runs without the lock
PORT=$(pick_port) || exit 1
write_config
rm -f "$T/lock.up"
python3 "$T/lock.py" "$T/lock.up" $((30 * MULT)) &
LOCKER=$!
PIDS+=("$LOCKER")
wait_until 10 test -f "$T/lock.up"
spawn_server "$TS_BIN" --config "$T/tessera.json"
expect "a lock held for good: tessera starts after waiting, and serves" "$(tcurl "$BASE/hello.txt")" hello
expect_match "...with a warning" "$(cat "$T/error.log")" "\[warn\] listen: another process of this user has held the lock of the address check \(@tessera-listen-[0-9]+\) for 3000 ms; checking without it"
stop_server
kill "$LOCKER"
wait "$LOCKER" 2>/dev/null
check_server_log

# two started at the same moment, again and again: one listens, the other is refused
rounds=12 both=0 none=0
for r in $(seq 1 $rounds); do
    PORT=$(pick_port) || exit 1
    write_config
    "$TS_BIN" --config "$T/tessera.json" >"$T/race.$r.a.log" 2>&1 &
    a=$!
    "$TS_BIN" --config "$T/tessera.json" >"$T/race.$r.b.log" 2>&1 &
    b=$!
    PIDS+=("$a" "$b")
    gone() { ! kill -0 "$a" 2>/dev/null || ! kill -0 "$b" 2>/dev/null; }
    wait_until 10 gone
    sleep 0.2
    n=$(ss -Htln "sport = :$PORT" | wc -l)
    [ "$n" -gt 1 ] && both=$((both + 1))
    [ "$n" -eq 0 ] && none=$((none + 1))
    kill -TERM "$a" "$b" 2>/dev/null
    wait "$a" 2>/dev/null
    rca=$?
    wait "$b" 2>/dev/null
    rcb=$?
    echo "# round $r: $n listening socket(s), exit statuses $rca $rcb"
    # their output joins the foreground runs' log, which check_server_log reads for sanitizer
    # reports
    { printf '### race round %s\n' "$r"; cat "$T/race.$r.a.log" "$T/race.$r.b.log"; } >>"$T/oneshot.log"
    expect "round $r: one refused with \"Address already in use\", one served and exited 0" \
        "$(printf '%s\n' "$rca" "$rcb" | sort | tr '\n' ' ')$(grep -l 'Address already in use' "$T/race.$r.a.log" "$T/race.$r.b.log" | wc -l)" "0 2 1"
done
expect "in $rounds rounds of two started at once, never both listening" "$both" 0
expect "...and never none" "$none" 0
check_server_log
