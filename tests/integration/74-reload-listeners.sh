#!/usr/bin/env bash
# A reload that keeps a listener while the listeners around it change (one before it removed,
# one added before a redirecting one) still accepts on it: the kept socket must be found
# under its place in the new set, not under the one it had before the reload. A listener
# replaced by the wildcard address of its port (and back) is no "address in use".
. "$(dirname "$0")/lib.sh"
make_site

P2=$(pick_port) || exit 1
R=$(pick_port) || exit 1
# listen_config "ADDR", "ADDR"...: the listen list, and the http_redirect listener on $R
listen_config() {
    write_config
    sed -i "s|\"listen\": \"127.0.0.1:$PORT\"|\"listen\": [$1], \"http_redirect\": { \"listen\": \"127.0.0.1:$R\" }|" \
        "$T/tessera.json"
}
loaded() { [ "$(grep -c 'configuration generation .* loaded' "$T/error.log")" -ge "$1" ]; }
get() { # PORT: the status of / on that TLS port
    curl -sS -o /dev/null -w '%{http_code}' --max-time $((5 * MULT)) --cacert "$CERTS/ca.crt" \
        --resolve "localhost:$1:127.0.0.1" "https://localhost:$1/"
}
redirect() {
    curl -sS -o /dev/null -w '%{http_code}' --max-time $((5 * MULT)) "http://127.0.0.1:$R/x"
}

start_server || exit 1
listen_config "\"127.0.0.1:$PORT\", \"127.0.0.1:$P2\""
kill -HUP "$SERVER_PID"
wait_until 10 loaded 1
expect "both listeners answer" "$(get "$PORT") $(get "$P2") $(redirect)" "200 200 301"

# the first listener goes: the second becomes the first of the set
listen_config "\"127.0.0.1:$P2\""
kill -HUP "$SERVER_PID"
wait_until 10 loaded 2
expect "the kept listener answers after the one before it was removed" "$(get "$P2")" "200"
expect "the redirect listener answers after the TLS set shrank" "$(redirect)" "301"

# one more TLS listener: the redirecting one moves one place on
listen_config "\"127.0.0.1:$PORT\", \"127.0.0.1:$P2\""
kill -HUP "$SERVER_PID"
wait_until 10 loaded 3
expect "every listener answers after one was added before them" \
    "$(get "$PORT") $(get "$P2") $(redirect)" "200 200 301"

# a specific address replaced by the wildcard that covers it, on the same port: the check for
# an address in use (73-listen-in-use) would find this process's own listener, so it is not
# made, and the reload binds it as it always did
listen_config "\"127.0.0.1:$PORT\", \"0.0.0.0:$P2\""
kill -HUP "$SERVER_PID"
wait_until 10 loaded 4
expect "127.0.0.1:P replaced by 0.0.0.0:P: the reload is done, every listener answers" \
    "$(grep -c 'reload failed' "$T/error.log") $(get "$PORT") $(get "$P2") $(redirect)" "0 200 200 301"
listen_config "\"127.0.0.1:$PORT\", \"127.0.0.1:$P2\""
kill -HUP "$SERVER_PID"
wait_until 10 loaded 5
expect "...and back" "$(grep -c 'reload failed' "$T/error.log") $(get "$P2")" "0 200"

stop_server
check_server_log
