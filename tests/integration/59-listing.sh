#!/usr/bin/env bash
# Directory listings of large directories: thousands of long names (glibc hands readdir records
# only as long as the name needs), the 10000-entry cap, sorting and escaping still right.
. "$(dirname "$0")/lib.sh"
make_site
W=$T/www
mkdir -p "$W/big/zdir" "$W/huge"
# 3000 names of 150 to 249 bytes: records of many lengths, so some end right at the end of
# glibc's readdir buffer (a copy of a whole struct dirent from one reads past it)
pad=$(printf 'n%.0s' $(seq 1 250))
for i in $(seq 1 3000); do
    : >"$W/big/f$(printf '%05d' "$i")-${pad:0:$((145 + i % 100))}"
done
: >"$W/big/.hidden"
: >"$W/big/a&b<c>.txt"
(cd "$W/huge" && seq -f 'h%05g' 1 10050 | xargs touch)
TOP_EXTRA='"locations": [ { "path": "/big/", "autoindex": true }, { "path": "/huge/", "autoindex": true } ],' \
    start_server || exit 1

code=$(tcurl -o "$T/b" -w '%{http_code}' "$BASE/big/")
expect "a listing of 3000 long names -> 200" "$code" 200
expect "...every entry listed" "$(grep -c 'href="f[0-9]\{5\}-n*"' "$T/b")" 3000
expect_match "...sorted, directories first" "$(tr '\n' ' ' <"$T/b")" 'href="zdir/">zdir/</a>.*href="a%26b%3Cc%3E.txt">a&amp;b&lt;c&gt;.txt</a>.*href="f00001-n{146}">.*href="f03000-n{145}"'
expect_no_match "...no hidden files" "$(cat "$T/b")" 'hidden'
code=$(tcurl -o "$T/b" -w '%{http_code}' "$BASE/huge/")
expect "a directory of 10050 files -> 200" "$code" 200
expect "...capped at 10000 entries" "$(grep -c 'href="h[0-9]*"' "$T/b")" 10000
expect "the server still answers" "$(tcurl "$BASE/hello.txt")" hello
stop_server
expect "server exits 0" "$?" 0
check_server_log
