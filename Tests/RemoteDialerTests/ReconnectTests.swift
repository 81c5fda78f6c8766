import HTTP
import Reactor
import RemoteDialer
import Testing
import TestSupport
import Tunnel

/// When each handshake reached the server, recorded from the server's authorizer.
final class AttemptLog: @unchecked Sendable {  // `lock` guards `times`
    private let lock = PThreadLock()
    private var times: [ContinuousClock.Instant] = []
    var count: Int { lock.withLock { times.count } }
    var gaps: [Duration] { lock.withLock { zip(times.dropFirst(), times).map { $0 - $1 } } }
    /// Records an attempt; true once more than `refusals` were made.
    func record() -> Bool { lock.withLock { times.append(.now); return times.count } > Self.refusals }
    static let refusals = 4
}

@Suite(.serialized)
struct ReconnectTests {
    /// A server that refuses the client four times, then lets it in: the client retries after
    /// 100, 200, 400, 400 ms (doubling up to the maximum, ±20% jitter), then has a session.
    @Test func refusedClientRetriesWithDoublingBackoffUntilItConnects() throws {
        let group = try ReactorGroup(loopCount: 1, name: "reconnect")
        defer { group.shutdown() }
        let loop = group.loops[0]
        let attempts = AttemptLog()
        let connected = OneShot<Int>()
        var options = ClientOptions()
        options.initialBackoff = .milliseconds(100)
        options.maxBackoff = .milliseconds(400)
        let (server, http, client) = try loop.runBlocking { () throws -> (RemoteDialerServer, HTTPServer, RemoteDialerClient) in
            let server = RemoteDialerServer(loop: loop, authorizer: synchronousAuthorizer { _ in
                attempts.record() ? .accept(clientKey: "foo") : .unauthorized
            })
            let http = HTTPServer(loop: loop) { server.handleConnect($0) }
            let port = try http.listen(on: SocketAddress("127.0.0.1:0")).port
            let client = RemoteDialerClient(loop: loop, url: try WebSocketURL("ws://127.0.0.1:\(port)/connect"),
                                            headers: [(TunnelHeaders.clientID, "foo")], options: options)
            client.onConnect = { _ in connected.set(attempts.count) }
            client.start()
            return (server, http, client)
        }
        defer { loop.runBlocking { client.stop(); http.close(); server.shutdown() } }

        #expect(connected.wait(seconds: 10) == AttemptLog.refusals + 1, "the client never got its session")
        let expected: [Duration] = [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(400)]
        let gaps = attempts.gaps
        #expect(gaps.count == expected.count)
        for (gap, backoff) in zip(gaps, expected) {
            // Jitter is ±20%; above, allow for a loaded machine, but not for another doubling.
            #expect(gap >= backoff * 0.8 && gap < backoff * 1.2 + .milliseconds(150), "gaps \(gaps), expected \(expected) ±20%")
        }
    }
}
