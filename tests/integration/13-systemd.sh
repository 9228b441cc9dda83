#!/usr/bin/env bash
# Running under systemd: conf/tessera.service passes systemd-analyze verify and rates at most
# 2.0 ("OK") in systemd-analyze security; READY=1 and STOPPING=1 reach NOTIFY_SOCKET (a path
# and an abstract socket); socket activation serves on the inherited socket with the options of
# the listen entry of its address, ignores the others, refuses a socket that is not a
# listening TCP one and ignores LISTEN_FDS meant for another process; started as root with
# "user": "nobody" the server serves as nobody with no capability left, its access log (opened
# before the switch) still written and reopened at SIGUSR1 where nobody may create files, and
# a failed reopen is an error line, not a stop.
. "$(dirname "$0")/lib.sh"
make_site
BIN=$(realpath "$TS_BIN")
UNIT=$(dirname "$0")/../../conf/tessera.service
UNIT_AT=$(dirname "$0")/../../conf/tessera@.service

# --- the unit file
if ! command -v systemd-analyze >/dev/null; then
    ok "# SKIP systemd-analyze is not installed (.ci/deps test installs systemd)"
else
    # verify needs the ExecStart binary to exist: the same unit, run from the built binary
    mkdir -p "$T/unit"
    sed "s|^ExecStart=/usr/local/bin/tessera |ExecStart=$BIN |" "$UNIT" >"$T/unit/tessera.service"
    check "the unit runs the built binary in the copy" grep -q "^ExecStart=$BIN " "$T/unit/tessera.service"
    out=$(systemd-analyze verify "$T/unit/tessera.service" 2>&1)
    expect "systemd-analyze verify conf/tessera.service: status 0" "$?" 0
    expect "...and no complaint" "$out" ""
    cp "$(dirname "$0")/../../conf/tessera.socket" "$T/unit/"
    out=$(systemd-analyze verify "$T/unit/tessera.socket" 2>&1)
    expect "systemd-analyze verify conf/tessera.socket: status 0" "$?" 0
    expect "...and no complaint" "$out" ""
    sec=$(systemd-analyze security --offline=yes "$T/unit/tessera.service" 2>&1 | tail -3)
    level=$(printf '%s' "$sec" | sed -n 's/.*Overall exposure level for tessera.service: \([0-9.]*\).*/\1/p')
    echo "# systemd-analyze security: exposure $level"
    check "systemd-analyze security rates the unit at most 2.0 (got '$level')" \
        awk -v l="$level" 'BEGIN { exit !(l != "" && l + 0 <= 2.0) }'
    # the template for upgrades without downtime: the same unit, ExecStart= with --upgrade
    sed "s|^ExecStart=/usr/local/bin/tessera |ExecStart=$BIN |" "$UNIT_AT" >"$T/unit/tessera@.service"
    check "the template runs the built binary with --upgrade" grep -q "^ExecStart=$BIN .* --upgrade$" "$T/unit/tessera@.service"
    cp "$T/unit/tessera@.service" "$T/unit/tessera@blue.service"
    out=$(systemd-analyze verify "$T/unit/tessera@blue.service" 2>&1)
    expect "systemd-analyze verify conf/tessera@.service (an instance): status 0" "$?" 0
    expect "...and no complaint" "$out" ""
    sec=$(systemd-analyze security --offline=yes "$T/unit/tessera@blue.service" 2>&1 | tail -3)
    expect "...rated as tessera.service is" \
        "$(printf '%s' "$sec" | sed -n 's/.*Overall exposure level for tessera@blue.service: \([0-9.]*\).*/\1/p')" "$level"
fi
# conf/tessera@.service is conf/tessera.service but for Description= and ExecStart=: a change to
# one that the other lacks fails here
strip() { grep -v -e '^#' -e '^Description=' -e '^ExecStart=' "$1"; }
expect "conf/tessera@.service is conf/tessera.service with --upgrade" \
    "$(diff <(strip "$UNIT") <(strip "$UNIT_AT"))$(sed -n 's/^ExecStart=//p' "$UNIT_AT")" \
    "$(sed -n 's/^ExecStart=//p' "$UNIT") --upgrade"

# --- the notification protocol: a reader of datagrams on NOTIFY_SOCKET, one line per message
cat >"$T/notify.py" <<'PY'
import os, socket, sys, time
addr, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
open(out + ".bound", "w").close()
s.settimeout(1)
end = time.time() + float(sys.argv[3])
with open(out, "a") as f:
    while time.time() < end:
        try:
            msg = s.recv(4096)
        except socket.timeout:
            continue
        f.write(msg.decode().replace("\n", "|") + "\n")
        f.flush()
