#!/usr/bin/env bash
# The tunnel over a WAN-like link instead of loopback: two network namespaces joined by a veth
# pair, each direction limited to 50 Mbit/s (tbf) and dropping 1% of packets (nftables numgen).
# This kernel has no netem, so there is no added latency. The server runs in one namespace; the
# client and its target (remotedialer-dummy) in the other; requesters (curl) beside the server.
#   1. a 64 MiB download through the tunnel arrives intact (sha256); its throughput is printed
#      beside a plain TCP download of the same file over the same link (printed, not asserted);
#   2. 20 concurrent 3 MiB downloads through one session all complete intact (min/max rate printed);
#   3. the link goes down for 90 s: the session ends on both sides within the liveness timeout
#      (60 s idle timeout + its 5 s check), requesters in flight end with an error, never at
#      their own timeout (curl exit 28), and so do requesters that arrive while it is down;
#   4. once the link is back the client reconnects within its backoff bound (30 s + 20% jitter,
#      + 2 s for a handshake over the lossy link) and a download through it is intact again.
# Needs root (CAP_NET_ADMIN) for namespaces; where they are refused it prints why and skips.
# Every process, namespace, link and nft table it makes is removed on exit, whatever the outcome.
# usage: Scripts/wan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/lib.sh
export PATH="/opt/swift/usr/bin:$PATH"

skip() { echo "wan: SKIP: $*"; exit 0; }
[ "$(id -u)" = 0 ] || skip "not root: network namespaces need CAP_NET_ADMIN"
for tool in ip tc nft curl sha256sum; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (Scripts/install-deps.sh installs it)"
done

swift build >/dev/null
bin="$(swift build --show-bin-path)"
work="$(mktemp -d)"
ns_server="rdwan-server-$$" ns_client="rdwan-client-$$"
veth_server="rdws$$" veth_client="rdwc$$"  # interface names: at most 15 characters
address_server=10.231.0.1 address_client=10.231.0.2
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    for ns in "$ns_server" "$ns_client"; do
        ip netns exec "$ns" nft delete table inet rdwan 2>/dev/null || true
    done
    ip -n "$ns_server" link delete "$veth_server" 2>/dev/null || true  # takes its peer with it
    ip netns delete "$ns_server" 2>/dev/null || true
    ip netns delete "$ns_client" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
in_server() { ip netns exec "$ns_server" "$@"; }

# The link.
ip netns add "$ns_server" 2>"$work/netns.err" || skip "ip netns add refused: $(cat "$work/netns.err")"
ip netns add "$ns_client"
ip link add "$veth_server" type veth peer name "$veth_client" 2>"$work/veth.err" || skip "veth pair refused: $(cat "$work/veth.err")"
ip link set "$veth_server" netns "$ns_server"
ip link set "$veth_client" netns "$ns_client"
configure() {  # configure NAMESPACE DEVICE ADDRESS: address, up, 50 Mbit/s and 1% loss on what leaves
    ip -n "$1" link set lo up
    ip -n "$1" addr add "$3/24" dev "$2"
    ip -n "$1" link set "$2" up
    ip netns exec "$1" tc qdisc add dev "$2" root tbf rate 50mbit burst 64kb latency 100ms 2>"$work/tc.err" ||
        skip "tc tbf refused: $(cat "$work/tc.err")"
    ip netns exec "$1" nft -f - <<EOF 2>"$work/nft.err" || skip "nftables refused: $(cat "$work/nft.err")"
table inet rdwan {
    chain output {
        type filter hook output priority 0; policy accept;
        oifname "$2" numgen random mod 1000 < 10 drop
    }
}
EOF
}
configure "$ns_server" "$veth_server" "$address_server"
configure "$ns_client" "$veth_client" "$address_client"
link() { ip -n "$ns_server" link set "$veth_server" "$1" && ip -n "$ns_client" link set "$veth_client" "$1"; }

