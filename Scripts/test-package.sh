#!/usr/bin/env bash
# Tests a packaged archive (Scripts/package.sh writes it) the way a user without Swift runs it:
# unpacks it into an empty directory, checks that no program needs a library from the Swift
# toolchain, then, with an environment holding only PATH=/usr/bin:/bin (no swift on it, no
# LD_LIBRARY_PATH), starts the packaged dummy file server, server and client on loopback and
# moves an 8 MiB file through the tunnel, compared byte for byte. Stops all it started.
# usage: Scripts/test-package.sh dist/remotedialer-VERSION-linux-ARCH.tar.gz
set -euo pipefail
archive=$(realpath "$1")
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
shopt -s nullglob
fail() { echo "test-package: FAIL: $*" >&2; for log in "$work"/*.log; do echo "--- $log" >&2; tail -5 "$log" >&2; done; exit 1; }

cd "$work"
tar -xzf "$archive"
programs=$(echo "$work"/remotedialer-*/)
for program in remotedialer-server remotedialer-client remotedialer-dummy; do
    [ -x "$programs/$program" ] || fail "$program missing from the archive"
    if env -i PATH=/usr/bin:/bin ldd "$programs/$program" | grep -Eq 'libswift|/opt/swift|not found'; then
        fail "$program needs: $(env -i PATH=/usr/bin:/bin ldd "$programs/$program" | grep -E 'libswift|/opt/swift|not found' | tr '\n' ' ')"
    fi
done
[ -f "$programs/README.md" ] || fail "README.md missing from the archive"

# Runs a command with nothing of the caller's environment but a PATH without Swift.
bare() { env -i PATH=/usr/bin:/bin "$@"; }
bare sh -c 'command -v swift' >/dev/null && fail "swift is on /usr/bin:/bin; the test would prove nothing"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() {  # URL: until it answers 200, 20 s at most
    for _ in $(seq 200); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1")" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}

mkdir files
head -c $((8 << 20)) /dev/urandom > files/payload.bin
files_port=$(free_port) server_port=$(free_port)
(cd files && exec env -i PATH=/usr/bin:/bin "$programs/remotedialer-dummy" -listen "127.0.0.1:$files_port") > dummy.log 2>&1 &
pids+=($!)
# exec: $! is then the program itself, which cleanup stops (a backgrounded function call
# would leave its child running when the subshell is killed).
(exec env -i PATH=/usr/bin:/bin "$programs/remotedialer-server" -listen "127.0.0.1:$server_port") > server.log 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$server_port/healthz" || fail "the packaged server did not serve /healthz"
(exec env -i PATH=/usr/bin:/bin "$programs/remotedialer-client" -connect "ws://127.0.0.1:$server_port/connect" -id packaged) > client.log 2>&1 &
pids+=($!)
url="http://127.0.0.1:$server_port/client/packaged/http/127.0.0.1:$files_port/payload.bin"
wait_for "$url" || fail "no download through the packaged tunnel"
curl -sS --fail -o received.bin "$url"
cmp files/payload.bin received.bin || fail "the file arrived different"
echo "test-package: ok: $(basename "$archive"): 8 MiB through the packaged server and client without Swift ($(du -sh "$programs" | cut -f1) unpacked)"
cleanup
trap - EXIT
for pid in "${pids[@]}"; do ! kill -0 "$pid" 2>/dev/null || fail "process $pid still running after cleanup"; done
