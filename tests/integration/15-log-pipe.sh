#!/usr/bin/env bash
# The access log on stdout when stdout is a pipe to a reader that is slower than the requests
# come (journald, a container runtime, a log shipper): two workers write their lines many at a
# time, and every line arrives whole, none interleaved with another or cut. A reader a little
# slower than a burst loses nothing; one far too slow loses lines, whole, and each is counted
# in the error log, where lines received + lines counted lost == requests.
. "$(dirname "$0")/lib.sh"
make_site

# slow-reader.py CHUNK PAUSE_MS: copies stdin to stdout, CHUNK bytes a read with a pause of
# PAUSE_MS after each, until the end of the pipe; gives up after 120 s x MULT.
cat >"$T/slow-reader.py" <<'PY'
import os, sys, time
chunk, pause = int(sys.argv[1]), float(sys.argv[2]) / 1000
deadline = time.monotonic() + 120 * int(os.environ.get("MULT", "1"))
out = open(1, "wb", buffering=0)
for _ in range(10_000_000):
    b = os.read(0, chunk)
    if not b:
        sys.exit(0)
    out.write(b)
    if time.monotonic() > deadline:
        sys.exit(3)
    time.sleep(pause)
sys.exit(4)
PY

# lines FILE TARGET: what a reader got, as "lines=L broken=B unterminated=U"; a line is broken
# unless it parses alone as JSON with that target
lines() {
    python3 - "$1" "$2" <<'PY'
import json, sys
data = open(sys.argv[1], "rb").read()
lines = data.splitlines()
bad = 0
for line in lines:
    try:
        if json.loads(line)["target"] != sys.argv[2]:
            bad += 1
    except Exception:
        bad += 1
print("lines=%d broken=%d unterminated=%d" % (len(lines), bad,
      1 if data and not data.endswith(b"\n") else 0))
PY
}
# of lines' output in R: "broken=B unterminated=U", and L
whole() { echo "${R#* }"; }
received() {
    local l=${R%% *}
    echo "${l#lines=}"
}
# what the error log counted as lost at the stop (0 without a line)
lost() {
    local l
    l=$(sed -n 's/.*access log: [0-9]* bytes lost in all (\([0-9]*\) lines).*/\1/p' "$T/error.log" | tail -1)
    echo "${l:-0}"
}

# run NAME N READER_CHUNK READER_PAUSE_MS TARGET H2LOAD_ARGS...: a server whose stdout is a pipe
# to a slow reader; N requests from 8 HTTP/2 connections with 16 streams each, so that a worker
# ends many responses in a loop turn and writes many lines at once (up to its 16 KiB buffer).
# Sets R (lines) and LOST.
run() {
    local name=$1 n=$2 chunk=$3 pause=$4 target=$5
    shift 5
    STDOUT_PIPE="MULT=$MULT exec python3 $T/slow-reader.py $chunk $pause" ACCESS_LOG=- WORKERS=2 \
        LOG_EXTRA=', "format": "json"' start_server || exit 1
    timeout $((300 * MULT)) h2load -n "$n" -c 8 -m 16 -t 1 "$@" "https://127.0.0.1:$PORT$target" \
        >"$T/h2load.out" 2>&1
    sed -n 's/^/# /; /^# \(finished in\|requests:\|status codes:\)/p' "$T/h2load.out"
    expect "$name: $n requests answered 200 by 2 workers" \
        "$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' "$T/h2load.out")" "$n"
    stop_server
    expect "$name: the server exits 0" "$?" 0
    wait_reader
    expect "$name: the reader read the pipe to its end" "$?" 0
    R=$(lines "$T/stdout.log" "$target")
    LOST=$(lost)
    echo "# $name: the reader got $R; the error log counts $LOST lines lost"
    expect "$name: no line broken, the last one ended" "$(whole)" \
        "broken=0 unterminated=0"
    expect "$name: lines received + lines counted lost == requests" \
        "$(($(received) + LOST))" "$n"
}

