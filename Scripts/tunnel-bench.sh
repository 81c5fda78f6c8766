#!/usr/bin/env bash
# The tunnel benchmark harness: every scenario (baseline, bulk, rps, conns, sessions) for each
# implementation given with --impl NAME=SERVER,CLIENT (default: ours, the packaged build), medians
# of --repeat runs, ratios to the first implementation, JSON and SVG under bench-results/.
# usage: Scripts/tunnel-bench.sh [harness options]   (see Benchmarks/README.md)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

bash Scripts/install-deps.sh
# The programs as they ship (Scripts/package.sh): the Swift runtime linked in, so their memory
# is measured as a user running the packaged files sees it.
bash Scripts/build-programs.sh
(cd Benchmarks && swift build -c release --product tunnel-bench)
Benchmarks/.build/release/tunnel-bench "$@"
