#!/usr/bin/env bash
# Makes a throw-away PKI in directory $1 with the openssl CLI, for tests:
# ca.pem/ca.key (the test CA), server.pem/server.key (localhost, 127.0.0.1; signed by the CA),
# expired.pem (same key, already expired), other-ca.pem (an unrelated CA).
set -euo pipefail
dir="$1"
mkdir -p "$dir"
cd "$dir"
quiet() { "$@" >/dev/null 2>&1; }
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > san.ext
quiet openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=RemoteDialer Test CA"
quiet openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem -days 2 -subj "/CN=Unrelated CA"
quiet openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost"
quiet openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.ext
quiet openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out expired.pem -days -1 -extfile san.ext
