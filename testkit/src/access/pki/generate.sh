#!/bin/sh
# Regenerates the access test PKI (tests only; never trust these anywhere).
# ECDSA P-256 (one RSA 2048 leaf), PKCS#8 keys, valid for 100 years; the CA
# keys are discarded.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ca() { # name subject
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$tmp/$1-key.pem" -out "$1.pem" -days 36500 -subj "/CN=$2" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
}
leaf() { # name ca subject san eku [key algorithm options]
    key=${6:-"ec -pkeyopt ec_paramgen_curve:P-256"}
    # shellcheck disable=SC2086 # the key options are words
    openssl req -newkey $key -nodes \
        -keyout "$1-key.pem" -out "$tmp/$1.csr" -subj "/CN=$3" 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n' "$4" "$5" >"$tmp/$1.ext"
    openssl x509 -req -in "$tmp/$1.csr" -CA "$2.pem" -CAkey "$tmp/$2-key.pem" -CAcreateserial -CAserial "$tmp/$2.srl" \
        -out "$1.pem" -days 36500 -extfile "$tmp/$1.ext" 2>/dev/null
    openssl pkcs8 -topk8 -nocrypt -in "$1-key.pem" -out "$tmp/k" && mv "$tmp/k" "$1-key.pem"
}

ca ca "cube test CA"
ca rogue-ca "rogue test CA"
leaf service ca "cube" "IP:127.0.0.1,DNS:localhost,DNS:cube.internal" "serverAuth,clientAuth"
leaf other ca "other" "DNS:other.cube.internal" "clientAuth"
leaf rogue rogue-ca "rogue" "IP:127.0.0.1,DNS:localhost" "serverAuth,clientAuth"
# Cloud Controller's HTTP client loads only RSA client keys.
leaf service-rsa ca "cube" "IP:127.0.0.1,DNS:localhost,DNS:cube.internal" "serverAuth,clientAuth" "rsa:2048"
