#!/usr/bin/env bash
# The access log on a disk that fills up and then has room again (a 64 KiB tmpfs): a line the
# disk takes only part of is cut off again, so the file holds whole lines only, the next line
# never joins a half one, and the bytes the error log counts as lost are exactly those of the
# lines missing from the file. Combined format: a line's length is known from its target, so
# the count can be checked to the byte.
. "$(dirname "$0")/lib.sh"
make_site

if [ "$(id -u)" != 0 ]; then
    ok "a full disk under the access log # SKIP not running as root: cannot mount a tmpfs"
    exit 0
fi
D=$T/disk
mkdir -p "$D"
if ! mount -t tmpfs -o size=64k,mode=0755 tessera-test "$D" 2>"$T/mount.err"; then
    ok "a full disk under the access log # SKIP cannot mount a tmpfs: $(head -1 "$T/mount.err")"
    exit 0
fi
# unmounted whatever happens, before cleanup removes $T (lazily: a server still running keeps
# its log open there until cleanup stops it)
trap 'umount "$D" 2>/dev/null || umount -l "$D" 2>/dev/null; cleanup' EXIT

WORKERS=2 ACCESS_LOG=$D/access.log ALLOWED_ERRORS='access log: write failed \(No space left on device\)' \
    start_server || exit 1
# load PHASE COUNT: COUNT requests from 2 clients at once (each its own keep-alive connection,
# so both workers write), targets /hello.txt?PHASE-CLIENT-I
load() {
    local c pids=()
    for c in 1 2; do
        tcurl -w '%{http_code}\n' -o /dev/null "$BASE/hello.txt?$1-$c-[1-$2]" >"$T/load.$1.$c" &
        pids+=($!)
    done
    wait "${pids[@]}"
    expect "$1: $(($2 * 2)) requests answered 200" "$(cat "$T/load.$1".[12] | grep -c '^200$')" $(($2 * 2))
}
has_lines() { [ "$(wc -l <"$D/access.log")" -ge "$1" ]; }
ends_whole() { [ "$(tail -c 1 "$D/access.log" | od -An -c | tr -d ' ')" = '\n' ]; }

load before 10
wait_until 10 has_lines 20
# the disk filled: whatever room is left in the access log's last page, then none
dd if=/dev/zero of="$D/filler" bs=4096 count=64 2>/dev/null
expect "the disk is full" "$(df --output=avail "$D" | tail -1 | tr -d ' ')" 0
load full 40
wait_until 10 grep -q 'access log: write failed' "$T/error.log"
expect_match "a write failure is reported with its cause and the count so far" "$(cat "$T/error.log")" \
    '\[error\] access log: write failed \(No space left on device\); [0-9]+ bytes of access log lost so far \([0-9]+ lines\)'
wait_until 5 ends_whole
check "while the disk is full the file ends with a whole line" ends_whole
# room again
rm -f "$D/filler"
load after 10
stop_server
expect "the server exits 0" "$?" 0

# every line whole, each request logged at most once, and the bytes counted lost are those of
# the lines missing: a line's length is the length of any other with its target swapped in
R=$(python3 - "$D/access.log" "$T/error.log" <<'PY'
import re, sys
data = open(sys.argv[1], "rb").read().decode("latin-1")
err = open(sys.argv[2]).read()
line_re = re.compile(r'^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] '
                     r'"GET (/hello\.txt\?[a-z]+-\d-\d+) HTTP/1\.1" 200 6 "-" "curl/[^"]+"$')
seen, bad, model = {}, 0, None
for line in data.split("\n")[:-1]:
    m = line_re.match(line)
    if not m:
        bad += 1
        continue
    seen[m.group(1)] = seen.get(m.group(1), 0) + 1
    model = model or (line, m.group(1))
want = ["/hello.txt?%s-%d-%d" % (p, c, i) for p, n in (("before", 10), ("full", 40), ("after", 10))
        for c in (1, 2) for i in range(1, n + 1)]
missing = [t for t in want if t not in seen]
size = lambda t: len(model[0]) - len(model[1]) + len(t) + 1
total = re.findall(r"access log: (\d+) bytes lost in all \((\d+) lines\)", err)
print("bad=%d dup=%d unterminated=%d" % (bad, sum(1 for v in seen.values() if v > 1),
      0 if data.endswith("\n") else 1))
print("missing_before_after=%d" % sum(1 for t in missing if "full" not in t))
print("missing=%d" % len(missing))
print("lost_bytes_expected=%d lost_lines_expected=%d" % (sum(map(size, missing)), len(missing)))
print("lost_bytes_reported=%s lost_lines_reported=%s" % (total[-1] if total else ("none", "none")))
PY
)
echo "$R" | sed 's/^/# /'
field() { echo "$R" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
expect "every line in the file is whole, once, and the file ends with one" \
    "$(echo "$R" | head -1)" "bad=0 dup=0 unterminated=0"
expect "lines were lost only while the disk was full" "$(field missing_before_after)" 0
if [ "$(field missing)" -gt 0 ]; then ok "some lines were lost ($(field missing))"; else
    not_ok "no line was lost: the disk did not fill as the test meant"
fi
expect "the bytes the error log counts lost at the stop are those of the missing lines" \
    "$(field lost_bytes_reported) $(field lost_lines_reported)" \
    "$(field lost_bytes_expected) $(field lost_lines_expected)"
check_server_log
umount "$D" || umount -l "$D"
