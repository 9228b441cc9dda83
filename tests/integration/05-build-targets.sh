#!/usr/bin/env bash
# The make targets README names: `make` builds every tool (build/resume-load too), and
# `make certs` remakes the development PKI whenever a file of it is missing, not only ca.crl.
. "$(dirname "$0")/lib.sh"

OUT=$(make -C "$TS_TOP" -n -W bench/resume-load.c all 2>&1)
expect_match "make (all) builds build/resume-load" "$OUT" "-o build/resume-load bench/resume-load.c"
OUT=$(make -C "$TS_TOP" -n certs 2>&1)
expect_match "make certs always asks make-certs.sh (it knows what is missing)" "$OUT" "certs/make-certs.sh certs"

P=$T/pki
timeout $((120 * MULT)) "$TS_TOP/certs/make-certs.sh" "$P" >/dev/null
expect "make-certs.sh makes a new set" "$?" 0
before=$(sha256sum "$P/ca.crt")
OUT=$(timeout $((60 * MULT)) "$TS_TOP/certs/make-certs.sh" "$P")
expect "...and does nothing when all is there" "$OUT$(sha256sum "$P/ca.crt")" "$before"
rm -f "$P"/*.crt
timeout $((120 * MULT)) "$TS_TOP/certs/make-certs.sh" "$P" >/dev/null
n=0
for f in ca other-ca server client client-revoked client-expired client-notyet client-wrongpurpose client-other; do
    [ -f "$P/$f.crt" ] && n=$((n + 1))
done
expect "with *.crt deleted, every certificate is made again" "$n" 9
OUT=$(openssl verify -CAfile "$P/ca.crt" "$P/server.crt" "$P/client.crt" 2>&1 | tr "\n" " ")
expect_match "...chaining to the new CA" "$OUT" "server.crt: OK.*client.crt: OK"
rm -f "$P/client.key"
timeout $((120 * MULT)) "$TS_TOP/certs/make-certs.sh" "$P" >/dev/null
expect "a missing key is made again too" "$(ls "$P/client.key" 2>/dev/null | wc -l)" 1
OUT=$(openssl verify -CAfile "$P/ca.crt" -CRLfile "$P/ca.crl" -crl_check "$P/client-revoked.crt" 2>&1)
expect_match "...and the CRL revokes the new client-revoked" "$OUT" "revoked"

# the C sources are as `make format` leaves them (Debian's clang-format, the repository's
# .clang-format): an unformatted change fails here, in CI too
if command -v clang-format >/dev/null; then
    OUT=$(make -s -C "$TS_TOP" format-check 2>&1)
    expect "every C source is clang-format clean (make format-check)" "$?" 0
    if [ -n "$OUT" ]; then printf '%s\n' "$OUT" | head -20 | sed 's/^/# /'; fi
else
    not_ok "clang-format is installed (.ci/deps test installs clang)"
fi

# .ci/deps keeps package scripts from starting services while it installs (policy-rc.d
# answering 101, removed afterwards), and leaves one that was there alone: tried with stand-ins
# for dpkg-query (every package missing) and apt-get (which records what invoke-rc.d would get)
STANDIN=$T/standin
mkdir -p "$STANDIN"
printf '#!/bin/sh\nexit 1\n' >"$STANDIN/dpkg-query"
cat >"$STANDIN/apt-get" <<STANDIN_EOF
#!/bin/sh
[ "\$1" = install ] || exit 0
if [ -x "$T/policy-rc.d" ]; then "$T/policy-rc.d" nginx start; echo "policy=\$?" >>"$T/apt.log"
else echo "policy=none" >>"$T/apt.log"; fi
STANDIN_EOF
chmod +x "$STANDIN/dpkg-query" "$STANDIN/apt-get"
PATH=$STANDIN:$PATH POLICY_RC_D=$T/policy-rc.d timeout 60 "$TS_TOP/.ci/deps" bench 2>/dev/null
expect ".ci/deps: while it installs, services are not started (policy-rc.d answers 101)" "$(cat "$T/apt.log" 2>/dev/null)" "policy=101"
expect "...and its policy-rc.d is gone afterwards" "$(ls "$T/policy-rc.d" 2>/dev/null | wc -l)" 0
printf '#!/bin/sh\nexit 0\n' >"$T/policy-rc.d"
chmod +x "$T/policy-rc.d"
: >"$T/apt.log"
PATH=$STANDIN:$PATH POLICY_RC_D=$T/policy-rc.d timeout 60 "$TS_TOP/.ci/deps" bench 2>/dev/null
expect "...a policy-rc.d already there is left as it was" "$(cat "$T/apt.log") $(grep -c 'exit 0' "$T/policy-rc.d")" "policy=0 1"
