#!/usr/bin/env bash
# Path safety: traversal with ../, %2e%2e, encoded slashes, NUL bytes and symlinks that lead
# outside the root never serve anything from outside it.
. "$(dirname "$0")/lib.sh"
make_site
mkdir -p "$T/outside"
printf 'TOP-SECRET\n' >"$T/outside/secret.txt"
printf 'TOP-SECRET\n' >"$T/secret-sibling.txt"
ln -s "$T/outside" "$T/www/link-out"           # absolute symlink to a directory outside
ln -s ../outside/secret.txt "$T/www/rel-out"    # relative symlink to a file outside
ln -s hello.txt "$T/www/link-in"                # symlink that stays inside
ln -s /etc/passwd "$T/www/passwd"
mkdir -p "$T/www/evil.example" "$T/www/\\evil.example" "$T/www/sp ace%?#\\é"
start_server || exit 1

# attempt DESCRIPTION PATH STATUS: the answer is exactly STATUS (not curl's 000 of a crash or
# a hang) and carries nothing from outside the root
attempt() {
    local code
    rm -f "$T/body"
    code=$(tcurl --path-as-is -o "$T/body" -w '%{http_code}' "$BASE$2")
    if grep -q -e TOP-SECRET -e 'root:' "$T/body" 2>/dev/null; then
        not_ok "$1: served content from outside the root ($2)"
    elif [ "$code" != "$3" ]; then
        not_ok "$1: $2 -> $code, expected $3"
    else
        ok "$1 -> $code"
    fi
}
# ".." above the root, encoded slashes and NUL are refused as bad paths (400); what decodes to
# a plain (missing) name, and symlinks leading outside, are not found (404)
attempt "plain ../" "/../secret-sibling.txt" 400
attempt "deep ../" "/../../../../../../etc/passwd" 400
attempt "../ after a directory" "/dir/../../secret-sibling.txt" 400
attempt "encoded dots" "/%2e%2e/secret-sibling.txt" 400
attempt "mixed encoded dots" "/.%2e/%2E./secret-sibling.txt" 400
attempt "encoded slash" "/..%2fsecret-sibling.txt" 400
attempt "encoded slash inside a name" "/dir%2f..%2f..%2fsecret-sibling.txt" 400
attempt "encoded backslash dots (one name with backslashes)" "/..%5c..%5csecret-sibling.txt" 404
attempt "NUL byte" "/hello.txt%00.html" 400
attempt "absolute symlink to a directory outside" "/link-out/secret.txt" 404
attempt "relative symlink to a file outside" "/rel-out" 404
attempt "symlink to /etc/passwd" "/passwd" 404
attempt "double-encoded dots (a name %2e%2e)" "/%252e%252e/secret-sibling.txt" 404
attempt "a symlink to a directory outside, listed" "/link-out/" 404
if kill -0 "$SERVER_PID" 2>/dev/null; then ok "the server is alive after the attempts"; else not_ok "the server died"; fi

expect "encoded slash is 400" "$(tcurl --path-as-is -o /dev/null -w '%{http_code}' "$BASE/dir%2findex.html")" 400
expect "NUL byte is 400" "$(tcurl --path-as-is -o /dev/null -w '%{http_code}' "$BASE/hello.txt%00")" 400
expect ".. above the root is 400" "$(tcurl --path-as-is -o /dev/null -w '%{http_code}' "$BASE/../x")" 400
expect "escaping symlink is 404" "$(tcurl -o /dev/null -w '%{http_code}' "$BASE/rel-out")" 404
expect "a symlink inside the root is served" "$(tcurl "$BASE/link-in")" "hello"
expect ".. that stays inside the root is served" "$(tcurl --path-as-is "$BASE/dir/../hello.txt")" "hello"
expect "encoded dots that stay inside are served" "$(tcurl --path-as-is "$BASE/dir/%2e%2e/hello.txt")" "hello"

# raw bytes the URL parser must refuse (control characters in the target)
R=$(raw_request 'GET /hello.txt\x01 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
expect_match "control byte in the target is 400" "$R" "^HTTP/1.1 400"

# the slash redirect: Location is the resolved path, percent-encoded, plus the query
location() { # raw target -> the Location header (or the status line when there is none)
    local r
    r=$(raw_request "GET $1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" | tr -d '\r')
    if printf '%s\n' "$r" | grep -q '^Location: '; then
        printf '%s\n' "$r" | sed -n 's/^Location: //p'
    else printf '%s\n' "$r" | head -1; fi
}
expect "//host/../dir -> /dir/, not another host" "$(location '//evil.example/../dir')" "/dir/"
expect "/\\host/../dir -> /dir/" "$(location '/\\evil.example/../dir')" "/dir/"
expect "//host that is a directory -> /host/" "$(location '//evil.example')" "/evil.example/"
expect "///dir -> /dir/" "$(location '///dir')" "/dir/"
expect "/\\name that is a directory -> its backslash encoded" "$(location '/\\evil.example')" "/%5Cevil.example/"
expect "/%5Cname -> the same" "$(location '/%5Cevil.example')" "/%5Cevil.example/"
expect "/%5C%5Chost/../dir -> /dir/" "$(location '/%5C%5Cevil.example/../dir')" "/dir/"
expect "/%2F%2Fhost/../dir -> 400, no redirect" "$(location '/%2F%2Fevil.example/../dir')" "HTTP/1.1 400 Bad Request"
expect "a name with space, %, ?, #, \\ and UTF-8 is encoded; the query is kept" \
    "$(location '/sp%20ace%25%3F%23%5C%C3%A9?x=1&y=%20z&p=/a?b')" "/sp%20ace%25%3F%23%5C%C3%A9/?x=1&y=%20z&p=/a?b"
expect "a query with a backslash: encoded" "$(location '/dir?a\\b')" '/dir/?a%5Cb'
expect "dot segments are resolved first" "$(location '/sub/./../dir?q')" "/dir/?q"
expect "the redirect leads to the directory" "$(tcurl "$BASE$(location '//evil.example/../dir')")" "dir index"

stop_server
expect "server exits 0" "$?" 0
check_server_log