PY
# notify_reader ADDR OUT: starts the reader for at most 120 s (x TS_TIMEOUT_MULT)
notify_reader() {
    python3 "$T/notify.py" "$1" "$2" $((120 * MULT)) &
    PIDS+=("$!")
    wait_until 10 test -f "$2.bound"
}
notify_reader "$T/notify.sock" "$T/notify.log"
PORT=$(pick_port)
write_config
spawn_server env NOTIFY_SOCKET="$T/notify.sock" "$TS_BIN" --config "$T/tessera.json"
wait_until 10 grep -q 'READY=1' "$T/notify.log"
expect_match "READY=1 with a STATUS line reaches NOTIFY_SOCKET" "$(cat "$T/notify.log")" '^READY=1\|STATUS=listening on 127\.0\.0\.1:[0-9]+, 2 workers$'
expect "...once" "$(grep -c READY=1 "$T/notify.log")" 1
expect "...after the listener is open: it serves" "$(tcurl "$BASE/hello.txt")" hello
kill -HUP "$SERVER_PID"
wait_until 10 grep -q 'generation 2$' "$T/notify.log"
expect_match "SIGHUP: RELOADING=1 with MONOTONIC_USEC" "$(cat "$T/notify.log")" '^RELOADING=1\|MONOTONIC_USEC=[0-9]+$'
expect_match "...then READY=1 naming the new generation" "$(cat "$T/notify.log")" '^READY=1\|STATUS=serving configuration generation 2$'
expect "...in that order" "$(grep -o '^[A-Z]*=1' "$T/notify.log" | tr '\n' ' ')" "READY=1 RELOADING=1 READY=1 "
# a reload that fails ends with READY=1 too, naming the generation still in use
cp "$T/tessera.json" "$T/tessera.json.good"
echo '{"listen": [' >"$T/tessera.json"
kill -HUP "$SERVER_PID"
wait_until 10 grep -q 'reload failed' "$T/error.log"
wait_until 10 test "$(grep -c '^READY=1' "$T/notify.log")" -eq 3
expect_match "a refused reload: READY=1 with the generation still in use" "$(tail -n 1 "$T/notify.log")" '^READY=1\|STATUS=serving configuration generation 2$'
cp "$T/tessera.json.good" "$T/tessera.json"
stop_server
expect "the server exits 0 at SIGTERM" "$?" 0
expect_match "STOPPING=1 at SIGTERM" "$(cat "$T/notify.log")" '^STOPPING=1'
ALLOWED_ERRORS='reload failed' check_server_log

# --- socket activation: ACTIVATE=tcp|udp|otherpid, then the port, then the command
cat >"$T/activate.py" <<'PY'
import os, socket, sys
mode, port = sys.argv[1], int(sys.argv[2])
kind = socket.SOCK_DGRAM if mode == "udp" else socket.SOCK_STREAM
s = socket.socket(socket.AF_INET, kind)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
if kind == socket.SOCK_STREAM:
    s.listen(64)
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)  # Python opens sockets close-on-exec
env = dict(os.environ, LISTEN_FDS="1", LISTEN_FDNAMES="https")
# exec keeps the pid: this is the pid tessera will have, unless told to name another one
env["LISTEN_PID"] = str(os.getpid() + (100000 if mode == "otherpid" else 0))
os.execve(sys.argv[3], sys.argv[3:], env)
PY
ABSTRACT=@ts-notify-$$-$RANDOM
notify_reader "$ABSTRACT" "$T/notify2.log"
PORT=$(pick_port)
PORT2=$(pick_port)
LISTEN_JSON="[{\"address\": \"127.0.0.1:$PORT\", \"proxy_protocol\": true}, \"127.0.0.1:$PORT2\"]"
write_config
sed -i "s|\"listen\": \"127.0.0.1:$PORT\"|\"listen\": $LISTEN_JSON|" "$T/tessera.json"
spawn_server env NOTIFY_SOCKET="$ABSTRACT" python3 "$T/activate.py" tcp "$PORT" "$TS_BIN" --config "$T/tessera.json"
check "with an activated socket the server reports ready on an abstract NOTIFY_SOCKET" wait_until 10 grep -q '^READY=1|STATUS=listening on 1 socket from socket activation' "$T/notify2.log"
expect "it serves on the inherited socket, with its listen entry's proxy_protocol" \
    "$(tcurl --haproxy-protocol "$BASE/hello.txt")" hello
