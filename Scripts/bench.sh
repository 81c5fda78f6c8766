#!/usr/bin/env bash
# Builds the benchmark package in release and runs the relay benchmark.
# usage: Scripts/bench.sh [MiB per run, default 1024] [runs, default 3]
set -euo pipefail
cd "$(dirname "$0")/../Benchmarks"
export PATH="/opt/swift/usr/bin:$PATH"

swift build -c release --product reactor-relay-bench
.build/release/reactor-relay-bench "${1:-1024}" "${2:-3}"
