#!/usr/bin/env bash
# SIGUSR1 reopens the log files, as after a log rotation: under load from several workers no
# access-log line is lost, duplicated or split between the old file and the new one; the new
# file gets the old one's mode; the error log is reopened too; a file that cannot be reopened
# (its directory gone) keeps the old one in use, with an error line naming it; "-" is left
# alone. SIGHUP and SIGUSR2 do not stop the server.
. "$(dirname "$0")/lib.sh"
make_site

# start_in DIR: a server whose access log (JSON) and error log are files in DIR
start_in() {
    local d=$1 i
    mkdir -p "$d"
    PORT=$(pick_port) || return 1
    ACCESS_LOG=$d/access.log LOG_EXTRA=', "format": "json"' write_config
    sed -i "s|\"error\": \"-\"|\"error\": \"$d/error.log\"|" "$T/tessera.json"
    spawn_server "$TS_BIN" --config "$T/tessera.json" || return 1
    watch_log "$d/error.log"
    for i in $(seq 1 60); do watch_log "$d/error.log.$i"; done
}

status_field() { # PATH.IN.JSON
    tcurl "$BASE/status" | /usr/bin/python3 -c "
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split('.'): v = v[k]
print(v)" "$1"
}

D=$T/logs
WORKERS=3 start_in "$D" || exit 1
chmod 640 "$D/access.log"

# 4 clients, each in runs of 200 requests on one keep-alive connection, spread over the 3
# workers, until the log has been rotated K times: the access log is renamed and SIGUSR1 sent
# while they run, each time once a line has reached the file the last reopen made. The load
# lasts as long as the rotations take, not a number of requests that a fast machine serves
# before they are done; bounded in time and in runs.
CLIENTS=4 PER=200 K=10 END=$((SECONDS + 60 * MULT))
client() { # C: runs until $T/stop
    local c=$1 r=0
    while [ ! -e "$T/stop" ] && [ $SECONDS -lt $END ] && [ $r -lt 500 ]; do
        r=$((r + 1))
        tcurl -w '%{http_code}\n' "$BASE/hello.txt?c=$c&r=$r&i=[1-$PER]" >"$T/load.$c.$r" 2>>"$T/load.$c.err"
    done
}
LOAD=()
for c in $(seq 1 $CLIENTS); do
    client "$c" &
    LOAD+=($!)
    PIDS+=($!)
done
all_running() { local p; for p in "${LOAD[@]}"; do kill -0 "$p" 2>/dev/null || return 1; done; }
k=0
wait_until 10 test -s "$D/access.log"
while [ $k -lt $K ] && [ $SECONDS -lt $END ]; do
    k=$((k + 1))
    mv "$D/access.log" "$D/access.log.$k"
    kill -USR1 "$SERVER_PID"
    # the next rename only once this reopen has made the new file and a request was logged in it
    wait_until 10 test -s "$D/access.log" || break
done
if all_running; then ok "the load ran through $k rotations"; else not_ok "the load ended before the rotations did"; fi
touch "$T/stop"
for p in "${LOAD[@]}"; do wait "$p"; done
runs=0
for f in "$T"/load.*.[0-9]*; do [ -f "$f" ] && runs=$((runs + 1)); done
N=$((runs * PER))
expect "$N requests ($runs runs of $PER) answered 200 while the log was rotated $k times" \
    "$(cat "$T"/load.*.[0-9]* | grep -c '^200$')" "$N"
expect "rotated $K times during the load" "$k" "$K"

lines() { cat "$D"/access.log* | wc -l; }
all_logged() { [ "$(lines)" -ge $N ]; }
wait_until 10 all_logged
expect "access-log lines across all files == requests" "$(lines)" $N
used=0
for f in "$D"/access.log*; do [ -s "$f" ] && used=$((used + 1)); done
expect "the lines are spread over the $((k + 1)) files, each with some" "$used" $((k + 1))
# each line whole (parses alone), each request exactly once, each file ending with a newline
# (the requests are those of the runs made: $T/load.C.R)
R=$(/usr/bin/python3 - "$T" "$PER" "$D"/access.log* <<'PY'
import glob, json, re, sys
runs = [m.groups() for m in (re.search(r'/load\.(\d+)\.(\d+)$', f) for f in glob.glob(sys.argv[1] + '/load.*.*')) if m]
per = int(sys.argv[2])
seen, bad, torn = {}, 0, 0
for f in sys.argv[3:]:
    data = open(f, 'rb').read()
    if data and not data.endswith(b'\n'):
        torn += 1
    for line in data.splitlines():
        try:
            t = json.loads(line)['target']
        except Exception:
            bad += 1
            continue
        seen[t] = seen.get(t, 0) + 1
want = {'/hello.txt?c=%s&r=%s&i=%d' % (c, r, i) for c, r in runs for i in range(1, per + 1)}
print('bad=%d torn=%d dup=%d missing=%d extra=%d' % (bad, torn,
      sum(1 for v in seen.values() if v > 1), len(want - set(seen)), len(set(seen) - want)))
PY
)
expect "every line parses alone, each request logged once" "$R" "bad=0 torn=0 dup=0 missing=0 extra=0"
expect "the new access.log has the old one's mode" "$(stat -c %a "$D/access.log")" 640
expect "...and so has every file made by a reopen" \
    "$(stat -c %a "$D"/access.log.* | sort -u | tr '\n' ' ')" "640 "
