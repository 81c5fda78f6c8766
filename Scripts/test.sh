#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

bash Scripts/install-deps.sh
swift build --build-tests
swift build  # the programs the end-to-end tests run as subprocesses
# Tests share the machine's fds, ports and CPUs with each other (the fd-leak check counts
# /proc/self/fd): run them one at a time.
swift test --skip-build --no-parallel
# The multi-loop server's suites under ThreadSanitizer (its own build directory; about 5 minutes
# to build, 1 to run).
swift build --build-tests --sanitize=thread --scratch-path .build-tsan
# Its reports go to files and are shown at the end: CI keeps only the tail of a long log.
tsan_reports="$(mktemp -d)"
if ! TSAN_OPTIONS="log_path=$tsan_reports/report" swift test --skip-build --sanitize=thread --scratch-path .build-tsan \
    --no-parallel --filter "MultiLoopServerTests|MultiLoopProgramTests"; then
    echo "ThreadSanitizer run failed; its reports (summary lines and the top frames):"
    grep -h -E "WARNING: ThreadSanitizer|SUMMARY|^  [A-Z].* (by|at) |^    #[0-2] " "$tsan_reports"/report.* 2>/dev/null | cut -c1-240 | head -80
    exit 1
fi
# Chaos (Scripts/chaos.sh): a party killed at a random moment during transfers, three rounds (about 30 s).
bash Scripts/chaos.sh 3
# libFuzzer on every target (Scripts/fuzz.sh), 20 s each (bounded).
bash Scripts/fuzz.sh 20
# The WAN (Scripts/wan.sh): network namespaces, a 50 Mbit/s link with 1% loss, a 90 s outage (about 2.5 min; skipped, with the reason, without root).
bash Scripts/wan.sh
# Soak (Scripts/soak.sh): two minutes of mixed load on two peered servers and a client; idle RSS
# (loads held after each minute) and fds must come back (about 2.5 min).
bash Scripts/soak.sh 2
