# shellcheck shell=bash
# Shared helpers for integration tests: a temporary directory, a free port, a config and site,
# starting and stopping the real server by PID, and TAP-style checks. Sourced by each test.
set -u
: "${TS_BIN:?run through tests/run.sh}" "${TS_CERTS:?run through tests/run.sh}"
T=$(mktemp -d /tmp/ts-it.XXXXXX)
CERTS=$TS_CERTS
MULT=${TS_TIMEOUT_MULT:-1}
PORT=0
SERVER_PID=
READER_PID=
PIDS=()
FAILS=0
# Every server started through spawn_server (start_server uses it) gets its own error log,
# $T/error.N.log ($T/error.log links to the latest one); check_server_log reads them all.
# Per server: its log files, the errors allowed in them, its PID and exit status.
LOGS=()
LOG_ALLOW=()
LOG_PID=()
LOG_RC=()
LOG_DONE=()
SERVER_IDX=

cleanup() {
    local p i
    # servers the script left running are stopped like stop_server does, to record their
    # exit status and let the sanitizers write their reports at exit
    for i in "${!LOGS[@]}"; do
        if [ -z "${LOG_DONE[$i]}" ] && [ -z "${LOG_RC[$i]}" ] && kill -0 "${LOG_PID[$i]}" 2>/dev/null; then
            SERVER_PID=${LOG_PID[$i]} SERVER_IDX=$i
            stop_server
        fi
    done
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
    done
    # a server whose log no check_server_log has read (the script forgot, or stopped early)
    local unchecked=
    for i in "${!LOGS[@]}"; do [ -n "${LOG_DONE[$i]}" ] || unchecked=1; done
    [ -f "$T/oneshot.log" ] && [ "$(wc -l <"$T/oneshot.log")" -gt "$ONESHOT_SEEN" ] && unchecked=1
    if [ -n "$unchecked" ]; then
        echo "# some server logs were never checked: checking them at exit"
        check_server_log
    fi
    if [ "$FAILS" -eq 0 ]; then rm -rf "$T"; else echo "# kept $T for inspection"; fi
}
trap cleanup EXIT

ok() { echo "ok - $*"; }
not_ok() {
    echo "not ok - $*"
    FAILS=$((FAILS + 1))
}
# check DESCRIPTION COMMAND...: passes when the command succeeds
check() {
    local desc=$1
    shift
    if "$@" >"$T/last.out" 2>&1; then ok "$desc"; else
        not_ok "$desc"
        sed 's/^/#   /' "$T/last.out" | head -20
    fi
}
# expect DESCRIPTION ACTUAL EXPECTED
expect() {
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (got '$2', expected '$3')"; fi
}
# expect_match DESCRIPTION ACTUAL EXTENDED-REGEX
expect_match() {
    if printf '%s' "$2" | grep -qE -- "$3"; then ok "$1"; else
        not_ok "$1 (no match for /$3/)"
        printf '%s\n' "$2" | head -20 | sed 's/^/#   /'
    fi
}
# expect_no_match DESCRIPTION ACTUAL EXTENDED-REGEX
expect_no_match() {
    if printf '%s' "$2" | grep -qE -- "$3"; then
        not_ok "$1 (unexpected match for /$3/)"
        printf '%s\n' "$2" | grep -E -- "$3" | head -5 | sed 's/^/#   /'
    else ok "$1"; fi
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pick_port() {
    local p
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % 40000))
        if ! ss -Htan "sport = :$p" 2>/dev/null | grep -q .; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# A small site every test can use.
make_site() {
    local w=$T/www
    mkdir -p "$w/dir" "$w/sub/deeper"
    printf '<!DOCTYPE html><title>home</title><p>home page</p>\n' >"$w/index.html"
    printf 'body { color: #222 }\n' >"$w/style.css"
    printf 'dir index\n' >"$w/dir/index.html"
    printf 'deep\n' >"$w/sub/deeper/file.txt"
    printf 'hello\n' >"$w/hello.txt"
    : >"$w/empty.txt"
}

# Writes $T/tessera.json. Variables: WORKERS, TLS_EXTRA (", \"key\": value" inside "tls"),
# TOP_EXTRA ("\"key\": value," at the top level), TIMEOUTS, LIMITS, LOG_LEVEL, ACCESS_LOG,
# LOG_EXTRA (", \"key\": value" inside "log").
write_config() {
    local timeouts=${TIMEOUTS:-'"shutdown_s": 1'} limits=${LIMITS:-'"max_connections": 8192'}
    cat >"$T/tessera.json" <<JSON
{
    ${TOP_EXTRA:-}
    "listen": "${LISTEN:-127.0.0.1:$PORT}",
    "root": "$T/www",
    "workers": ${WORKERS:-2},
    "tls": {
        "certificate": "$CERTS/server.crt",
        "key": "$CERTS/server.key"
        ${TLS_EXTRA:-}
    },
    "timeouts": { $timeouts },
    "limits": { $limits },
    "log": { "access": "${ACCESS_LOG:-$T/access.log}", "error": "-", "level": "${LOG_LEVEL:-info}" ${LOG_EXTRA:-} }
}
JSON
}