# The programs (the namespaces are their own, so the ports are fixed). Whatever runs in the
# background is started by `ip netns exec` directly, so $! is its pid.
mkdir "$work/files"
head -c $((64 << 20)) /dev/urandom >"$work/files/big"
head -c $((3 << 20)) /dev/urandom >"$work/files/part"
big_sum=$(sha256sum <"$work/files/big")
(cd "$work/files" && exec ip netns exec "$ns_client" "$bin/remotedialer-dummy" -listen "$address_client:8125") >"$work/target.log" 2>&1 &
pids+=("$!")
ip netns exec "$ns_server" "$bin/remotedialer-server" -listen "$address_server:8123" -proxy-allow-from "$address_server/32" >"$work/server.log" 2>&1 &
pids+=("$!")
ip netns exec "$ns_client" "$bin/remotedialer-client" -connect "ws://$address_server:8123/connect" -id wan \
    -allow "tcp/$address_client:8125" >"$work/client.log" 2>&1 &
pids+=("$!")
tunnel_url() { echo "http://$address_server:8123/client/wan/http/$address_client:8125/$1?timeout=$2"; }

failures=0
fail() {
    echo "wan: FAIL: $*"
    failures=$((failures + 1))
}
now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
reachable() { [ "$(in_server curl -s -o /dev/null -w '%{http_code}' -r 0-0 --max-time 5 "$(tunnel_url part 5)")" = 206 ]; }
mbps() { awk -v r="$1" 'BEGIN { printf "%.2f", r / 1e6 }'; }

