#!/usr/bin/env bash
# Mutation check: breaks one behaviour at a time in a scratch copy of the tree, runs only the
# tests that should notice, and prints caught/missed per mutation with the failing tests' names.
# Exits non-zero if any mutation is missed (or no longer applies: the source drifted).
#
#   bash Scripts/mutate.sh                 # every mutation
#   bash Scripts/mutate.sh 'Pause'         # only those whose name matches the regex
#
# The scratch copy (MUTATE_DIR, default /tmp/remotedialer-mutate) keeps its .build between runs
# and between mutations, so each mutation rebuilds only the module it touches and those above.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SCRATCH="${MUTATE_DIR:-/tmp/remotedialer-mutate}"
ONLY="${1:-}"
TEST_TIMEOUT="${MUTATE_TEST_TIMEOUT:-900}"
export PATH="/opt/swift/usr/bin:$PATH"

mkdir -p "$SCRATCH"
# A fresh copy of the working tree (uncommitted edits included), mtimes kept so the build stays incremental.
find "$SCRATCH" -mindepth 1 -maxdepth 1 ! -name .build -exec rm -rf {} +
(cd "$ROOT" && tar --exclude=./.build --exclude=./.git -cf - .) | (cd "$SCRATCH" && tar -xpf -)
if [[ ! -d "$SCRATCH/.build/checkouts" && -d "$ROOT/.build/checkouts" ]]; then
    mkdir -p "$SCRATCH/.build"  # dependencies already resolved here: no network needed
    cp -a "$ROOT/.build/checkouts" "$ROOT/.build/repositories" "$ROOT/.build/workspace-state.json" "$SCRATCH/.build/"
fi
cd "$SCRATCH" || exit 2
echo "building the unmutated copy in $SCRATCH"
swift build --build-tests >"$SCRATCH/build.log" 2>&1 || { tail -30 "$SCRATCH/build.log"; echo "the unmutated tree does not build"; exit 2; }

rows=()
missed=0

# mutation NAME FILE OLD NEW TEST-FILTER
# OLD must occur exactly once in FILE (else the mutation is reported as stale: fix the table).
mutation() {
    local name="$1" file="$2" old="$3" new="$4" filter="$5"
    [[ -n "$ONLY" && ! "$name" =~ $ONLY ]] && return
    echo "=== $name  ($file; tests: $filter)"
    if ! OLD="$old" NEW="$new" python3 - "$file" <<'PY'
import os, sys
path = sys.argv[1]
text = open(path).read()
old, new = os.environ["OLD"], os.environ["NEW"]
if text.count(old) != 1:
    sys.exit(f"pattern occurs {text.count(old)} times in {path}: {old!r}")
open(path, "w").write(text.replace(old, new))
PY
    then
        rows+=("$name|STALE (pattern not found)|-"); missed=$((missed + 1)); return
    fi
    local log="$SCRATCH/mutation.log"
    local verdict tests
    if ! swift build --build-tests >"$log" 2>&1; then
        grep -m3 "error:" "$log"
        verdict="BUILD FAILS"; tests="-"; missed=$((missed + 1))
    else
        timeout "$TEST_TIMEOUT" swift test --skip-build --no-parallel --filter "$filter" >"$log" 2>&1
        local status=$?
        # Swift Testing: "✘ Test name() failed" (or "name(label:)" for a parameterized test); XCTest: "Test Case '-[Module.Class test]' failed".
        tests=$(grep -oE "✘ Test [A-Za-z0-9_]+\([A-Za-z0-9_:]*\)|Test Case '[^']+' failed" "$log" | sed -E "s/✘ Test //; s/Test Case '-\[[A-Za-z0-9_]+\.([^]]+)\]' failed/\1/" | sort -u | paste -sd, -)
        if [[ $status -eq 124 ]]; then
            verdict="MISSED (tests hung past ${TEST_TIMEOUT}s)"; missed=$((missed + 1))
        elif [[ $status -ne 0 && -n "$tests" ]]; then
            verdict="caught"
        elif [[ $status -ne 0 ]]; then
            verdict="MISSED (tests failed to run, status $status)"; tests="-"; missed=$((missed + 1)); tail -5 "$log"
        elif grep -qE "with 0 tests|Executed 0 tests" "$log" && ! grep -qE "Test run with [1-9]" "$log"; then
            verdict="MISSED (filter selects no test)"; tests="-"; missed=$((missed + 1))
        else
            verdict="MISSED"; tests="-"; missed=$((missed + 1))
        fi
    fi
    cp -p "$ROOT/$file" "$SCRATCH/$file"  # back to the original (the next build recompiles it)
    rows+=("$name|$verdict|$tests")
    echo "    $verdict ${tests}"
}

