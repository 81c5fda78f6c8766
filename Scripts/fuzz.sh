#!/usr/bin/env bash
# libFuzzer on the WebSocket frame parser, the HTTP head parser and the whole server (HTTP,
# upgrade, tunnel session, proxy route over in-memory streams), for a bounded time each
# (default 20 s). Crashes, leaks and inputs taking over 5 s (a parser that spins) fail the run;
# inputs that do are left in bench-results/fuzz/.
# usage: Scripts/fuzz.sh [seconds per target]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
export SWIFT_BACKTRACE=enable=no   # the backtracer can hang for minutes on a fuzzer crash
seconds="${1:-20}"
out="$PWD/bench-results/fuzz"
mkdir -p "$out"
cd Benchmarks
for target in fuzz-frame-parser fuzz-http-head fuzz-server; do
    swift build --sanitize=fuzzer --product "$target" --build-path .build-fuzz
    corpus="$(mktemp -d)"
    echo "fuzzing $target for ${seconds}s"
    .build-fuzz/debug/"$target" -max_total_time="$seconds" -rss_limit_mb=1024 -timeout=5 -artifact_prefix="$out/$target-" "$corpus" 2>&1 | tail -2
    rm -rf "$corpus"
done
