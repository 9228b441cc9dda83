#!/usr/bin/env bash
# Large files are streamed in chunks: byte-exact, with flat server memory, also to several
# clients at once and to a slow reader.
. "$(dirname "$0")/lib.sh"
make_site
head -c $((50 * 1024 * 1024)) /dev/urandom >"$T/www/big.bin"
head -c $((3 * 1024 * 1024 + 17)) /dev/urandom >"$T/www/odd.bin"
want=$(sha256sum <"$T/www/big.bin" | cut -d' ' -f1)
start_server || exit 1

tcurl -o /dev/null "$BASE/hello.txt"
base_hwm=$(hwm_kb "$SERVER_PID")
got=$(tcurl "$BASE/big.bin" | sha256sum | cut -d' ' -f1)
expect "50 MB file arrives byte-exact" "$got" "$want"
expect "odd-sized file arrives byte-exact" "$(tcurl "$BASE/odd.bin" | sha256sum | cut -d' ' -f1)" "$(sha256sum <"$T/www/odd.bin" | cut -d' ' -f1)"
par=()
for i in 1 2 3 4; do
    (tcurl "$BASE/big.bin" | sha256sum | cut -d' ' -f1 >"$T/par.$i") &
    par+=($!)
done
wait "${par[@]}"
n=$(cat "$T"/par.* | grep -c "$want")
expect "four parallel 50 MB downloads arrive byte-exact" "$n" 4
hwm=$(hwm_kb "$SERVER_PID")
grow=$((hwm - base_hwm))
echo "# peak RSS grew by ${grow} KiB while serving 5 x 50 MB"
if [ "$grow" -lt $((16 * 1024 * MULT)) ]; then ok "memory stays flat while streaming (${grow} KiB growth)"; else not_ok "peak RSS grew by ${grow} KiB"; fi
expect "HEAD of the large file gives its length" "$(tcurl -I "$BASE/big.bin" | tr -d '\r' | sed -n 's/^Content-Length: //p')" $((50 * 1024 * 1024))

# a slow reader keeps its connection as long as it makes progress
got=$(tcurl --limit-rate 2M "$BASE/odd.bin" | sha256sum | cut -d' ' -f1)
expect "a slow reader (2 MB/s) gets the whole file" "$got" "$(sha256sum <"$T/www/odd.bin" | cut -d' ' -f1)"
stop_server
expect "server exits 0" "$?" 0
check_server_log
