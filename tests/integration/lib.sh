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
PIDS=()
FAILS=0

cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
    done
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

# start_server [ARGS...]: picks a port, writes the config, starts the server and waits until
# it accepts connections. Sets PORT, SERVER_PID, BASE.
start_server() {
    local attempt
    for attempt in 1 2 3; do
        PORT=$(pick_port) || return 1
        write_config
        [ -f "$T/error.log" ] && cat "$T/error.log" >>"$T/error.all"
        "$TS_BIN" --config "$T/tessera.json" "$@" >"$T/stdout.log" 2>"$T/error.log" &
        SERVER_PID=$!
        PIDS+=("$SERVER_PID")
        BASE=https://localhost:$PORT
        local i
        for i in $(seq 1 $((100 * MULT))); do
            if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
            if port_in_use "$PORT"; then return 0; fi
            sleep 0.1
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "# server did not start listening"
            cat "$T/error.log" | sed 's/^/#   /'
            return 1
        fi
        grep -q "Address already in use" "$T/error.log" || break
    done
    echo "# server exited at start:"
    sed 's/^/#   /' "$T/error.log"
    return 1
}

# stop_server [SIGNAL]: stops the server, waits (bounded) and returns its exit status.
stop_server() {
    local sig=${1:-TERM} i
    [ -n "$SERVER_PID" ] || return 0
    kill "-$sig" "$SERVER_PID" 2>/dev/null
    for i in $(seq 1 $((100 * MULT))); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null
        SERVER_PID=
        return 124
    fi
    wait "$SERVER_PID"
    local rc=$?
    SERVER_PID=
    return $rc
}

# Fails the test on sanitizer reports or unexpected error lines in the server's error log.
check_server_log() {
    local bad
    touch "$T/error.all" "$T/error.log"
    bad=$(cat "$T/error.all" "$T/error.log" |
        grep -E 'AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:|\[error\]' |
        grep -vE "${ALLOWED_ERRORS:-^$}" | head -5)
    if [ -z "$bad" ]; then ok "server log has no errors or sanitizer reports"; else
        not_ok "server log has errors or sanitizer reports"
        printf '%s\n' "$bad" | sed 's/^/#   /'
    fi
}

tcurl() {
    curl -sS --max-time $((20 * MULT)) --cacert "$CERTS/ca.crt" \
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

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
fd_count() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
