#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian machine, only when missing:
# libssl-dev (the TLS shim), openssl, curl, redis-server and redis-tools (test peers), wrk (load
# generator for benchmarks and the soak), iproute2 and nftables (the WAN link in network
# namespaces, Scripts/wan.sh), socat (the two-relay ceiling in the tunnel harness), python3
# websockets, prometheus_client and PySocks (interop peers / parsers in tests), chromium (the
# status page loaded in a real browser).
set -euo pipefail

missing=()
for package in libssl-dev openssl curl wrk iproute2 nftables socat python3-pip redis-server redis-tools chromium; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: missing ${missing[*]}; run as root or install them" >&2
        exit 1
    fi
    echo "install-deps: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# module:package (PySocks installs the module `socks`).
for pair in websockets:websockets prometheus_client:prometheus_client socks:PySocks; do
    python3 -c "import ${pair%%:*}" 2>/dev/null || python3 -m pip install -q --disable-pip-version-check "${pair#*:}"
done
