import Reactor
import Testing
@testable import RemoteDialer

/// `PeerDiscovery` with an injected resolver: peers follow the answers, the server's own
/// address is never a peer, a failed lookup keeps what was linked.
struct PeerDiscoveryTests {
    /// Answers lookups with whatever the test set last (a failure when nil).
    final class FakeDNS: @unchecked Sendable {  // `lock` guards `answer` and `lookups`
        private let lock = PThreadLock()
        private var answer: [String]? = []
        private var lookups = 0
        func set(_ addresses: [String]?) { lock.withLock { answer = addresses } }
        var lookupCount: Int { lock.withLock { lookups } }
        func resolve(_ host: String, _ port: UInt16, _ loop: EventLoop,
                     _ completion: @escaping @Sendable (Result<[SocketAddress], SocketError>) -> Void) {
            let answer = lock.withLock { lookups += 1; return self.answer }
            guard let answer else { return completion(.failure(SocketError(.resolution("lookup \(host): no such host"), operation: "dial"))) }
            completion(.success(answer.map { SocketAddress(ipLiteral: $0, port: port)! }))
        }
    }

    @Test func peersFollowTheAnswersWithoutTheServersOwnAddress() throws {
        let group = try ReactorGroup(loopCount: 1, name: "peers-dns")
        defer { group.shutdown() }
        let loop = group.loops[0]
        let dns = FakeDNS()
        dns.set(["127.0.0.1", "127.0.0.2", "::1"])
        var options = ServerOptions()
        options.peerID = "a"
        options.peerToken = "shared"
        let (server, discovery) = loop.runBlocking { () -> (RemoteDialerServer, PeerDiscovery) in
            let server = RemoteDialerServer(loop: loop, options: options)
            let discovery = PeerDiscovery(server: server, name: "replicas", port: 8123, token: "shared", interval: .milliseconds(50),
                                          ownAddresses: ["127.0.0.1"], resolve: dns.resolve)
            discovery.start()
            return (server, discovery)
        }
        defer { loop.runBlocking { discovery.stop(); server.shutdown() } }
        func peers() -> [String: String] { loop.runBlocking { discovery.peers } }

        #expect(waitUntil(seconds: 5) { peers() == ["dns:127.0.0.2": "ws://127.0.0.2:8123/connect", "dns:::1": "ws://[::1]:8123/connect"] }, "\(peers())")
        #expect(loop.runBlocking { server.peerIDs } == ["dns:127.0.0.2", "dns:::1"])

        // A failed lookup changes nothing; a replica that leaves the answer is unlinked.
        dns.set(nil)
        let failedAt = dns.lookupCount
        #expect(waitUntil(seconds: 5) { dns.lookupCount > failedAt + 1 })
        #expect(peers().count == 2)
        dns.set(["127.0.0.1", "::1"])
        #expect(waitUntil(seconds: 5) { loop.runBlocking { server.peerIDs } == ["dns:::1"] })
        // After stop, no lookup changes the peers.
        loop.runBlocking { discovery.stop() }
        dns.set(["127.0.0.3"])
        let stoppedAt = dns.lookupCount
        #expect(!waitUntil(seconds: 0.3) { dns.lookupCount > stoppedAt })
        #expect(peers() == ["dns:::1": "ws://[::1]:8123/connect"])
    }
}
