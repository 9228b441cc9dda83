#!/usr/bin/env bash
# pid_file: written once the server listens, removed at exit, refused at start while another
# live process holds it (a second tessera with the same pid_file), a file left by a process
# that no longer runs taken over with an info line; with --upgrade taken over from the running
# one (which leaves it in place at exit); checked by --check-config; restart-only at a reload;
# signals sent through it (SIGUSR1: README's log rotation). Started as root with "user", the
# file in a directory only root may write is emptied at exit, as it cannot be removed.
. "$(dirname "$0")/lib.sh"
make_site
PIDF=$T/run/tessera.pid
mkdir -p "$T/run"
pidfile_is() { [ "$(cat "$PIDF" 2>/dev/null)" = "$1" ]; }

# --check-config: a pid file where none can be created is refused, naming the key
TOP_EXTRA="\"pid_file\": \"$T/nodir/tessera.pid\"," write_config
OUT=$(oneshot "$TS_BIN" --config "$T/tessera.json" --check-config)
expect "--check-config: pid_file in a missing directory: exit 2" "$?" 2
expect_match "...naming the key" "$OUT" "configuration error: pid_file: $T/nodir/tessera\.pid: cannot be created: $T/nodir: No such file"
ln -s "$T/elsewhere.pid" "$T/run/link.pid"
TOP_EXTRA="\"pid_file\": \"$T/run/link.pid\"," write_config
OUT=$(oneshot "$TS_BIN" --config "$T/tessera.json" --check-config)
expect "...a symbolic link: exit 2" "$?" 2
expect_match "...saying so" "$OUT" "pid_file: $T/run/link\.pid: is a symbolic link"
expect "...and nothing was created" "$(ls "$T/nodir" "$T/elsewhere.pid" 2>/dev/null | wc -l)" 0

# written once listening: while another tessera of this user holds the lock of the address
# check (see 73-listen-in-use), this one does not listen yet, and its pid file names nobody
cat >"$T/lock.py" <<'PY'
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\0tessera-listen-%d" % os.geteuid())
open(sys.argv[1], "w").close()
time.sleep(float(sys.argv[2]))
PY
python3 "$T/lock.py" "$T/lock.up" 1.5 &
LOCKER=$!
PIDS+=("$LOCKER")
wait_until 10 test -f "$T/lock.up"
PORT=$(pick_port) || exit 1
TOP_EXTRA="\"pid_file\": \"$PIDF\"," ACCESS_LOG=$T/access.a.log write_config
cp "$T/tessera.json" "$T/a.json"
START_WAIT=5 spawn_server "$TS_BIN" --config "$T/a.json" >/dev/null
check "the pid file is made at start" wait_until 5 test -e "$PIDF"
expect "...but before it listens, it names no process" "$(cat "$PIDF")" ""
wait "$LOCKER"
check "once it listens, the pid file names it" wait_until 10 pidfile_is "$SERVER_PID"
expect "...it serves" "$(tcurl "$BASE/hello.txt")" hello
A_PID=$SERVER_PID A_IDX=$SERVER_IDX A_PORT=$PORT

# log rotation: conf/logrotate.example's postrotate script, outside systemd (a systemctl that
# fails), signals the process the pid file names
mv "$T/access.a.log" "$T/access.a.log.1"
mkdir -p "$T/bin"
printf '#!/bin/sh\nexit 1\n' >"$T/bin/systemctl"
chmod +x "$T/bin/systemctl"
sed -n '/^ *postrotate$/,/^ *endscript$/p' "$TS_TOP/conf/logrotate.example" | sed '1d;$d' |
    sed "s|/run/tessera.pid|$PIDF|g" >"$T/postrotate.sh"
check "conf/logrotate.example's postrotate names the pid file" grep -q "kill -USR1 \"\$(cat $PIDF)\"" "$T/postrotate.sh"
PATH=$T/bin:$PATH sh "$T/postrotate.sh"
check "...and run, reopens the logs" wait_until 5 grep -q 'log files reopened' "$T/error.$A_IDX.log"
tcurl -o /dev/null "$BASE/hello.txt?rotated"
check "...the next line goes to the new file" wait_until 5 grep -q 'rotated' "$T/access.a.log"

