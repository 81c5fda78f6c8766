import Glibc
@testable import HTTP
import Reactor
@testable import RemoteDialer
import Testing
import TestSupport

/// A `/client/...` request's own connection holds partial segments (`holdsPartialSegments`):
/// the response body arrives from the tunnel in 64 KiB payloads, each just past a loopback
/// segment, and would go out as a full segment and a ~50-byte one each.
@Suite(.serialized)
struct ClientRouteSegmentTests {
    @Test func theRequestersConnectionHoldsPartialSegments() throws {
        let fixture = try MultiLoopFixture(loops: 1, options: ServerOptions(), clientLoops: 1)
        defer { fixture.shutdown() }
        try fixture.connect(["foo"])
        try #require(fixture.waitForSessions(["foo"]))
        let target = ScriptedTarget()
        defer { target.stop() }
        let fd = try #require(connectLoopback(port: fixture.port))
        defer { close(fd) }
        // The target answers /gate only once opened: the request is routed and waiting meanwhile.
        #expect(sendAll(fd, Array("GET /client/foo/http/127.0.0.1:\(target.port)/gate HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)))
        let server = fixture.group.servers[0]
        let holding = { server.loop.runBlocking { server.value.httpServer?.handlers.values.map(\.stream.holdsPartialSegments) ?? [] } }
        #expect(waitUntil { !target.received.isEmpty }, "the request never reached the target")
        #expect(holding() == [true])
        target.openGate()
        #expect(MultiLoopFixture.response(readToEnd(fd, seconds: 30))?.status == 200)
    }
}