# spawn_server COMMAND...: runs the server (COMMAND is "$TS_BIN" ..., possibly behind a
# wrapper that execs it, such as setpriv, prlimit or valgrind) in the background with its own
# error log and stdout ($T/error.N.log, $T/stdout.N.log; $T/error.log and $T/stdout.log link to
# them), and waits (START_WAIT tenths of a second, bounded) until $PORT accepts connections.
# Sets SERVER_PID and BASE. ALLOWED_ERRORS set for this call are the error lines allowed in
# this server's log only. With STDOUT_PIPE (a command line, run by bash) the server's stdout is
# a named pipe, $T/stdout.N.fifo, read by that command, whose own stdout is $T/stdout.N.log;
# READER_PID is its PID (wait_reader). Returns 1 if the server exited or never listened.
spawn_server() {
    local n=${#LOGS[@]} i
    SERVER_IDX=$n
    LOGS[n]=$T/error.$n.log
    LOG_ALLOW[n]=${ALLOWED_ERRORS:-}
    LOG_RC[n]=
    LOG_DONE[n]=
    ln -sfn "error.$n.log" "$T/error.log"
    ln -sfn "stdout.$n.log" "$T/stdout.log"
    if [ -n "${STDOUT_PIPE:-}" ]; then
        rm -f "$T/stdout.$n.fifo"
        mkfifo "$T/stdout.$n.fifo" || return 1
        # each side's open of the pipe waits for the other's
        bash -c "$STDOUT_PIPE" <"$T/stdout.$n.fifo" >"$T/stdout.$n.log" &
        READER_PID=$!
        PIDS+=("$READER_PID")
        "$@" >"$T/stdout.$n.fifo" 2>"$T/error.$n.log" &
    else
        "$@" >"$T/stdout.$n.log" 2>"$T/error.$n.log" &
    fi
    SERVER_PID=$!
    LOG_PID[n]=$SERVER_PID
    PIDS+=("$SERVER_PID")
    BASE=https://localhost:$PORT
    for i in $(seq 1 "${START_WAIT:-$((100 * MULT))}"); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
        if port_in_use "$PORT"; then return 0; fi
        sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then echo "# server did not start listening"; else
        wait "$SERVER_PID"
        LOG_RC[n]=$?
        SERVER_PID=
        echo "# server exited at start with status ${LOG_RC[n]}"
    fi
    sed 's/^/#   /' "$T/error.$n.log"
    return 1
}

# oneshot COMMAND...: runs the server binary in the foreground, possibly behind a wrapper
# (--check-config, --help, a configuration it must refuse), bounded in time, and prints what it
# wrote to stdout and stderr. That output is also kept in $T/oneshot.log, where
# check_server_log looks for sanitizer reports. Returns the command's status.
ONESHOT_SEEN=0
oneshot() {
    local rc
    timeout -k 5 $((30 * MULT)) "$@" >"$T/oneshot.out" 2>&1
    rc=$?
    cat "$T/oneshot.out"
    { printf '### %s\n' "$*"; cat "$T/oneshot.out"; } >>"$T/oneshot.log"
    return $rc
}

# watch_log FILE: FILE is also a log of the server started last (a "log.error" file of its
# own configuration): check_server_log reads it with that server's log.
watch_log() { LOGS[SERVER_IDX]+=" $1"; }

# start_server [ARGS...]: picks a port, writes the config, starts the server and waits until
# it accepts connections. Sets PORT, SERVER_PID, BASE.
start_server() {
    local attempt
    for attempt in 1 2 3; do
        PORT=$(pick_port) || return 1
        write_config
        spawn_server "$TS_BIN" --config "$T/tessera.json" "$@" >"$T/spawn.out" && return 0
        # a port taken between pick_port and bind: try another; anything else is fatal
        if [ -n "$SERVER_PID" ] || ! grep -q "Address already in use" "$T/error.log"; then break; fi
        LOG_DONE[SERVER_IDX]=retried
    done
    cat "$T/spawn.out"
    return 1
}

# stop_server [SIGNAL]: stops the server, waits (STOP_WAIT tenths of a second, bounded) and
# returns its exit status, which check_server_log also checks.
stop_server() {
    local sig=${1:-TERM} i rc
    [ -n "$SERVER_PID" ] || return 0
    kill "-$sig" "$SERVER_PID" 2>/dev/null
    for i in $(seq 1 "${STOP_WAIT:-$((100 * MULT))}"); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null
        rc=124
    else
        wait "$SERVER_PID"
        rc=$?
    fi
    [ "${LOG_PID[SERVER_IDX]:-}" = "$SERVER_PID" ] && LOG_RC[SERVER_IDX]=$rc
    SERVER_PID=
    return $rc
}

# wait_reader: waits (READER_WAIT tenths of a second, bounded) until the STDOUT_PIPE reader of
# the server started last has read the end of its pipe (once the server has exited) and exited;
# returns its exit status, 124 if it had to be killed.
wait_reader() {
    local i
    [ -n "${READER_PID:-}" ] || return 0
    for i in $(seq 1 "${READER_WAIT:-$((100 * MULT))}"); do
        kill -0 "$READER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$READER_PID" 2>/dev/null; then
        kill -KILL "$READER_PID"
        wait "$READER_PID" 2>/dev/null
        READER_PID=
        return 124
    fi
    wait "$READER_PID"
    i=$?
    READER_PID=
    return $i
}

# check_server_log: fails the test on sanitizer reports or [error] lines in the log of any
# server started since the last check (each server's own ALLOWED_ERRORS, and those given to
# this call, are allowed), on a server that exited with a status other than 0 when stopped,
# and on a server that died on its own. Logs of servers that have exited are read once; a
# server still running is read again at the next check.
check_server_log() {
    local i f bad= b n=0
    for i in "${!LOGS[@]}"; do
        [ -z "${LOG_DONE[$i]}" ] || continue
        n=$((n + 1))
        for f in ${LOGS[$i]}; do
            [ -f "$f" ] || continue
            b=$(grep -aE 'AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:|\[error\]' "$f" |
                grep -avE "${LOG_ALLOW[$i]:-^$}" | grep -avE "${ALLOWED_ERRORS:-^$}" | head -5)
            [ -z "$b" ] || bad+="${f##*/}:"$'\n'"$b"$'\n'
        done
        if [ -n "${LOG_RC[$i]}" ]; then
            [ "${LOG_RC[$i]}" = 0 ] || bad+="server $i (${LOGS[$i]##*/}) exited with status ${LOG_RC[$i]}"$'\n'
            LOG_DONE[i]=1
        elif ! kill -0 "${LOG_PID[$i]}" 2>/dev/null; then
            wait "${LOG_PID[$i]}" 2>/dev/null
            bad+="server $i (${LOGS[$i]##*/}) died before it was stopped (status $?)"$'\n'
            LOG_DONE[i]=1
        fi
    done
    if [ -f "$T/oneshot.log" ]; then
        b=$(tail -n +$((ONESHOT_SEEN + 1)) "$T/oneshot.log" |
            grep -aE 'AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:' | head -5)
        [ -z "$b" ] || bad+="foreground runs (oneshot.log):"$'\n'"$b"$'\n'
        ONESHOT_SEEN=$(wc -l <"$T/oneshot.log")
    fi
    if [ -z "$bad" ]; then ok "server logs ($n) have no errors or sanitizer reports"; else
        not_ok "server logs have errors or sanitizer reports"
        printf '%s' "$bad" | head -20 | sed 's/^/#   /'
    fi
}

# wait_until SECONDS COMMAND...: runs COMMAND every 0.1 s until it succeeds, for at most
# SECONDS x TS_TIMEOUT_MULT; returns its last status. For what the server does just after a
# response (a log line, a close counted) instead of a fixed sleep; assert the state after it.
wait_until() {
    local n=$(($1 * 10 * MULT))
    shift
    for _ in $(seq 1 "$n"); do
        "$@" && return 0
        sleep 0.1
    done
    "$@"
}

# HTTP/1.1 unless the caller asks for --http2 (a later option wins): the tests written for the
# HTTP/1.1 wire format keep testing it now that the server offers h2 (63-http2 covers h2).
tcurl() {
    curl -sS --http1.1 --max-time $((20 * MULT)) --cacert "$CERTS/ca.crt" \
        --resolve "localhost:$PORT:127.0.0.1" "$@"
}

probe() {
    local mode=$1
    shift
    timeout $((120 * MULT)) "$TS_PROBE" "$mode" --port "$PORT" --cafile "$CERTS/ca.crt" \
        --timeout-ms $((5000 * MULT)) "$@"
}

# value of KEY in tlsprobe's key=value output
kv() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }

# raw_request 'BYTES' : sends bytes over TLS, prints the whole response (until close)
raw_request() {
    printf '%b' "$1" | timeout $((10 * MULT)) openssl s_client -quiet -ign_eof -connect "127.0.0.1:$PORT" \
        -servername localhost -CAfile "$CERTS/ca.crt" 2>/dev/null
}

# A self-signed P-256 certificate padded with about BYTES of junk in a private extension
# (to test chains and client certificates that are too big): $T/NAME.crt and $T/NAME.key.
big_cert() { # name bytes
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$1.key" \
        -out "$T/$1.crt" -days 2 -subj "/CN=$1" \
        -addext "1.2.3.4=ASN1:UTF8String:$(head -c "$2" /dev/zero | tr '\0' A)" 2>/dev/null
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
fd_count() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