check "...so a client without the PROXY header is not served" sh -c "! curl -sS --http1.1 --max-time $((10 * MULT)) --cacert '$CERTS/ca.crt' --resolve 'localhost:$PORT:127.0.0.1' '$BASE/hello.txt'"
check "the listen entry no socket matches is not bound" sh -c "! (exec 3<>/dev/tcp/127.0.0.1/$PORT2) 2>/dev/null"
expect_match "...and said to be ignored" "$(cat "$T/error.log")" "listen: \"127\.0\.0\.1:$PORT2\": ignored, socket activation passed no socket for it"
expect_match "the socket is logged with its LISTEN_FDNAMES name" "$(cat "$T/error.log")" 'socket activation: descriptor 3 \(https\): tls, PROXY protocol'
stop_server
expect "the activated server exits 0" "$?" 0

PORT=$(pick_port)
write_config
oneshot python3 "$T/activate.py" udp "$PORT" "$TS_BIN" --config "$T/tessera.json" >"$T/udp.out"
expect "a UDP socket passed as a listener: exit 2" "$?" 2
expect_match "...naming the descriptor" "$(cat "$T/udp.out")" 'LISTEN_FDS: descriptor 3 is not a listening TCP socket'

PORT=$(pick_port)
PORT2=$(pick_port)
write_config # listen 127.0.0.1:$PORT; the socket passed is on $PORT2
spawn_server python3 "$T/activate.py" otherpid "$PORT2" "$TS_BIN" --config "$T/tessera.json"
expect "LISTEN_PID naming another process: the server binds its listen address" "$(tcurl "$BASE/hello.txt")" hello
expect_no_match "...and mentions no socket activation" "$(cat "$T/error.log")" 'socket activation'
stop_server
check_server_log

# --- the switch from root to "user"
if [ "$(id -u)" != 0 ] || ! id nobody >/dev/null 2>&1; then
    ok "# SKIP not running as root, or no user nobody"
