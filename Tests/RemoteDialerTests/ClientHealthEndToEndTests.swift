import Foundation
import Testing

/// `/client/{id}/healthz` answers from the session directory: direct, through a peer, unknown,
/// and under the proxy route's access rules.
@Suite(.serialized)
struct ClientHealthEndToEndTests {
    private func health(_ port: UInt16, client: String, query: String = "") throws -> (Int, String) {
        let answer = try curl(["http://127.0.0.1:\(port)/client/\(client)/healthz\(query)"])
        return (answer.status, String(decoding: answer.body, as: UTF8.self))
    }

    @Test func aClientIsHealthyDirectlyAndThroughAPeerAndAnUnknownOneIs503() throws {
        let deployment = try Deployment()
        let portA = freePort(), portB = freePort()
        try deployment.startServer(["-id", "a", "-token", "secret", "-peers", "b:secret:ws://127.0.0.1:\(portB)/connect"], port: portA)
        try deployment.startServer(["-id", "b", "-token", "secret", "-peers", "a:secret:ws://127.0.0.1:\(portA)/connect"], port: portB)
        let client = try deployment.startClient(serverPort: portA, waitOn: portB)

        #expect(try health(portA, client: "foo", query: "?name=probe") == (200, "addrss:127.0.0.1:\(portA) receive name=probe from client:foo\n"))
        #expect(try health(portB, client: "foo", query: "?name=lb") == (200, "addrss:127.0.0.1:\(portB) receive name=lb from client:foo\n"))
        #expect(try health(portA, client: "foo") == (200, "addrss:127.0.0.1:\(portA) receive name= from client:foo\n"))
        #expect(try health(portA, client: "bar") == (503, "failed to find Session for client bar\n"))

        // The answer follows the session directory as the client goes.
        client.stop()
        #expect(waitUntil(seconds: 10) { (try? health(portB, client: "foo"))?.0 == 503 })
        #expect(try health(portA, client: "foo") == (503, "failed to find Session for client foo\n"))
    }

    @Test func theHealthRouteHasTheProxyRoutesAccessRules() throws {
        let deployment = try Deployment()
        let outside = try deployment.startServer(["-proxy-allow-from", "10.0.0.0/8"])
        #expect(try health(outside, client: "foo").0 == 403)
        let tokens = deployment.directory.appendingPathComponent("proxy-tokens")
        try "ops 5b2e0c1a9f7d4e3b8c6a foo\n".write(to: tokens, atomically: true, encoding: .utf8)
        let guarded = try deployment.startServer(["-proxy-tokens", tokens.path])
        #expect(try health(guarded, client: "foo").0 == 401)
        let wrongClient = try curl(["-H", "Authorization: Bearer 5b2e0c1a9f7d4e3b8c6a", "http://127.0.0.1:\(guarded)/client/bar/healthz"])
        #expect(wrongClient.status == 403)
        let allowed = try curl(["-H", "Authorization: Bearer 5b2e0c1a9f7d4e3b8c6a", "http://127.0.0.1:\(guarded)/client/foo/healthz"])
        #expect(allowed.status == 503, "allowed through, and foo is not connected")
    }
}