mutation "receivePause ignored (remote Pause)" Sources/Tunnel/FlowControl.swift \
    'guard isOpen, !remotePaused else { return }' \
    'guard !isOpen else { return }' \
    'SessionOverSocketTests|AsyncTunnelConnectionTests'

mutation "Connection.pauseReading does nothing" Sources/Reactor/Connection.swift \
    '        readingPaused = true
        updateInterest()
    }' \
    '    }' \
    'PauseResumeTests'

mutation "shutdownWrite sends no FIN after queued bytes" Sources/Reactor/Connection.swift \
    '        case .finAfterFlush: sendFIN()' \
    '        case .finAfterFlush: break' \
    'WriteSideTests'

mutation "server never sends 100 Continue" Sources/HTTP/HTTPServerConnection.swift \
    'stream.write(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))' \
    '_ = stream' \
    'HTTPServerCurlTests|HTTPServerConnectionTests'

mutation "peer Close ignored while closing" Sources/WebSocket/WebSocketConnection.swift \
    'case .close(let code, let reason):' \
    'case .close(let code, let reason):
            if state == .closing { return false }' \
    'WebSocketConnectionTests'

mutation "connections resume in a fixed order" Sources/Tunnel/TunnelSession.swift \
    'let first = isWritable ? (all.firstIndex' \
    'let first = !isWritable ? (all.firstIndex' \
    'ResumeOrderTests'

mutation "Resume without hysteresis" Sources/Tunnel/FlowControl.swift \
    'if isSent && !consumerFull && buffered < resumeThreshold {' \
    'if isSent && !consumerFull && buffered <= pauseThreshold {' \
    'InboundPauseTests'

mutation "Resume never sent" Sources/Tunnel/FlowControl.swift \
    'session.sendControl(.resume, connID: id)' \
    '_ = id' \
    'SessionOverSocketTests|AsyncTunnelConnectionTests'

mutation "client ping never sent" Sources/Tunnel/TunnelSession.swift \
    'self?.transport.sendPing()' \
    '_ = self' \
    'LivenessTests'

mutation "idle timeout disabled" Sources/Tunnel/TunnelSession.swift \
    'if idle > options.idleTimeout.nanosecondsClamped { close(error: TunnelError.idleTimeout) }' \
    '_ = idle' \
    'LivenessTests|silentSessionsAreEndedByTheirLoopsIdleCheck'

mutation "a server loop never checks its sessions' idleness" Sources/RemoteDialer/RemoteDialerServer.swift \
    'for session in self?.sessions.everySession ?? [] { session.closeIfIdle() }' \
    '_ = self' \
    'silentSessionsAreEndedByTheirLoopsIdleCheck'

mutation "unsent bytes not limited in the kernel" Sources/Reactor/Connection.swift \
    'Syscall.setOption(fd, Int32(IPPROTO_TCP), TCP_NOTSENT_LOWAT, Int32(clamping: bytes))' \
    '_ = bytes' \
    'aLimitedConnectionKeepsTheExcessInItsOwnQueue|bothEndsLimitWhatTheKernelHoldsUnsent|aLimitOnUnsentBytesReachesTheSocketUnderneath'

mutation "bytes written behind a pending file overtake it" Sources/Reactor/Connection.swift \
    'private var queuedBytesFreeToGo: Int { fileSend?.bytesAhead ?? writeQueue.queuedBytes }' \
    'private var queuedBytesFreeToGo: Int { writeQueue.queuedBytes }' \
    'SendFileTests'

mutation "client backoff fixed at zero" Sources/RemoteDialer/RemoteDialerClient.swift \
    'let delay = min(backoff * Double.random(in: 0.8...1.2), options.maxBackoff)' \
    'let delay = Duration.zero' \
    'ReconnectTests'

mutation "SyncConnections closes nothing" Sources/Tunnel/TunnelSession.swift \
    'for connection in stale {' \
    'for connection in stale where connection.id < 0 {' \
    'SessionOverSocketTests'

mutation "write-queue hard limit ignored" Sources/Reactor/WriteQueue.swift \
    'ring = RingBuffer(minimumCapacity: 4096, maximumCapacity: options.writeQueueLimit)' \
    'ring = RingBuffer(minimumCapacity: 4096, maximumCapacity: 1 << 40)' \
    'PeerFailureTests'

mutation "TLS certificate chain not verified" Sources/TLS/TLSContext.swift \
    'SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)' \
    'SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)' \
    'TLSStreamTests|OpenSSLInteropTests'