if ! wait_for 30 reachable; then
    fail "the client never became reachable through the server"
    tail -5 "$work"/*.log
    exit 1
fi
echo "wan: link 50 Mbit/s and 1% loss each way (tbf + nftables), no added delay; client wan reachable"

# 1. 64 MiB through the tunnel, then plainly over the same link.
download() {  # download URL OUTPUT: prints curl's exit code and rate in bytes/s
    local rc=0 rate
    rate=$(in_server curl -sf --max-time 150 -o "$2" -w '%{speed_download}' "$1") || rc=$?
    echo "$rc ${rate:-0}"
}
read -r rc rate_tunnel < <(download "$(tunnel_url big 150)" "$work/out")
if [ "$rc" != 0 ]; then fail "64 MiB through the tunnel: curl exit $rc"
elif [ "$(sha256sum <"$work/out")" != "$big_sum" ]; then fail "64 MiB through the tunnel: wrong bytes ($(stat -c %s "$work/out") bytes)"
fi
read -r rc rate_plain < <(download "http://$address_client:8125/big" "$work/out")
[ "$rc" = 0 ] && [ "$(sha256sum <"$work/out")" = "$big_sum" ] || fail "64 MiB plain TCP: curl exit $rc or wrong bytes"
rm -f "$work/out"
echo "wan: 64 MiB intact through the tunnel at $(mbps "$rate_tunnel") MB/s; plain TCP over the same link $(mbps "$rate_plain") MB/s"

# 2. 20 concurrent downloads through the one session.
started=$(now)
requesters=()
for i in $(seq 20); do
    ip netns exec "$ns_server" curl -sf --max-time 120 -o "$work/part$i" -w '%{speed_download}\n' "$(tunnel_url part 120)" >"$work/rate$i" &
    requesters+=("$!")
    pids+=("$!")
done
intact=0
for i in $(seq 20); do
    rc=0
    wait "${requesters[i - 1]}" || rc=$?
    if [ "$rc" = 0 ] && cmp -s "$work/part$i" "$work/files/part"; then intact=$((intact + 1)); else fail "concurrent download $i: curl exit $rc or wrong bytes"; fi
done
read -r slowest fastest < <(sort -g "$work"/rate* | awk 'NR == 1 { min = $1 } { max = $1 } END { print min, max }')
elapsed=$(since "$started")
echo "wan: 20 concurrent 3 MiB downloads: $intact intact in $elapsed s; per connection min $(mbps "$slowest") MB/s," \
    "max $(mbps "$fastest") MB/s (an even share of the link over the whole batch: $(awk -v t="$elapsed" 'BEGIN { printf "%.2f", 3 * 1.048576 / t }') MB/s)"
rm -f "$work"/part* "$work"/rate*

# 3. The link down for 90 s, with downloads in flight.
in_flight=()
for i in 1 2 3; do
    ip netns exec "$ns_server" curl -sf --limit-rate 500K --max-time 150 -o /dev/null "$(tunnel_url big 150)" &
    in_flight+=("$!")
    pids+=("$!")
done
sleep 2
server_ends() { grep -c "session wan/.* ended" "$work/server.log" || true; }
client_ends() { grep -c "session to .* ended" "$work/client.log" || true; }
server_connects() { grep -c "client session wan/.* connected" "$work/server.log" || true; }
client_connects() { grep -c "connected to " "$work/client.log" || true; }
ended_server=$(server_ends) ended_client=$(client_ends)
connected_server=$(server_connects) connected_client=$(client_connects)
down_at=$(now)
link down
echo "wan: link down"

late_request() {  # late_request LABEL: a requester while the link is down must end before its own 30 s timeout
    local rc=0 status started
    started=$(now)
    status=$(in_server curl -s --max-time 30 -o /dev/null -w '%{http_code}' "$(tunnel_url part 10)") || rc=$?
    echo "wan: a requester $1: HTTP $status, curl exit $rc after $(since "$started") s"
    [ "$rc" != 28 ] || fail "a requester $1 hung until its own 30 s timeout"
}
sleep 5
late_request "5 s into the outage (the session not yet known dead; ?timeout=10)"

liveness_bound=67  # the 60 s idle timeout, checked every 5 s, + 2 s
server_ended_after="" client_ended_after=""
while [ -z "$server_ended_after" ] || [ -z "$client_ended_after" ]; do
    [ -z "$server_ended_after" ] && [ "$(server_ends)" -gt "$ended_server" ] && server_ended_after=$(since "$down_at")
    [ -z "$client_ended_after" ] && [ "$(client_ends)" -gt "$ended_client" ] && client_ended_after=$(since "$down_at")
    awk -v t="$(since "$down_at")" -v b="$liveness_bound" 'BEGIN { exit !(t > b) }' && break
    sleep 0.2
done
echo "wan: session ended on the server after ${server_ended_after:-never} s, on the client after ${client_ended_after:-never} s (bound ${liveness_bound} s)"
[ -n "$server_ended_after" ] || fail "the server kept the session past the liveness timeout"
[ -n "$client_ended_after" ] || fail "the client kept the session past the liveness timeout"
late_request "after the session ended"

for i in 1 2 3; do
    rc=0
    wait "${in_flight[i - 1]}" || rc=$?
    echo "wan: download $i in flight when the link went down: curl exit $rc"
    [ "$rc" != 0 ] || fail "download $i reported complete although the link went down"
    [ "$rc" != 28 ] || fail "download $i hung until its own timeout"
done

sleep "$(awk -v t="$(since "$down_at")" 'BEGIN { s = 90 - t; print (s > 0 ? s : 0) }')"
link up
up_at=$(now)
echo "wan: link up after $(since "$down_at") s"
reconnect_bound=38  # the client's backoff cap 30 s + 20% jitter, + 2 s for the handshake
back() { [ "$(server_connects)" -gt "$connected_server" ] && [ "$(client_connects)" -gt "$connected_client" ] && reachable; }
if wait_for "$reconnect_bound" back; then
    echo "wan: client reconnected and reachable $(since "$up_at") s after the link came back (bound ${reconnect_bound} s)"
    read -r rc _ < <(download "$(tunnel_url part 60)" "$work/out")
    [ "$rc" = 0 ] && cmp -s "$work/out" "$work/files/part" || fail "download after the reconnect: curl exit $rc or wrong bytes"
else
    fail "the client was not back within ${reconnect_bound} s of the link returning"
fi

if ((failures > 0)); then
    for log in "$work"/*.log; do echo "--- $(basename "$log")"; tail -15 "$log"; done
fi
echo "wan: $failures failures"
((failures == 0))
