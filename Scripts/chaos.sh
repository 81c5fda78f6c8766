#!/usr/bin/env bash
# Chaos rounds on loopback with the real programs. Each round starts a file server (the target),
# two peered tunnel servers A and B, a client "foo" connected to A, and requesters downloading a
# file through A and through B (B reaches foo through its peer A). At a random moment during the
# transfers one party is killed with SIGKILL: server A, server B (the peer), the client, the
# target or one requester. Then, per round:
#   - no download reported complete (curl -f exit 0: a 2xx answer, all bytes) has wrong bytes;
#   - no requester hung until its own timeout (curl exit 28): the tunnel ended it;
#   - the killed party is restarted (unless a requester) and foo is reachable again through both
#     servers, both peer links up, within the client's backoff bound (36 s: 30 s max backoff +
#     20% jitter) or the peer retry bound (8 s: 5 s + 20%, counted in whole seconds), whichever
#     applies; the time taken is printed;
#   - every surviving program is back to its idle fd count.
# Every process it starts is stopped (by pid) when it exits, whatever the outcome.
# usage: Scripts/chaos.sh [ROUNDS] (default 3); CHAOS_VICTIM=a|b|client|target|requester picks the party.
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/lib.sh
export PATH="/opt/swift/usr/bin:$PATH"
rounds="${1:-3}"
swift build >/dev/null
bin="$(swift build --show-bin-path)"
work="$(mktemp -d)"
declare -A pid_of=()  # the running programs by party
requesters=()         # the running curls
stop_all() {
    for pid in "${pid_of[@]}" "${requesters[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    for pid in "${pid_of[@]}" "${requesters[@]}"; do wait "$pid" 2>/dev/null || true; done
    pid_of=()
    requesters=()
}
trap 'stop_all; rm -rf "$work"' EXIT

head -c $((32 << 20)) /dev/urandom >"$work/file"
read -r port_t port_a port_b < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
url() { echo "http://127.0.0.1:$1/client/foo/http/127.0.0.1:$port_t/file?timeout=30"; }

start() {  # start NAME: (re)starts one party and records its pid
    case "$1" in
    target) cd "$work" && exec "$bin/remotedialer-dummy" -listen "127.0.0.1:$port_t" ;;
    a) exec "$bin/remotedialer-server" -listen "127.0.0.1:$port_a" -id a -token chaos -upstream-idle-timeout 1s -peers "b:chaos:ws://127.0.0.1:$port_b/connect" ;;
    b) exec "$bin/remotedialer-server" -listen "127.0.0.1:$port_b" -id b -token chaos -upstream-idle-timeout 1s -peers "a:chaos:ws://127.0.0.1:$port_a/connect" ;;
    client) exec "$bin/remotedialer-client" -connect "ws://127.0.0.1:$port_a/connect" -id foo ;;
    esac >"$work/$1.log" 2>&1 &
    pid_of[$1]=$!
}
reachable() {  # reachable PORT: foo's target answers a one-byte range through that server
    [ "$(curl -s -o /dev/null -w '%{http_code}' -r 0-0 --max-time 5 "$(url "$1")")" = 206 ]
}
wait_ready() {  # wait_ready SECONDS: both peer links up, both servers route to foo; prints the seconds taken
    local start=$SECONDS
    while ! { peer_linked "$port_a" b && peer_linked "$port_b" a && reachable "$port_a" && reachable "$port_b"; }; do
        if ((SECONDS - start > $1)); then return 1; fi
        sleep 0.1
    done
    echo $((SECONDS - start))
}

failures=0
fail() {  # keeps the round's logs in bench-results/chaos
    echo "round $round: FAIL: $*"
    failures=$((failures + 1))
    mkdir -p bench-results/chaos
    for log in "$work"/*.log; do cp "$log" "bench-results/chaos/round$round-$(basename "$log")"; done
}
parties=(a b client target requester)
for ((round = 1; round <= rounds; round++)); do
    for party in target a b client; do start "$party"; done
    if ! wait_ready 30 >/dev/null; then fail "servers never linked and routing to foo"; stop_all; continue; fi
    sleep 1.5  # idle upstream connections kept by the probes close (-upstream-idle-timeout 1s)
    declare -A idle=()
    for party in target a b client; do idle[$party]=$(settled_fds "${pid_of[$party]}"); done

    for i in 1 2 3 4 5 6; do
        port=$([ $((i % 2)) = 0 ] && echo "$port_a" || echo "$port_b")
        curl -sf --limit-rate 20M --max-time 60 -o "$work/out$i" "$(url "$port")" &
        requesters+=("$!")
    done
    victim=${CHAOS_VICTIM:-${parties[RANDOM % ${#parties[@]}]}}
    sleep "0.$((RANDOM % 10))$((RANDOM % 10))"  # the random moment, within the ~1.7 s transfers
    if [ "$victim" = requester ]; then
        kill -9 "${requesters[RANDOM % ${#requesters[@]}]}"
    else
        kill -9 "${pid_of[$victim]}"
        wait "${pid_of[$victim]}" 2>/dev/null || true
        unset "pid_of[$victim]"
    fi
    codes=()
    for pid in "${requesters[@]}"; do
        rc=0
        wait "$pid" || rc=$?
        codes+=("$rc")
    done
    requesters=()

    complete=0 hung=0
    for i in 1 2 3 4 5 6; do
        rc=${codes[i - 1]}
        if [ "$rc" = 0 ]; then
            complete=$((complete + 1))
            if ! cmp -s "$work/out$i" "$work/file"; then
                fail "killed $victim: requester $i reported complete with wrong bytes ($(stat -c %s "$work/out$i") bytes)"
                cp "$work/out$i" "bench-results/chaos/round$round-requester$i"
            fi
        elif [ "$rc" = 28 ]; then
            hung=$((hung + 1))
        fi
        rm -f "$work/out$i"
    done
    ((hung == 0)) || fail "killed $victim: $hung requesters hung until their own timeout"

    bound=8  # a restarted server: the surviving peer's link retries within 5 s + 20% (+1 s: whole seconds)
    [ "$victim" = client ] && bound=5  # a new client connects at once
    [ "$victim" = a ] && bound=36  # the client's backoff grew while A was down
    if [ "$victim" != requester ]; then start "$victim"; fi
    if taken=$(wait_ready "$bound"); then
        echo "round $round: killed $victim; $complete of 6 downloads complete and intact; reachable again after ${taken}s (bound ${bound}s)"
    else
        fail "killed $victim: links and routes to foo not back within ${bound}s"
    fi
    for party in target a b client; do
        [ "$party" = "$victim" ] && continue
        settled=0
        for _ in $(seq 100); do
            [ "$(fds "${pid_of[$party]}")" = "${idle[$party]}" ] && { settled=1; break; }
            sleep 0.1
        done
        ((settled)) || fail "killed $victim: $party holds $(fds "${pid_of[$party]}") fds, ${idle[$party]} when idle"
    done
    stop_all
done
echo "chaos: $rounds rounds, $failures failures"
((failures == 0))
