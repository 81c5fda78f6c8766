#!/usr/bin/env bash
# Writes Scripts/link-order.txt: the functions a server and client run (startup, a tunnel coming
# up, its pings and idle checks, a download through it, shutdown), which the release link puts
# side by side (lld --symbol-ordering-file, see Scripts/build-programs.sh). The kernel maps a program's code
# 64 KiB around each page it faults in, so run-once code scattered over the text kept most of it
# resident; packed together it takes a few hundred KiB. The download puts the data path in the
# list too, so the code a busy tunnel runs is packed with it rather than left among the rest.
# Names missing from a later build are skipped, so a stale list costs memory, never correctness;
# rerun this after larger changes.
# usage: Scripts/link-order.sh   (needs valgrind, curl and python3)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

bash Scripts/build-programs.sh

work=$(mktemp -d)
server_pid="" client_pid="" target_pid=""
cleanup() {
    for pid in $client_pid $server_pid $target_pid; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# Valgrind 3.19 cannot read the DWARF 5 these binaries carry; the symbol table is all it needs.
for product in remotedialer-server remotedialer-client; do
    strip --strip-debug -o "$work/$product" ".build-static/release/$product"
done

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
mkdir "$work/files"
head -c $((16 << 20)) /dev/urandom > "$work/files/blob"
target_port=$(free_port)
(cd "$work/files" && exec "$OLDPWD/.build-static/release/remotedialer-dummy" -listen "127.0.0.1:$target_port") > "$work/target.log" 2>&1 &
target_pid=$!
port=$(free_port)
valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/server.cg" \
    "$work/remotedialer-server" -listen "127.0.0.1:$port" > "$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do grep -q "listening on" "$work/server.log" && break; sleep 0.2; done
valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/client.cg" \
    "$work/remotedialer-client" -connect "ws://127.0.0.1:$port/connect" -id link-order > "$work/client.log" 2>&1 &
client_pid=$!
for _ in $(seq 1 150); do grep -q "session link-order/.* connected" "$work/server.log" && break; sleep 0.2; done
grep -q "session link-order/.* connected" "$work/server.log" || { echo "link-order: the client did not connect" >&2; cat "$work/server.log" "$work/client.log" >&2; exit 1; }
sleep 7  # a ping (every 5 s) and an idle check
curl -sf -o "$work/blob.copy" "http://127.0.0.1:$port/client/link-order/http/127.0.0.1:$target_port/blob?timeout=60"
cmp -s "$work/files/blob" "$work/blob.copy" || { echo "link-order: the download through the tunnel differs" >&2; exit 1; }
kill -INT "$client_pid"; wait "$client_pid" || true; client_pid=""
kill -INT "$server_pid"; wait "$server_pid" || true; server_pid=""

python3 - "$work" > Scripts/link-order.txt <<'EOF'
import re, subprocess, sys
work = sys.argv[1]
defined = set()
for product in ("remotedialer-server", "remotedialer-client"):
    listing = subprocess.run(["nm", "--defined-only", f"{work}/{product}"], capture_output=True, text=True, check=True).stdout
    defined.update(line.split(" ", 2)[2] for line in listing.splitlines() if line.split(" ", 2)[1] in "tTwW")
seen = set()
for profile in ("server.cg", "client.cg"):
    for line in open(f"{work}/{profile}", errors="replace"):
        match = re.match(r"c?fn=\(\d+\) (.+)$", line.rstrip("\n"))
        if match and match.group(1) in defined and match.group(1) not in seen:
            seen.add(match.group(1))
            print(match.group(1))
EOF
echo "link-order: $(wc -l < Scripts/link-order.txt) functions in Scripts/link-order.txt"
