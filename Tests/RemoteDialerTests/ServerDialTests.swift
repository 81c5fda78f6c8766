import Reactor
@testable import RemoteDialer
import Testing
import TestSupport
import Tunnel

/// `RemoteDialerServer.dial`'s failures by kind: what a caller (a proxy choosing its answer)
/// can tell apart without reading the text.
@Suite(.serialized)
struct ServerDialTests {
    @Test func noSessionAndAFullSessionAreToldApart() throws {
        var options = ServerOptions()
        options.tunnel.maxConnections = 1
        let fixture = try MultiLoopFixture(loops: 1, options: options, clientLoops: 1)
        defer { fixture.shutdown() }
        try fixture.connect(["foo"])
        try #require(fixture.waitForSessions(["foo"]))
        let server = fixture.group.servers[0]
        let kinds = server.loop.runBlocking { () -> [DialError.Kind?] in
            func kind(_ clientKey: String) -> DialError.Kind? {
                do { _ = try server.value.dial(clientKey: clientKey, address: "127.0.0.1:1"); return nil } catch { return error.kind }
            }
            return [kind("nobody"), kind("foo"), kind("foo")]
        }
        #expect(kinds == [.noSession, nil, .session(.tooManyConnections(limit: 1))])
    }
}
