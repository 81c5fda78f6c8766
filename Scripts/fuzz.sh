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
# Built with AddressSanitizer as well as the fuzzer, so out-of-bounds reads and writes in the
# unsafe-pointer code (RingBuffer, masking, parsers) are found even when they would not trap.
# Each target starts from its seed corpus in Benchmarks/FuzzCorpus (copied: the run's finds
# stay out of the repository).
for target in fuzz-frame-parser fuzz-http-head fuzz-server; do
    swift build --sanitize=fuzzer --sanitize=address --product "$target" --build-path .build-fuzz
    corpus="$(mktemp -d)"
    cp FuzzCorpus/"$target"/* "$corpus"/
    echo "fuzzing $target for ${seconds}s"
    .build-fuzz/debug/"$target" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=5 -artifact_prefix="$out/$target-" "$corpus" 2>&1 | tail -2
    rm -rf "$corpus"
done