# a second tessera with the same pid_file (on another port): refused while the first runs
PORT=$(pick_port) || exit 1
TOP_EXTRA="\"pid_file\": \"$PIDF\"," ACCESS_LOG=$T/access.b.log write_config
cp "$T/tessera.json" "$T/b.json"
OUT=$(oneshot "$TS_BIN" --config "$T/b.json")
expect "a second tessera with the same pid_file: exit 2" "$?" 2
expect_match "...naming the key, the file and the process that holds it" "$OUT" \
    "configuration error: pid_file: $PIDF: held by the running process $A_PID \(a tessera with this pid_file runs already: stop it first, or start this one with --upgrade to replace it\)"
check "...before it took its address" sh -c "! (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null"
expect "...and the file still names the first" "$(cat "$PIDF")" "$A_PID"

# a reload cannot move it
sed "s|\"pid_file\": \"$PIDF\"|\"pid_file\": \"$T/run/other.pid\"|" "$T/a.json" >"$T/a.json.new"
mv "$T/a.json.new" "$T/a.json"
kill -HUP "$A_PID"
check "a reload that changes pid_file: it applies at restart" \
    wait_until 10 grep -q 'reload: pid_file changed: applies at restart; the running value stays' "$T/error.$A_IDX.log"
expect "...the file stays where it was" "$(cat "$PIDF") $(ls "$T/run/other.pid" 2>/dev/null | wc -l)" "$A_PID 0"
sed -i "s|\"pid_file\": \"$T/run/other.pid\"|\"pid_file\": \"$PIDF\"|" "$T/a.json"

SERVER_PID=$A_PID SERVER_IDX=$A_IDX
stop_server
expect "the server exits 0" "$?" 0
expect "...and its pid file is gone" "$(ls "$PIDF" 2>/dev/null | wc -l)" 0

# a file left by a process that no longer runs (killed: it could not remove it) is taken over
PORT=$A_PORT
spawn_server "$TS_BIN" --config "$T/a.json"
check "a new server writes its id" wait_until 10 pidfile_is "$SERVER_PID"
DEAD=$SERVER_PID
kill -KILL "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null
LOG_RC[SERVER_IDX]=0 # killed on purpose
SERVER_PID=
expect "killed, it leaves its pid file" "$(cat "$PIDF")" "$DEAD"
spawn_server "$TS_BIN" --config "$T/a.json"
check "the next one starts and writes its id" wait_until 10 pidfile_is "$SERVER_PID"
expect_match "...saying it took the file over" "$(cat "$T/error.log")" \
    "\[info\] pid_file: $PIDF: left by process $DEAD, which no longer runs: taken over"
stop_server
expect "...and exits 0" "$?" 0
printf 'not a pid\n' >"$PIDF"
spawn_server "$TS_BIN" --config "$T/a.json"
check "a pid file with no process id in it is taken over too" wait_until 10 pidfile_is "$SERVER_PID"
expect_match "...saying so" "$(cat "$T/error.log")" "\[info\] pid_file: $PIDF: holds no process id: taken over"

# --upgrade: the new process writes its id once it listens; the old one, at its exit, leaves
# the file to it; while both run, and after, a third one is refused
OLD_PID=$SERVER_PID OLD_IDX=$SERVER_IDX
spawn_server "$TS_BIN" --config "$T/a.json" --upgrade >/dev/null
check "--upgrade: once the new one listens, the pid file names it" wait_until 20 pidfile_is "$SERVER_PID"
expect_match "...saying it took the file over" "$(cat "$T/error.$SERVER_IDX.log")" \
    "\[info\] pid_file: $PIDF: held by process $OLD_PID: taken over \(--upgrade\)"
