#!/bin/sh
# Regenerates the TLS test certificates checked in beside this script (run it from
# anywhere; needs openssl). Valid for 20 years; the CA keys are thrown away, so a
# regeneration replaces every file at once.
#   ca.pem          test CA ("ringrelay test CA")
#   server.pem      server certificate for DNS:localhost and IP:127.0.0.1, signed by ca.pem
#   server.key      its key (ECDSA P-256)
#   other-ca.pem    an unrelated CA: trusting only it must fail verification of server.pem
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
days=7305

openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/ca.key"
openssl req -x509 -new -key "$tmp/ca.key" -sha256 -days $days -subj "/CN=ringrelay test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.pem

openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/server.ec"
openssl pkcs8 -topk8 -nocrypt -in "$tmp/server.ec" -out server.key
openssl req -new -key server.key -subj "/CN=localhost" -out "$tmp/server.csr"
cat > "$tmp/server.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
EXT
openssl x509 -req -in "$tmp/server.csr" -CA ca.pem -CAkey "$tmp/ca.key" -CAcreateserial \
    -CAserial "$tmp/ca.srl" -sha256 -days $days -extfile "$tmp/server.ext" -out server.pem

openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/other.key"
openssl req -x509 -new -key "$tmp/other.key" -sha256 -days $days -subj "/CN=ringrelay unrelated CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out other-ca.pem
