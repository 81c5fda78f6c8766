#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian machine, only when missing:
# libssl-dev (the TLS shim), openssl and curl (test peers), wrk (load generator for benchmarks),
# python3 websockets and prometheus_client (interop peers / parsers in tests), chromium (the
# status page loaded in a real browser).
set -euo pipefail

missing=()
for package in libssl-dev openssl curl wrk python3-pip chromium; do
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

for module in websockets prometheus_client; do
    python3 -c "import $module" 2>/dev/null || python3 -m pip install -q --disable-pip-version-check "$module"
done
