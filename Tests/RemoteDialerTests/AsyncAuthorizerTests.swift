import Foundation
import HTTP
import Reactor
import RemoteDialer
import Testing
import TestSupport
import Tunnel

/// The authorizer may answer later, from any thread; the upgrade waits within the head timeout.
@Suite(.serialized)
struct AsyncAuthorizerTests {
    /// Keeps the authorizer's answers for the test to give (or withhold).
    final class PendingDecisions: @unchecked Sendable {  // `lock` guards `answers`
        private let lock = PThreadLock()
        private var answers: [@Sendable (AuthorizationDecision) -> Void] = []
        func add(_ answer: @escaping @Sendable (AuthorizationDecision) -> Void) { lock.withLock { answers.append(answer) } }
        var count: Int { lock.withLock { answers.count } }
        func answerAll(_ decision: AuthorizationDecision) {
            for answer in lock.withLock({ answers }) { answer(decision) }
        }
    }

    func withServer(headTimeout: Duration, _ body: (RemoteDialerServer, UInt16, PendingDecisions) throws -> Void) throws {
        let group = try ReactorGroup(loopCount: 1, name: "async-auth")
        defer { group.shutdown() }
        let loop = group.loops[0]
        let pending = PendingDecisions()
        var timeouts = HTTPTimeouts()
        timeouts.head = headTimeout
        let (server, http, port) = try loop.runBlocking { () throws -> (RemoteDialerServer, HTTPServer, UInt16) in
            let server = RemoteDialerServer(loop: loop) { _, answer in pending.add(answer) }
            let http = HTTPServer(loop: loop, timeouts: timeouts) { server.handleConnect($0) }
            return (server, http, try http.listen(on: SocketAddress("127.0.0.1:0")).port)
        }
        defer { loop.runBlocking { http.close(); server.shutdown() } }
        try body(server, port, pending)
    }

    @Test func aLateAnswerFromAnotherThreadAdmitsTheSession() throws {
        try withServer(headTimeout: .seconds(10)) { server, port, pending in
            let answered = OneShot<Void>()
            Thread {
                _ = waitUntil(seconds: 10) { pending.count == 1 }
                usleep(300_000)  // an identity service taking its time
                pending.answerAll(.accept(clientKey: "late"))
                answered.set(())
            }.start()
            let client = try #require(RawTunnelClient(port: port, clientID: "ignored-by-this-authorizer"))
            #expect(answered.wait(seconds: 10) != nil)
            #expect(client.upgraded, "\(client.statusLine)")
            #expect(waitUntil(seconds: 5) { server.loop.runBlocking { server.hasSession(clientKey: "late") } })
        }
    }

    @Test func noAnswerWithinTheHeadTimeoutIs408AndALaterAnswerIsDropped() throws {
        try withServer(headTimeout: .seconds(1)) { server, port, pending in
            let start = Date()
            let client = try #require(RawTunnelClient(port: port, clientID: "foo"))
            let elapsed = Date().timeIntervalSince(start)
            #expect(client.statusLine.hasPrefix("HTTP/1.1 408 "), "\(client.statusLine)")
            #expect(elapsed > 0.9 && elapsed < 5, "answered after \(elapsed) s")
            pending.answerAll(.accept(clientKey: "foo"))
            pending.answerAll(.refuse(status: .forbidden, body: "twice"))
            usleep(200_000)
            #expect(!server.loop.runBlocking { server.hasSession(clientKey: "foo") })
        }
    }
}