expect "/status counts the reopens" "$(status_field log.reopens)" "$k"
expect_match "/metrics too" "$(tcurl "$BASE/metrics")" "tessera_log_reopens_total $k"

# the error log
mv "$D/error.log" "$D/error.log.1"
kill -USR1 "$SERVER_PID"
wait_until 10 grep -q 'log files reopened' "$D/error.log"
expect_match "the error log is reopened: the new file has the reopen line" \
    "$(cat "$D/error.log" 2>&1)" '\[info\] SIGUSR1 received: log files reopened'
expect_match "...and the old one the start" "$(cat "$D/error.log.1")" 'listening on'

# SIGHUP reloads (into the new error log); SIGUSR2 is logged and otherwise ignored
kill -HUP "$SERVER_PID"
kill -USR2 "$SERVER_PID"
wait_until 10 grep -q 'SIGUSR2 ignored' "$D/error.log"
wait_until 10 grep -q 'generation 2 loaded' "$D/error.log"
expect "after SIGHUP and SIGUSR2 the server still serves" "$(tcurl "$BASE/hello.txt")" hello
expect_match "...and says it reloaded" "$(cat "$D/error.log")" '\[info\] reload: configuration generation 2 loaded'
expect_match "...and SIGUSR2" "$(cat "$D/error.log")" '\[info\] SIGUSR2 ignored'
stop_server
expect "the server exits 0" "$?" 0
check_server_log

# a reopen that fails: the directory is gone (tests run as root, so a mode would not stop it)
D2=$T/logs2
ALLOWED_ERRORS='cannot reopen' start_in "$D2" || exit 1
tcurl -o /dev/null "$BASE/hello.txt?before"
mv "$D2" "$D2.gone"
kill -USR1 "$SERVER_PID"
wait_until 10 grep -q 'log.access: cannot reopen' "$D2.gone/error.log"
expect_match "a failed reopen names the error log file" "$(cat "$D2.gone/error.log")" \
    "\[error\] log.error: cannot reopen $D2/error.log: No such file or directory; still writing to the file open before"
expect_match "...and the access log file" "$(cat "$D2.gone/error.log")" \
    "\[error\] log.access: cannot reopen $D2/access.log: No such file or directory"
tcurl -o /dev/null "$BASE/hello.txt?after"
wait_until 10 grep -q 'after' "$D2.gone/access.log"
expect_match "...and requests are still logged to the old file" "$(cat "$D2.gone/access.log")" 'hello.txt\?after'
expect "/status counts the files not reopened" "$(status_field log.reopen_failures)" 2
expect "...and no reopen done" "$(status_field log.reopens)" 0
mv "$D2.gone" "$D2"
kill -USR1 "$SERVER_PID"
wait_until 10 grep -q 'log files reopened' "$D2/error.log"
expect_match "with the directory back the reopen succeeds" "$(cat "$D2/error.log")" 'SIGUSR1 received: log files reopened'
stop_server
expect "the server exits 0" "$?" 0
check_server_log

# "-" destinations are left alone
ACCESS_LOG=- start_server || exit 1
tcurl -o /dev/null "$BASE/hello.txt?one"
kill -USR1 "$SERVER_PID"
wait_until 10 grep -q 'log files reopened' "$T/error.log"
tcurl -o /dev/null "$BASE/hello.txt?two"
stop_server
expect "the server exits 0" "$?" 0
expect_match "with stderr as the error log the reopen is told there" "$(cat "$T/error.log")" 'SIGUSR1 received: log files reopened'
expect "...and stdout keeps the access log" "$(grep -c 'hello.txt?' "$T/stdout.log")" 2
check_server_log