else
    chmod 0755 "$T" # the site (read at run time) must be readable by nobody
    chmod -R a+rX "$T/www"
    mkdir -p "$T/logs"
    chown nobody "$T/logs"
    # the key stays readable by root only: it is loaded before the switch
    cp "$CERTS/server.key" "$T/root-only.key"
    chmod 0600 "$T/root-only.key"
    PORT=$(pick_port)
    TOP_EXTRA='"user": "nobody",' ACCESS_LOG=$T/logs/access.log write_config
    sed -i "s|$CERTS/server.key|$T/root-only.key|" "$T/tessera.json"
    ALLOWED_ERRORS='log.access: cannot reopen' spawn_server "$TS_BIN" --config "$T/tessera.json"
    st=/proc/$SERVER_PID/status
    uid=$(id -u nobody)
    gid=$(id -g nobody)
    expect "Uid: real, effective, saved and fs are nobody's" "$(awk '/^Uid:/ {print $2, $3, $4, $5}' "$st")" "$uid $uid $uid $uid"
    expect "Gid: all nobody's primary group" "$(awk '/^Gid:/ {print $2, $3, $4, $5}' "$st")" "$gid $gid $gid $gid"
    expect_no_match "Groups: no group of root's" "$(grep '^Groups:' "$st")" '[[:space:]]0([[:space:]]|$)'
    expect "CapPrm, CapEff, CapInh, CapAmb and CapBnd are empty" \
        "$(awk '/^Cap(Prm|Eff|Inh|Amb|Bnd):/ {print $2}' "$st" | sort -u)" 0000000000000000
    expect "NoNewPrivs is set" "$(awk '/^NoNewPrivs:/ {print $2}' "$st")" 1
    for t in "/proc/$SERVER_PID/task"/*; do
        [ "$(awk '/^Uid:/ {print $3}' "$t/status")" = "$uid" ] || echo "thread ${t##*/}"
    done >"$T/threads.out"
    expect "every thread runs as nobody" "$(cat "$T/threads.out")" ""
    expect "it serves a file" "$(tcurl "$BASE/hello.txt")" hello
    check "the access log opened before the switch is written" wait_until 5 grep -q 'hello.txt' "$T/logs/access.log"
    expect_match "the switch is logged" "$(cat "$T/error.log")" "running as user nobody \(uid $uid, gid $gid\)"
    expect_no_match "...with no warning about running as root" "$(cat "$T/error.log")" 'running as root'
    mv "$T/logs/access.log" "$T/logs/access.log.1"
    kill -USR1 "$SERVER_PID"
    check "SIGUSR1 after the switch: reopened in a directory nobody may write" wait_until 5 grep -q 'log files reopened' "$T/error.log"
    tcurl -o /dev/null "$BASE/dir/"
    check "...the new file gets the next line" wait_until 5 grep -q '"GET /dir/' "$T/logs/access.log"
    expect "...owned by nobody" "$(stat -c %U "$T/logs/access.log")" nobody
    chown root "$T/logs"
    chmod 0755 "$T/logs"
    mv "$T/logs/access.log" "$T/logs/access.log.2"
    kill -USR1 "$SERVER_PID"
    check "a reopen nobody may not do is an error line naming the key" wait_until 5 grep -q 'log.access: cannot reopen' "$T/error.log"
    tcurl -o /dev/null "$BASE/sub/deeper/file.txt"
    check "...and the old file keeps being written" wait_until 5 grep -q 'file.txt' "$T/logs/access.log.2"
    stop_server
    expect "the server exits 0" "$?" 0

    # started as nobody (setpriv): "user" may only name nobody, and then nothing changes
    if command -v setpriv >/dev/null; then
        cp "$CERTS/server.key" "$T/nobody.key"
        chown nobody "$T/nobody.key"
        PORT=$(pick_port)
        TOP_EXTRA='"user": "root",' ACCESS_LOG=$T/logs/access.nobody.log write_config
        sed -i "s|$CERTS/server.key|$T/nobody.key|; s|$CERTS/server.crt|$T/nobody.crt|" "$T/tessera.json"
        cp "$CERTS/server.crt" "$T/nobody.crt"
        chmod 0644 "$T/nobody.crt"
        chown nobody "$T/logs"
        as_nobody=(setpriv --reuid=nobody --regid="$gid" --clear-groups)
        oneshot "${as_nobody[@]}" "$TS_BIN" --config "$T/tessera.json" >"$T/notroot.out"
        expect "started as nobody with \"user\": \"root\": exit 2" "$?" 2
        expect_match "...naming the key" "$(cat "$T/notroot.out")" 'configuration error: user: "root": tessera runs as uid [0-9]+'
        sed -i 's|"user": "root",|"user": "nobody",|' "$T/tessera.json"
        spawn_server "${as_nobody[@]}" "$TS_BIN" --config "$T/tessera.json"
        expect "started as nobody with \"user\": \"nobody\": it serves" "$(tcurl "$BASE/hello.txt")" hello
        expect_no_match "...with no warning and no switch" "$(cat "$T/error.log")" 'running as (root|user)'
        stop_server
        expect "...and exits 0" "$?" 0
    else
        ok "# SKIP setpriv is not installed"
    fi

    PORT=$(pick_port)
    TOP_EXTRA='"user": "ts-no-such-user-x",' write_config
    oneshot "$TS_BIN" --config "$T/tessera.json" >"$T/nouser.out"
    expect "an unknown user: exit 2" "$?" 2
    expect_match "...naming the key" "$(cat "$T/nouser.out")" 'configuration error: user: "ts-no-such-user-x": no such user'
    TOP_EXTRA='"group": "nogroup",' write_config
    oneshot "$TS_BIN" --config "$T/tessera.json" >"$T/nogroup.out"
    expect "group without user: exit 2" "$?" 2
    expect_match "...naming the key" "$(cat "$T/nogroup.out")" 'configuration error: group: "nogroup" needs "user" as well'
    TOP_EXTRA='"user": "nobody", "group": "ts-no-such-group-x",' write_config
    oneshot "$TS_BIN" --config "$T/tessera.json" --check-config >"$T/check.out"
    expect "--check-config: an unknown group is an error" "$?" 2
    expect_match "...naming the key" "$(cat "$T/check.out")" 'configuration error: group: "ts-no-such-group-x": no such group'
    TOP_EXTRA='"user": "root",' write_config
    oneshot "$TS_BIN" --config "$T/tessera.json" --check-config >"$T/check.out"
    expect "--check-config: \"user\": \"root\" is an error" "$?" 2
    expect_match "...naming the key" "$(cat "$T/check.out")" 'configuration error: user: "root" is root'
    TOP_EXTRA='"user": "nobody", "group": "nogroup",' write_config
    oneshot "$TS_BIN" --config "$T/tessera.json" --check-config >"$T/check.out"
    expect "--check-config: user nobody, group nogroup are valid" "$?" 0
    PORT=$(pick_port)
    write_config
    spawn_server "$TS_BIN" --config "$T/tessera.json"
    expect_match "root without \"user\" serves, with one warning" "$(grep -c 'running as root' "$T/error.log")" '^1$'
    stop_server
    check_server_log
fi
exit $((FAILS > 0))
