#!/usr/bin/env bash
# Micro and relay benchmarks (a separate package under Benchmarks/, release build):
#   reactor relay vs a blocking copy, plus the same hop with TLS; the OpenSSL AES-128-GCM ceiling;
#   WebSocket frame parse+unmask throughput vs memcpy; the multi-loop server's shared SessionDirectory.
# usage: Scripts/bench.sh [MiB per relay run, default 1024] [runs, default 3]
# The tunnel harness (throughput, latency, memory of whole implementations): Scripts/tunnel-bench.sh
set -euo pipefail
cd "$(dirname "$0")/../Benchmarks"
export PATH="/opt/swift/usr/bin:$PATH"

swift build -c release --product reactor-relay-bench
swift build -c release --product frame-parser-bench
swift build -c release --product directory-bench
.build/release/reactor-relay-bench "${1:-1024}" "${2:-3}"
echo
echo "ceiling for the TLS row (one core): openssl speed -evp aes-128-gcm"
openssl speed -seconds 2 -evp aes-128-gcm 2>/dev/null | tail -2
echo
.build/release/frame-parser-bench 512
echo
.build/release/directory-bench
