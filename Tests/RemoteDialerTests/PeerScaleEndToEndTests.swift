import Foundation
import Glibc
import Reactor
@testable import RemoteDialer  // to quiet the 5,000 in-process clients' logs
import Testing
import TestSupport
import Tunnel

/// rancher/rancher#45129 (peering broke near 3,800 clusters) with two real server processes:
/// the in-process `fiveThousandAnnouncedPeerKeysAreAllReachable` (TunnelTests) drives one
/// session's announcements; here 5,000 real client sessions connect to server A and A announces
/// them to its peer B over the peer link, as in production.
@Suite(.serialized)
struct PeerScaleEndToEndTests {
    @Test func fiveThousandClientsOnOneServerAreAllAnnouncedToItsPeerAndReachableThroughIt() throws {
        let deployment = try Deployment(fileSize: 64 << 10)
        let portA = freePort(), portB = freePort()
        try deployment.startServer(["-id", "a", "-token", "scale", "-peers", "b:scale:ws://127.0.0.1:\(portB)/connect"], port: portA)
        try deployment.startServer(["-id", "b", "-token", "scale", "-peers", "a:scale:ws://127.0.0.1:\(portA)/connect"], port: portB)
        let (serverA, serverB) = (deployment.servers[0], deployment.servers[1])
        try #require(waitUntil(seconds: 20) { announcedByA(toPeerOn: portB) != nil }, "B never linked to A: \(serverB.output.suffix(1000))")
        let residentBefore = (a: serverA.residentBytes, b: serverB.residentBytes)

        let keys = (0..<5_000).map { "cluster-\($0)" }
        let descriptorsBefore = openFileDescriptorCount()
        do {  // the clients and their loop end with this scope
            let group = try ReactorGroup(loopCount: 1, name: "scale-clients")
            defer { group.shutdown() }
            let loop = group.loops[0]
            let connected = SessionCount()
            let url = try WebSocketURL("ws://127.0.0.1:\(portA)/connect")
            let start = ContinuousClock.now
            let clients = loop.runBlocking {
                keys.map { key in
                    let client = RemoteDialerClient(loop: loop, url: url, headers: [(TunnelHeaders.clientID, key)])
                    client.logger.logLevel = .critical
                    client.onConnect = { _ in connected.increment() }
                    client.start()
                    return client
                }
            }
            defer { loop.runBlocking { for client in clients { client.stop() } } }

            try #require(waitUntil(seconds: 120) { connected.value == keys.count }, "\(connected.value) of \(keys.count) sessions connected")
            let connectTime = ContinuousClock.now - start
            let allAnnounced = waitUntil(seconds: 60) { announcedByA(toPeerOn: portB) == keys.count }
            let announceTime = ContinuousClock.now - start
            #expect(allAnnounced, "B lists \(announcedByA(toPeerOn: portB) ?? -1) of \(keys.count) keys announced by A")
            let residentAfter = (a: serverA.residentBytes, b: serverB.residentBytes)
            print("""
                #45129 with two servers: \(keys.count) client sessions up on A \(connectTime) after the first dial, all announced to B \
                after \(announceTime); RSS A \(residentBefore.a >> 20) -> \(residentAfter.a >> 20) MiB \
                (\((residentAfter.a - residentBefore.a) / keys.count) bytes a session), B \(residentBefore.b >> 20) -> \(residentAfter.b >> 20) MiB \
                (\((residentAfter.b - residentBefore.b) / keys.count) bytes an announced key)
                """)

            // Through B, which has no client of its own: every request crosses the peer link to A.
            let sample = stride(from: 0, to: keys.count, by: 97).map { keys[$0] } + [keys[keys.count - 1]]
            var failures: [String] = []
            for key in sample {
                let answer = try curl([deployment.url(portB, client: key)])
                if answer.status != 200 || answer.body != deployment.file { failures.append("\(key): HTTP \(answer.status), \(answer.body.count) bytes") }
            }
            #expect(failures.isEmpty, "\(failures.count) of \(sample.count) sampled keys failed through B: \(failures.prefix(3))")
        }
        var descriptors = 0
        #expect(waitUntil(seconds: 30) { descriptors = openFileDescriptorCount(); return descriptors <= descriptorsBefore },
                "\(descriptors) descriptors open after the clients stopped, \(descriptorsBefore) before")
        let unknown = try curl([deployment.url(portB, client: "cluster-\(keys.count)")])
        #expect(String(decoding: unknown.body, as: UTF8.self).hasSuffix("failed to find Session for client cluster-\(keys.count)"))
    }
}

/// How many client keys B's admin API lists as announced by its peer A; nil before the link is up.
private func announcedByA(toPeerOn port: UInt16) -> Int? {
    guard let answer = try? curl(["http://127.0.0.1:\(port)/api/peers"]), answer.status == 200,
          let document = try? JSONSerialization.jsonObject(with: answer.body) as? [String: Any],
          let peers = document["peers"] as? [[String: Any]],
          let peerA = peers.first(where: { $0["id"] as? String == "a" }), peerA["state"] as? String == "connected",
          let announced = peerA["announced"] as? [String] else { return nil }
    return announced.count
}

final class SessionCount: @unchecked Sendable {  // `lock` guards `count`
    private let lock = PThreadLock()
    private var count = 0
    func increment() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