mutation "-allow allows everything" Sources/RemoteDialer/AllowList.swift \
    'return patterns.contains { Self.matches(Array($0.utf8)[...], candidate[...]) }' \
    'return !candidate.isEmpty' \
    'AllowListTests'

mutation "drain does not wait for transfers" Sources/RemoteDialer/RemoteDialerServer.swift \
    'return openTunnelledConnections > 0 || otherWork()' \
    'return false' \
    'DrainEndToEndTests'

mutation "draining server keeps connections alive" Sources/HTTP/HTTPServerConnection.swift \
    'keepAlive = keepAliveAllowed && head.keepAlive' \
    'keepAlive = head.keepAlive' \
    'HTTPServerDrainTests'

mutation "bandwidth limit never pauses reading" Sources/RemoteDialer/ThrottledTransport.swift \
    'if paused { inner.socket.pauseReading() } else { inner.socket.resumeReading() }' \
    '_ = paused' \
    'BandwidthLimitEndToEndTests'

mutation "admin API open to every address" Sources/RemoteDialer/AdminAccess.swift \
    'guard allowFrom.contains(remoteAddress) else {' \
    'guard allowFrom.contains(remoteAddress) || true else {' \
    'AdminAPIEndToEndTests'

mutation "admin API answers a rebound Host" Sources/RemoteDialer/AdminAccess.swift \
    'guard Self.namesThisMachine(host: head.headers["Host"]) else {' \
    'guard Self.namesThisMachine(host: head.headers["Host"]) || true else {' \
    'AdminRebindingTests'

# Issue 11: what a hostile peer could do before.
mutation "unknown ids answered without bound" Sources/Tunnel/TunnelSession.swift \
    'guard transport.isWritable, !answeredUnknownIDs.contains(connID) else { return }' \
    'guard connID != .min else { return }' \
    'HostileRemoteTests'

mutation "requester hang-up ignored" Sources/HTTP/HTTPServerConnection.swift \
    'exchange.abort(error: HTTPClientError.closedBeforeResponse)' \
    '_ = exchange' \
    'requesterHangUpEndsTheTunnelledConnectionAtOnce'

mutation "head timeout never fires" Sources/HTTP/HTTPServerConnection.swift \
    'case .awaitingHead(let since, _): return since &+ timeouts.head.nanosecondsClamped' \
    'case .awaitingHead(let since, _): return since &+ (1 << 62)' \
    'silentSlowAndHalfUpgradedSocketsAreClosedAtTheHeadTimeout'

mutation "client sessions may announce clients" Sources/RemoteDialer/RemoteDialerServer.swift \
    'tunnelOptions.maxAnnouncedClients = 0' \
    'tunnelOptions.maxAnnouncedClients = 100_000' \
    'addClientFloodFromAClientSessionStoresNothing'

# Issue 12: who may do what.
mutation "client token not checked" Sources/RemoteDialer/ClientCredentials.swift \
    'guard tokens.verify(name: clientID, token: token) else {' \
    'guard !token.isEmpty || tokens.names.isEmpty else {' \
    'CredentialsTests|impostorIsRefused'

mutation "proxy credential forwarded to the target" Sources/RemoteDialer/ClientRoute.swift \
    'if consumedAuthorization && field.name.equalsIgnoringASCIICase("authorization") { continue }' \
    '_ = consumedAuthorization' \
    'proxyUsersNeedATokenAndAScopeAndTheTargetNeverSeesIt'

# Issue 13: every core.
mutation "requests never move to their session's loop" Sources/RemoteDialer/RemoteDialerServer.swift \
    'guard !exchange.wasMoved, case .elsewhere(let sibling) = route(clientKey: clientKey) else { return false }' \
    'guard false, case .elsewhere(let sibling) = route(clientKey: clientKey) else { return false }' \
    'MultiLoopServerTests'

mutation "a leaving client stays in the directory" Sources/RemoteDialer/RemoteDialerServer.swift \
    '                directory.removeClient(clientKey, loop: loopIndex)' \
    '                _ = clientKey' \
    'aClientLeavingIsGoneFromEveryLoopWithinASecond'

echo
printf '%-40s | %-32s | %s\n' "mutation" "result" "caught by"
printf '%-40s-+-%-32s-+-%s\n' "$(printf -- '-%.0s' {1..40})" "$(printf -- '-%.0s' {1..32})" "----------"
for row in "${rows[@]}"; do
    IFS='|' read -r name verdict tests <<<"$row"
    printf '%-40s | %-32s | %s\n' "$name" "$verdict" "$tests"
done
echo "$missed missed of ${#rows[@]}"
[[ $missed -eq 0 ]]
