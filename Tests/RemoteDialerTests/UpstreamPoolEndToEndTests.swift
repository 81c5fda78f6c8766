import Foundation
import Glibc
import Reactor
@testable import RemoteDialer
import Testing
import TestSupport

/// `/client/...` upstream keep-alive: which answers leave their tunnelled connection for the
/// next request, and which never do; what ends an idle one; the caps. Facts come from the
/// target (the connections it accepted, the connection each request arrived on) and from the
/// server's pool, never from timing.
@Suite(.serialized)
struct UpstreamPoolEndToEndTests {
    private static func fixture(loops: Int = 1, _ configure: (inout ServerOptions) -> Void = { _ in }) throws -> MultiLoopFixture {
        var options = ServerOptions()
        configure(&options)
        let fixture = try MultiLoopFixture(loops: loops, options: options, clientLoops: 1)
        try fixture.connect(["foo"])
        guard fixture.waitForSessions(["foo"]) else {
            fixture.shutdown()
            throw FixtureError("the session did not come up")
        }
        return fixture
    }

    private static func request(_ fixture: MultiLoopFixture, _ target: ScriptedTarget, _ path: String, method: String = "GET",
                                body: String? = nil) -> (status: Int, body: String)? {
        request(port: fixture.port, target, path, method: method, body: body)
    }

    private static func request(port: UInt16, _ target: ScriptedTarget, _ path: String, method: String = "GET",
                                body: String? = nil) -> (status: Int, body: String)? {
        var text = "\(method) /client/foo/http/127.0.0.1:\(target.port)\(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        if let body { text += "Content-Length: \(body.utf8.count)\r\n\r\n\(body)" } else { text += "\r\n" }
        return MultiLoopFixture.response(rawExchange(port: port, text, seconds: 30)).map { ($0.status, String(decoding: $0.body, as: UTF8.self)) }
    }

    private static func server(_ fixture: MultiLoopFixture) -> LoopBound<RemoteDialerServer> { fixture.group.servers[0] }

    private static func idle(_ fixture: MultiLoopFixture) -> Int { fixture.group.onEveryLoop { $0.idleUpstreamConnections }.reduce(0, +) }

    private static func idle(_ fixture: MultiLoopFixture, for target: ScriptedTarget) -> Int {
        let key = UpstreamPool.Target(clientKey: "foo", scheme: "http", address: "127.0.0.1:\(target.port)")
        return fixture.group.onEveryLoop { $0.upstreamPool.idleCount(for: key) }.reduce(0, +)
    }

    @Test func sequentialRequestsThroughOneSessionReuseOneConnection() throws {
        let fixture = try Self.fixture()
        defer { fixture.shutdown() }
        let target = ScriptedTarget()
        defer { target.stop() }

        for path in ["/ok", "/chunked", "/ok", "/ok"] {
            let answer = Self.request(fixture, target, path)
            #expect(answer?.status == 200 && answer?.body == "ok", "\(path)")
        }
        #expect(Self.request(fixture, target, "/ok", method: "HEAD")?.status == 200)
        #expect(Self.request(fixture, target, "/echo", method: "POST", body: "hello")?.body == "hello")
        #expect(Self.request(fixture, target, "/echo", method: "POST", body: "again")?.body == "again")
        #expect(Self.request(fixture, target, "/ok")?.body == "ok")

        #expect(target.acceptedConnections == 1)
        #expect(target.received.count == 8 && target.received.allSatisfy { $0.connection == 1 })
        #expect(!target.received.contains { $0.head.lowercased().contains("connection: close") })
        #expect(Self.idle(fixture) == 1)
        #expect(fixture.group.onEveryLoop { $0.upstreamConnectionsReused }.reduce(0, +) == 7)
    }

