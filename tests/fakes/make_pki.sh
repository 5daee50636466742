#!/bin/bash
# Throwaway PKI for the fake kube-apiserver: a CA, a server certificate for
# 127.0.0.1 / localhost, and a client certificate (CN = user, O = group),
# all signed by the CA with openssl. EC P-256 keys: quick to make, and
# accepted by Go (kubectl), GnuTLS (libcurl) and Python clients alike.
#
# Usage: make_pki.sh OUTDIR USER [GROUP]     (GROUP defaults to system:masters)
# Writes OUTDIR/{ca.crt,ca.key,server.crt,server.key,client.crt,client.key}.
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 OUTDIR USER [GROUP]" >&2
    exit 2
fi
out=$1
user=$2
group=${3:-system:masters}
days=7   # long enough for any test run; nothing here outlives the run

case "$user$group" in
    */*|*,*|*=*) echo "$0: user and group may not contain '/', ',' or '='" >&2; exit 2 ;;
esac

mkdir -p "$out"
cd "$out"
umask 077

# new_key FILE: an EC P-256 private key in PEM.
new_key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

# sign NAME SUBJECT EXTENSIONS: NAME.csr from NAME.key, signed by the CA into NAME.crt.
sign() {
    local name=$1 subject=$2 extensions=$3
    openssl req -new -key "$name.key" -subj "$subject" -out "$name.csr"
    printf '%b' "$extensions" > "$name.ext"
    # A positive random serial (Go rejects negative ones).
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key \
        -set_serial "0x7$(openssl rand -hex 15)" -days "$days" -sha256 \
        -extfile "$name.ext" -out "$name.crt" 2>/dev/null
    rm -f "$name.csr" "$name.ext"
}

new_key ca.key
openssl req -x509 -new -key ca.key -sha256 -days "$days" -subj "/CN=fake-kube-apiserver-ca" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out ca.crt

new_key server.key
sign server "/CN=kube-apiserver" \
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"

new_key client.key
sign client "/O=$group/CN=$user" \
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"

chmod 644 ca.crt server.crt client.crt
