#!/bin/sh
# Makes the development PKI: a CA, the server certificate and the client certificates
# used by the client-auth demos and tests. Usage: certs/make-certs.sh [DIR] (default: certs/)
# When every file is there nothing is done; when any is missing (delete DIR/*.crt to start
# again), the whole set is made anew, since each certificate must chain to the same CA and the
# CRL must name the revoked one. Keys are ECDSA P-256.
set -eu
dir=${1:-$(dirname "$0")}
mkdir -p "$dir"
cd "$dir"
names="ca other-ca server client client-revoked client-expired client-notyet client-wrongpurpose client-other"
missing=
for n in $names; do
    [ -f "$n.crt" ] && [ -f "$n.key" ] || missing="$missing $n"
done
[ -f ca.crl ] || missing="$missing ca.crl"
[ -n "$missing" ] || exit 0
echo "missing:$missing; making the whole set"

umask 077
days=825
newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# `openssl ca` is used (rather than `x509 -req`) because it can set explicit validity dates
# (expired / not yet valid certificates) and keeps the index a CRL is made from.
ca_setup() { # name
    mkdir -p "$1.db"
    : >"$1.db/index.txt"
    # random 128-bit serials (RFC 5280 asks for unpredictable ones of at least 64 bits)
    [ -f "$1.db/serial" ] || openssl rand -hex 16 | sed 's/^[89a-f]/7/' >"$1.db/serial"
    cat >"$1.db/ca.cnf" <<CNF
[ ca ]
default_ca = this
[ this ]
dir = $1.db
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
certificate = $1.crt
private_key = $1.key
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
default_crl_days = 3650
[ anything ]
commonName = supplied
organizationName = optional
[ server ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
[ client ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
[ serveronly ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
CNF
}

make_ca() { # name "subject"
    newkey "$1.key"
    openssl req -new -x509 -key "$1.key" -out "$1.crt" -days 3650 -subj "$2" \
        -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    ca_setup "$1"
}

issue() { # ca name "subject" extensions [startdate enddate]
    newkey "$2.key"
    openssl req -new -key "$2.key" -out "$2.csr" -subj "$3" 2>/dev/null
    if [ $# -ge 6 ]; then dates="-startdate $5 -enddate $6"; else dates="-days $days"; fi
    # shellcheck disable=SC2086
    openssl ca -batch -notext -config "$1.db/ca.cnf" -extensions "$4" $dates \
        -in "$2.csr" -out "$2.crt" 2>/dev/null
    rm -f "$2.csr"
}

make_ca ca "/O=tessera/CN=tessera development CA"
make_ca other-ca "/O=elsewhere/CN=another CA"
issue ca server "/O=tessera/CN=localhost" server
issue ca client "/O=tessera/CN=alice" client
issue ca client-revoked "/O=tessera/CN=mallory" client
issue ca client-expired "/O=tessera/CN=bob" client 20200101000000Z 20210101000000Z
issue ca client-notyet "/O=tessera/CN=carol" client 20990101000000Z 20991231000000Z
issue ca client-wrongpurpose "/O=tessera/CN=dave" serveronly
issue other-ca client-other "/O=elsewhere/CN=eve" client

openssl ca -batch -config ca.db/ca.cnf -revoke client-revoked.crt 2>/dev/null
openssl ca -batch -config ca.db/ca.cnf -gencrl -out ca.crl 2>/dev/null
chmod 644 ./*.crt ca.crl
echo "certificates written to $(pwd)"
