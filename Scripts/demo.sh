#!/usr/bin/env bash
# The main job: builds in release and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

bash Scripts/install-deps.sh
swift build -c release --product reactor-echo-demo
.build/release/reactor-echo-demo
