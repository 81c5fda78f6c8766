#!/usr/bin/env bash
# The main job: builds the programs in release and runs the tunnel demo end to end on loopback:
# a file server, a tunnel server, a client behind it, a download through the tunnel, the Go
# error texts, and the same download through a second server peered with the first (HA).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

bash Scripts/install-deps.sh
swift build -c release --product remotedialer-server
swift build -c release --product remotedialer-client
swift build -c release --product remotedialer-dummy
bin="$(swift build -c release --show-bin-path)"

work="$(mktemp -d)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }

files=$(free_port); serverA=$(free_port); serverB=$(free_port)
head -c $((64 << 20)) /dev/urandom > "$work/bigfile"

step "file server (remotedialer-dummy) on 127.0.0.1:$files serving $work"
(cd "$work" && exec "$bin/remotedialer-dummy" -listen "127.0.0.1:$files" 2>"$work/dummy.log") & pids+=($!)
wait_port "$files"

step "two tunnel servers peered with each other: A on :$serverA, B on :$serverB"
"$bin/remotedialer-server" -listen "127.0.0.1:$serverA" -id a -token demo-secret -peers "b:demo-secret:ws://127.0.0.1:$serverB/connect" 2>"$work/a.log" & pids+=($!)
"$bin/remotedialer-server" -listen "127.0.0.1:$serverB" -id b -token demo-secret -peers "a:demo-secret:ws://127.0.0.1:$serverA/connect" 2>"$work/b.log" & pids+=($!)
wait_port "$serverA"; wait_port "$serverB"

step "client 'foo' connects out to server A (it could be behind NAT: only this outbound WebSocket)"
"$bin/remotedialer-client" -connect "ws://127.0.0.1:$serverA/connect" -id foo -allow "tcp/127.0.0.1:*" 2>"$work/client.log" & pids+=($!)
url() { echo "http://127.0.0.1:$1/client/foo/http/127.0.0.1:$files/bigfile?timeout=60"; }
for _ in $(seq 100); do [ "$(curl -s -o /dev/null -w '%{http_code}' -r 0-0 "$(url "$serverA")")" = 206 ] && break; sleep 0.1; done

step "curl $(url "$serverA")"
curl -s -o "$work/through-a" -w 'HTTP %{http_code}, %{size_download} bytes at %{speed_download} B/s\n' "$(url "$serverA")"
cmp -s "$work/bigfile" "$work/through-a" && echo "byte-identical to the original: yes" || { echo "MISMATCH"; exit 1; }

step "errors, as the Go server words them"
printf 'unknown client -> '; curl -s -w ' (HTTP %{http_code})\n' "http://127.0.0.1:$serverA/client/bar/http/127.0.0.1:$files/bigfile"
dead=$(free_port)
printf 'closed port    -> '; curl -s -w ' (HTTP %{http_code})\n' "http://127.0.0.1:$serverA/client/foo/http/127.0.0.1:$dead/bigfile"

step "the same download through server B, which reaches 'foo' through its peer A"
for _ in $(seq 100); do [ "$(curl -s -o /dev/null -w '%{http_code}' -r 0-0 "$(url "$serverB")")" = 206 ] && break; sleep 0.1; done
curl -s -o "$work/through-b" -w 'HTTP %{http_code}, %{size_download} bytes at %{speed_download} B/s\n' "$(url "$serverB")"
cmp -s "$work/bigfile" "$work/through-b" && echo "byte-identical to the original: yes" || { echo "MISMATCH"; exit 1; }

step "metrics on server A (Prometheus text, Go counter names)"
curl -s "http://127.0.0.1:$serverA/metrics" | grep -E '^session_server_total_(add_websocket_session|add_connections|receive_bytes)' | head -6

step "demo done; stopping everything"
