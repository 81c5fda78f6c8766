#!/usr/bin/env bash
# libFuzzer on the WebSocket frame parser, the HTTP head parser, the whole server (HTTP,
# upgrade, tunnel session, proxy route over in-memory streams) and the tunnel session's state
# machine in either role (random message sequences and local operations, with invariants on its
# connection table, Pause and memory), for a bounded time each
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
for target in fuzz-frame-parser fuzz-http-head fuzz-server fuzz-session; do
    # --sanitize applies to this package's targets only: the library modules get coverage and
    # ASan through -Xswiftc, or the fuzzer runs blind (42 counters instead of ~20,000).
    swift build --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=address \
        -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp --product "$target" --build-path .build-fuzz
    corpus="$(mktemp -d)"
    cp FuzzCorpus/"$target"/* "$corpus"/
    echo "fuzzing $target for ${seconds}s"
    # No leak checks (libFuzzer's nor ASan's at exit): a Swift object that was ever weakly
    # referenced points to its side table only through encoded refcount bits, so LeakSanitizer
    # reports the side tables of live objects as leaks (seen on fuzz-server). Growth is caught
    # by -rss_limit_mb instead (ASan's quarantine alone holds ~256 MB, hence 2048).
    ASAN_OPTIONS=detect_leaks=0 .build-fuzz/debug/"$target" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=5 -detect_leaks=0 \
        -artifact_prefix="$out/$target-" "$corpus" 2>&1 | tail -2
    rm -rf "$corpus"
done
