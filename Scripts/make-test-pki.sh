#!/usr/bin/env bash
# Makes a throw-away PKI in directory $1 with the openssl CLI, for tests:
# ca.pem/ca.key (the test CA), server.pem/server.key (localhost, 127.0.0.1; signed by the CA),
# expired.pem (same key, already expired), other-ca.pem/other-ca.key (an unrelated CA),
# client-ca.pem/client-ca.key (the CA of client certificates, for mutual TLS), server.der
# (server.pem in DER).
#
# make-test-pki.sh DIR client NAME CN SAN ISSUER  adds a client certificate to that PKI:
# NAME.pem, NAME.key and NAME.der (the certificate in DER), subject CN, subjectAltName SAN
# (e.g. "DNS:foo.internal,IP:10.0.0.7"), signed by ISSUER.pem/ISSUER.key of DIR.
set -euo pipefail
dir="$1"
mkdir -p "$dir"
cd "$dir"
quiet() { "$@" >/dev/null 2>&1; }

if [ "${2:-}" = client ]; then
    name="$3" cn="$4" san="$5" issuer="$6"
    printf 'subjectAltName=%s\nextendedKeyUsage=clientAuth\n' "$san" > "$name.ext"
    quiet openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$name.key" -out "$name.csr" -subj "/CN=$cn"
    quiet openssl x509 -req -in "$name.csr" -CA "$issuer.pem" -CAkey "$issuer.key" -CAcreateserial -out "$name.pem" -days 2 -extfile "$name.ext"
    quiet openssl x509 -in "$name.pem" -outform DER -out "$name.der"
    exit 0
fi

printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > san.ext
quiet openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=RemoteDialer Test CA"
quiet openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem -days 2 -subj "/CN=Unrelated CA"
quiet openssl req -x509 -newkey rsa:2048 -nodes -keyout client-ca.key -out client-ca.pem -days 2 -subj "/CN=RemoteDialer Test Client CA"
quiet openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost"
quiet openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.ext
quiet openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out expired.pem -days -1 -extfile san.ext
quiet openssl x509 -in server.pem -outform DER -out server.der