NEW_PID=$SERVER_PID NEW_IDX=$SERVER_IDX
PORT=$(pick_port) || exit 1
sed "s|127.0.0.1:$A_PORT|127.0.0.1:$PORT|" "$T/a.json" >"$T/c.json"
OUT=$(oneshot "$TS_BIN" --config "$T/c.json")
expect "...a third one is refused while both run (exit 2)" "$?" 2
expect_match "...naming the new one" "$OUT" "pid_file: $PIDF: held by the running process $NEW_PID"
SERVER_PID=$OLD_PID SERVER_IDX=$OLD_IDX
stop_server
expect "the old one exits 0" "$?" 0
expect "...leaving the file to the new one" "$(cat "$PIDF")" "$NEW_PID"
expect_match "...and saying so" "$(cat "$T/error.$OLD_IDX.log")" "pid_file: $PIDF: left in place: it names process $NEW_PID now"
OUT=$(oneshot "$TS_BIN" --config "$T/c.json")
expect "a third one is refused once the old one has left too (exit 2)" "$?" 2
expect_match "...naming the new one" "$OUT" "pid_file: $PIDF: held by the running process $NEW_PID"
sleep 1.2 # the new one takes the lock at its next tick
OUT=$(oneshot "$TS_BIN" --config "$T/c.json")
expect "...and after the new one holds the lock (exit 2)" "$?" 2
# the old one stopped too early, before the new one listens (the new one waits here for the
# lock of the address check): it removes its file at exit, and the new one makes it again
rm -f "$T/lock.up"
python3 "$T/lock.py" "$T/lock.up" 2 &
LOCKER=$!
PIDS+=("$LOCKER")
wait_until 10 test -f "$T/lock.up"
PORT=$A_PORT
START_WAIT=5 spawn_server "$TS_BIN" --config "$T/a.json" --upgrade >/dev/null
check "...an upgrade started" wait_until 10 grep -q 'taken over (--upgrade)' "$T/error.$SERVER_IDX.log"
NEWER_PID=$SERVER_PID NEWER_IDX=$SERVER_IDX
SERVER_PID=$NEW_PID SERVER_IDX=$NEW_IDX
stop_server
expect "the old one stopped before the new one listens exits 0" "$?" 0
expect "...and removes the file, which still names it" "$(ls "$PIDF" 2>/dev/null | wc -l)" 0
wait "$LOCKER"
SERVER_PID=$NEWER_PID SERVER_IDX=$NEWER_IDX
check "...the new one, once it listens, makes the file again with its id" wait_until 10 pidfile_is "$SERVER_PID"
expect "...and serves" "$(tcurl "$BASE/hello.txt")" hello
sleep 1.2 # its next tick
OUT=$(oneshot "$TS_BIN" --config "$T/c.json")
expect "...and holds it: another one is refused (exit 2)" "$?" 2
expect_match "...naming it" "$OUT" "pid_file: $PIDF: held by the running process $SERVER_PID"
stop_server
expect "the new one exits 0" "$?" 0
expect "...and removes the file" "$(ls "$PIDF" 2>/dev/null | wc -l)" 0
check_server_log

# started as root with "user": the directory is root's, so the file cannot be removed by the
# user at exit: it is emptied, and the next start takes it silently
if [ "$(id -u)" != 0 ] || ! id nobody >/dev/null 2>&1; then
    ok "# SKIP not running as root, or no user nobody"
else
    chmod 0755 "$T" "$T/run"
    chmod -R a+rX "$T/www"
    PORT=$(pick_port) || exit 1
    TOP_EXTRA="\"user\": \"nobody\", \"pid_file\": \"$PIDF\"," ACCESS_LOG=/dev/null write_config
    spawn_server "$TS_BIN" --config "$T/tessera.json"
    check "as nobody: the pid file names the server" wait_until 10 pidfile_is "$SERVER_PID"
    expect "...it serves" "$(tcurl "$BASE/hello.txt")" hello
    stop_server
    expect "...exits 0" "$?" 0
    expect "...and the file, which nobody cannot remove from a directory of root's, is empty" \
        "$(wc -c <"$PIDF")" 0
    expect_match "...saying so" "$(cat "$T/error.log")" "pid_file: $PIDF: cannot be removed \(Permission denied\): emptied instead"
    spawn_server "$TS_BIN" --config "$T/tessera.json"
    check "an empty pid file is taken by the next one" wait_until 10 pidfile_is "$SERVER_PID"
    expect_no_match "...without a word" "$(cat "$T/error.log")" 'pid_file: .*taken over'
    stop_server
    check_server_log
fi
exit $((FAILS > 0))