# About 1 MB of lines in a burst (4000 requests take a tenth of a second or so), which the
# reader takes 1 KiB each half millisecond or so: the pipe fills unless grown, and a worker
# that waited on it would let the other's lines in between its own.
run "a reader a little slow" 4000 1024 0.5 /hello.txt
expect "...loses no line" "$LOST" 0
check_server_log

# Lines longer than PIPE_BUF (a 3000-byte target, 1000-byte User-Agent and Referer: a pipe may
# take such a line in part, and the rest must follow before any other line), 10 MB of them, to
# a reader of 500 KB/s: lines are dropped, whole, and counted.
LONG="/hello.txt?$(head -c 3000 /dev/zero | tr '\0' t)"
run "lines over PIPE_BUF, a reader far too slow" 2000 512 1 "$LONG" \
    -H "user-agent: $(head -c 1000 /dev/zero | tr '\0' u)" -H "referer: $(head -c 1000 /dev/zero | tr '\0' r)"
if [ "$LOST" -gt 0 ]; then ok "...some lines are lost ($LOST)"; else not_ok "...no line lost: the reader was not slow enough for this test"; fi
expect_match "...and the error log says why, with the count so far" "$(cat "$T/error.log")" \
    '\[error\] access log: its reader falls behind \(the pipe or socket is full\); [0-9]+ bytes of access log lost so far \([0-9]+ lines\)'
expect_match "...and the total at the stop" "$(cat "$T/error.log")" \
    "\[warn\] access log: [0-9]+ bytes lost in all \($LOST lines\)"
ALLOWED_ERRORS="access log: its reader falls behind" check_server_log

# A log file that a reopen (SIGUSR1) finds turned into a named pipe: the new descriptor is
# written as a pipe from then on (whole lines, never blocking), not as the file it replaced. Its
# reader stops reading altogether (SIGSTOP) during 5 MB of long lines: every request is still
# answered (a worker waiting on the pipe would hold them all up), lines are dropped whole.
D=$T/logs
mkdir -p "$D"
WORKERS=2 ACCESS_LOG=$D/access.log LOG_EXTRA=', "format": "json"' \
    ALLOWED_ERRORS='access log: its reader falls behind' start_server || exit 1
tcurl -o /dev/null "$BASE/hello.txt?before"
wait_until 10 grep -q before "$D/access.log"
mv "$D/access.log" "$D/access.log.1"
mkfifo "$D/access.log"
MULT=$MULT python3 "$T/slow-reader.py" 1024 0.5 <"$D/access.log" >"$T/fifo.out" &
FIFO_READER=$!
PIDS+=("$FIFO_READER")
kill -USR1 "$SERVER_PID"
wait_until 10 grep -q 'log files reopened' "$T/error.log"
expect_match "a reopen opens the named pipe" "$(cat "$T/error.log")" 'SIGUSR1 received: log files reopened'
kill -STOP "$FIFO_READER"
timeout $((60 * MULT)) h2load -n 1000 -c 8 -m 16 -t 1 -H "user-agent: $(head -c 1000 /dev/zero | tr '\0' u)" \
    "https://127.0.0.1:$PORT$LONG" >"$T/h2load.out" 2>&1
kill -CONT "$FIFO_READER"
expect "with the reader stopped, 1000 requests answered 200" \
    "$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' "$T/h2load.out")" 1000
stop_server
expect "the server exits 0" "$?" 0
for _ in $(seq 1 $((100 * MULT))); do kill -0 "$FIFO_READER" 2>/dev/null || break; sleep 0.1; done
wait "$FIFO_READER"
expect "the reader read the named pipe to its end" "$?" 0
R=$(lines "$T/fifo.out" "$LONG")
LOST=$(lost)
echo "# the reader got $R; the error log counts $LOST lines lost"
expect "no line broken, the last one ended" "$(whole)" \
    "broken=0 unterminated=0"
expect "lines received + lines counted lost == requests" \
    "$(($(received) + LOST))" 1000
expect_match "the line from before the reopen is in the old file" "$(cat "$D/access.log.1")" \
    '"target":"/hello.txt\?before"'
check_server_log