    @Test func requestsLandingOnAnyLoopReuseTheConnectionOnTheSessionsLoop() throws {
        let fixture = try Self.fixture(loops: 2)
        defer { fixture.shutdown() }
        let target = ScriptedTarget()
        defer { target.stop() }

        // Each request arrives on a new socket, on whichever loop the kernel picks, and moves to
        // the session's loop, whose pool serves it.
        for _ in 0..<8 { #expect(Self.request(fixture, target, "/ok")?.body == "ok") }
        #expect(target.acceptedConnections == 1)
        #expect(Self.idle(fixture) == 1)
    }

    @Test func answersThatMayNotBeReusedLeaveTheirConnectionClosed() throws {
        let fixture = try Self.fixture()
        defer { fixture.shutdown() }
        let target = ScriptedTarget()
        defer { target.stop() }

        for path in ["/close", "/eof", "/http10", "/extra"] {
            #expect(Self.request(fixture, target, "/ok")?.body == "ok")
            #expect(Self.request(fixture, target, path)?.body == "ok", "\(path)")
            // The next request goes out on a connection of its own, and gets its own answer
            // (never the unrequested one `/extra` sent behind its own).
            #expect(Self.request(fixture, target, "/ok")?.body == "ok", "after \(path)")
            let received = target.received.suffix(3).map(\.connection)
            #expect(received.count == 3 && received[0] == received[1] && received[2] != received[1], "\(path): connections \(received)")
        }
        // Each was closed by us (or by the target, for /eof): only the last /ok's connection stays.
        #expect(waitUntil(seconds: 10) { target.openConnections == 1 })
        #expect(Self.idle(fixture) == 1)
    }

    @Test func bytesArrivingOnAnIdleConnectionCloseIt() throws {
        let fixture = try Self.fixture()
        defer { fixture.shutdown() }
        let target = ScriptedTarget()
        defer { target.stop() }

        #expect(Self.request(fixture, target, "/ok")?.body == "ok")
        #expect(Self.idle(fixture) == 1)
        target.sendToOpenConnections("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nevil!")
        #expect(waitUntil(seconds: 10) { target.closedConnections == 1 })
        #expect(Self.idle(fixture) == 0)
        #expect(Self.request(fixture, target, "/ok")?.body == "ok")
        #expect(target.acceptedConnections == 2)
    }

    @Test func aConnectionTheTargetClosesWhenReusedIsRetriedForGetButNeverForPost() throws {
        let fixture = try Self.fixture()
        defer { fixture.shutdown() }
        let target = ScriptedTarget()
        defer { target.stop() }

        #expect(Self.request(fixture, target, "/ok")?.body == "ok")
        target.dropRequestsOnReusedConnections = true
        // Sent on the pooled connection, which the target closes unanswered: sent again on a new one.
        let retried = Self.request(fixture, target, "/ok")
        #expect(retried?.status == 200 && retried?.body == "ok")
        #expect(target.received.map(\.connection) == [1, 1, 2])
        #expect(target.acceptedConnections == 2)

        // A POST with a body on the (now pooled) second connection fails, and is never sent twice.
        let post = Self.request(fixture, target, "/echo", method: "POST", body: "once")
        #expect(post?.status == 500)
        #expect(target.received.filter { $0.method == "POST" }.count == 1)
        #expect(target.received.last?.connection == 2)
        // Nothing was left pooled; the next GET dials again and succeeds.
        #expect(Self.request(fixture, target, "/ok")?.body == "ok")
        #expect(target.received.last?.connection == 3)
        #expect(target.received.filter { $0.method == "POST" }.count == 1)
    }

    @Test func theIdleTimeoutClosesAPooledConnection() throws {
        let fixture = try Self.fixture { $0.upstreamIdleTimeout = .milliseconds(200) }
        defer { fixture.shutdown() }
        let target = ScriptedTarget()
        defer { target.stop() }

        #expect(Self.request(fixture, target, "/ok")?.body == "ok")
        #expect(waitUntil(seconds: 10) { target.closedConnections == 1 })
        #expect(Self.idle(fixture) == 0)
        #expect(fixture.group.onEveryLoop { $0.openTunnelledConnections }.reduce(0, +) == 0)
        // The next request dials a new connection.
        #expect(Self.request(fixture, target, "/ok")?.body == "ok")
        #expect(target.acceptedConnections == 2)
    }

    @Test func theSessionEndingEmptiesThePool() throws {
        let fixture = try Self.fixture()
        defer { fixture.shutdown() }
        let target = ScriptedTarget()
        defer { target.stop() }

        #expect(Self.request(fixture, target, "/ok")?.body == "ok")
        #expect(Self.idle(fixture) == 1)
        fixture.disconnect("foo")
        #expect(waitUntil(seconds: 10) { Self.idle(fixture) == 0 })
        #expect(waitUntil(seconds: 10) { target.closedConnections == 1 })
        #expect(fixture.group.onEveryLoop { $0.openTunnelledConnections }.reduce(0, +) == 0)

        // A new session of the same client never gets the old session's connection.
        try fixture.connect(["foo"])
        #expect(fixture.waitForSessions(["foo"]))
        #expect(Self.request(fixture, target, "/ok")?.body == "ok")
        #expect(target.acceptedConnections == 2)
    }

    /// `count` requests to `/gate` in flight at once (the target holds them all until the last
    /// has arrived), so that `count` upstream connections end together.
    private static func concurrentGated(_ fixture: MultiLoopFixture, _ target: ScriptedTarget, count: Int) -> [String?] {
        let answers = (0..<count).map { _ in OneShot<String?>() }
        let port = fixture.port
        for answer in answers {
            Thread { answer.set(request(port: port, target, "/gate")?.body) }.start()
        }
        _ = waitUntil(seconds: 30) { target.received.count >= count }
        target.openGate()
        return answers.map { $0.wait(seconds: 30) ?? nil }
    }

    @Test func theCapsPerTargetAndInTotalHold() throws {
        let fixture = try Self.fixture {
            $0.upstreamIdlePerTarget = 2
            $0.upstreamIdleTotal = 3
        }
        defer { fixture.shutdown() }
        let first = ScriptedTarget(), second = ScriptedTarget()
        defer { first.stop(); second.stop() }

        #expect(Self.concurrentGated(fixture, first, count: 4) == Array(repeating: "ok", count: 4))
        #expect(first.acceptedConnections == 4)
        #expect(Self.idle(fixture, for: first) == 2)
        #expect(waitUntil(seconds: 10) { first.openConnections == 2 })

        #expect(Self.concurrentGated(fixture, second, count: 4) == Array(repeating: "ok", count: 4))
        // Two more for the second target, at most three in all: the first's oldest made room.
        #expect(Self.idle(fixture, for: second) == 2)
        #expect(Self.idle(fixture, for: first) == 1)
        #expect(Self.idle(fixture) == 3)
        #expect(waitUntil(seconds: 10) { first.openConnections == 1 && second.openConnections == 2 })
    }

    @Test func withPoolingOffEveryRequestDialsAndAsksToClose() throws {
        let fixture = try Self.fixture { $0.upstreamIdlePerTarget = 0 }
        defer { fixture.shutdown() }
        let target = ScriptedTarget()
        defer { target.stop() }

        for _ in 0..<3 { #expect(Self.request(fixture, target, "/ok")?.body == "ok") }
        #expect(target.acceptedConnections == 3)
        #expect(target.received.allSatisfy { $0.head.lowercased().contains("connection: close") })
        #expect(Self.idle(fixture) == 0)
        #expect(waitUntil(seconds: 10) { target.openConnections == 0 })
    }
}
