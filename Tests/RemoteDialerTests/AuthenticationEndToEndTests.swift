import Digest
import Foundation
import Glibc
import Testing
import TLS

/// Issue 12 with the real programs: clients prove who they are, proxy users need a credential
/// and a scope, and credentials rotate on SIGHUP.
@Suite(.serialized)
struct AuthenticationEndToEndTests {
    static let fooToken = "foo-token-0123456789abcdef"
    static let barToken = "bar-token-0123456789abcdef"

    /// The impostor of the issue: a second session claiming `foo` without foo's token is
    /// refused, so the real client keeps every dial.
    @Test func impostorIsRefusedAndTheRealClientKeepsEveryDial() throws {
        let deployment = try Deployment(fileSize: 64 << 10)
        let tokens = try deployment.write("foo \(Self.fooToken)\n", to: "client-tokens")
        let port = try deployment.startServer(["-client-tokens", tokens])
        try deployment.startClient(serverPort: port, environment: ["REMOTEDIALER_TOKEN": Self.fooToken])
        let server = deployment.servers[0]
        #expect(!server.output.contains("clients are not authenticated"))

        let noToken = try #require(RawTunnelClient(port: port, clientID: "foo"))
        #expect(noToken.statusLine.hasPrefix("HTTP/1.1 401 "), "\(noToken.statusLine)")
        let wrongToken = try #require(RawTunnelClient(port: port, clientID: "foo", extraHeaders: "X-API-Tunnel-Token: \(Self.barToken)\r\n"))
        #expect(wrongToken.statusLine.hasPrefix("HTTP/1.1 401 "), "\(wrongToken.statusLine)")
        let body = String(decoding: wrongToken.socket.read(atLeast: 20), as: UTF8.self)
        #expect(body.hasPrefix("failed authentication"), "\(body)")

        for _ in 0..<20 {
            let download = try curl([deployment.url(port)])
            #expect(download.status == 200 && download.body == deployment.file)
        }
        #expect(waitUntil(seconds: 5) { server.output.contains("refused client \"foo\" from 127.0.0.1:") })
        #expect(!server.output.contains(Self.barToken), "a presented token reached the log")
    }

    /// `sha256:` entries, a client started with `-token`, and the Go demo's open mode with its warning.
    @Test func hashedTokensWorkAndTheOpenModeWarns() throws {
        let deployment = try Deployment(fileSize: 1024)
        let digest = Digest.hex(Digest.sha256(Array(Self.barToken.utf8)))
        let tokens = try deployment.write("# hashed\nbar sha256:\(digest)\n", to: "client-tokens")
        let port = try deployment.startServer(["-client-tokens", tokens])
        try deployment.startClient(serverPort: port, id: "bar", ["-token", Self.barToken])

        let open = try deployment.startServer()
        #expect(waitUntil(seconds: 5) { deployment.servers[1].output.contains("clients are not authenticated: anyone can register as any client id") })
        try deployment.startClient(serverPort: open, id: "anyone")
    }

    /// Proxy users: no token 401 (with WWW-Authenticate), out of scope 403, good token 200, and
    /// the target never sees the credential.
    @Test func proxyUsersNeedATokenAndAScopeAndTheTargetNeverSeesIt() throws {
        let deployment = try Deployment(fileSize: 1024)
        let users = try deployment.write("alice alice-token-0123456789 foo\nbob bob-token-0123456789 bar,team-*\n", to: "proxy-tokens")
        let port = try deployment.startServer(["-proxy-tokens", users])
        try deployment.startClient(serverPort: port, probe: ["-H", "Authorization: Bearer alice-token-0123456789"])
        let echo = HeadEchoServer()
        let url = deployment.url(port, target: "127.0.0.1:\(echo.port)", path: "seen")

        let headerFile = deployment.directory.appendingPathComponent("anonymous-headers").path
        let anonymous = try curl(["-D", headerFile, url])
        #expect(anonymous.status == 401)
        let headers = (try? String(contentsOfFile: headerFile, encoding: .utf8)) ?? ""
        #expect(headers.contains("WWW-Authenticate: Bearer realm=\"remotedialer\""), "\(headers)")
        let outOfScope = try curl(["-H", "Authorization: Bearer bob-token-0123456789", url])
        #expect(outOfScope.status == 403)
        let wrong = try curl(["-H", "Authorization: Bearer nobody-token-0123456789", url])
        #expect(wrong.status == 401)
        let bearer = try curl(["-H", "Authorization: Bearer alice-token-0123456789", "-H", "X-Other: kept", url])
        #expect(bearer.status == 200)
        let seen = String(decoding: bearer.body, as: UTF8.self)
        #expect(seen.hasPrefix("GET /seen HTTP/1.1\r\n"), "\(seen)")
        #expect(seen.contains("X-Other: kept"))
        #expect(!seen.lowercased().contains("authorization"), "the credential was forwarded: \(seen)")
        let basic = try curl(["-u", "alice:alice-token-0123456789", url])
        #expect(basic.status == 200 && !String(decoding: basic.body, as: UTF8.self).lowercased().contains("authorization"))
    }

    /// Without proxy users the route is served only to the allowed address ranges; /metrics can
    /// be restricted the same way while /healthz stays open.
    @Test func addressRangesGateTheProxyRouteAndMetrics() throws {
        let deployment = try Deployment(fileSize: 1024)
        let port = try deployment.startServer(["-proxy-allow-from", "127.0.0.1/32", "-metrics-allow-from", "127.0.0.9/32"])
        try deployment.startClient(serverPort: port)
        let other = try curl(["--interface", "127.0.0.2", deployment.url(port)])
        #expect(other.status == 403, "127.0.0.2 got \(other.status)")
        #expect(try curl([deployment.url(port)]).status == 200)
        #expect(try curl(["http://127.0.0.1:\(port)/metrics"]).status == 403)
        #expect(try curl(["--interface", "127.0.0.9", "http://127.0.0.1:\(port)/metrics"]).status == 200)
        #expect(try curl(["--interface", "127.0.0.2", "http://127.0.0.1:\(port)/healthz"]).status == 200)
    }

    /// SIGHUP: a revoked client is cut and cannot come back, a new one is admitted, and a broken
    /// file is reported while the previous list stays in force.
    @Test func sighupRotatesClientTokens() throws {
        let deployment = try Deployment(fileSize: 1024)
        let tokens = try deployment.write("foo \(Self.fooToken)\n", to: "client-tokens")
        let port = try deployment.startServer(["-client-tokens", tokens])
        let server = deployment.servers[0]
        try deployment.startClient(serverPort: port, environment: ["REMOTEDIALER_TOKEN": Self.fooToken])

        _ = try deployment.write("bar \(Self.barToken)\n", to: "client-tokens")
        kill(server.pid, SIGHUP)
        #expect(waitUntil(seconds: 5) { server.output.contains("closing session foo/") && server.output.contains("revoked foo") }, "\(server.output.suffix(1500))")
        #expect(waitUntil(seconds: 10) { (try? curl([deployment.url(port)]))?.status == 500 }, "foo still reachable after revocation")
        try deployment.startClient(serverPort: port, id: "bar", environment: ["REMOTEDIALER_TOKEN": Self.barToken])

        _ = try deployment.write("bar\n", to: "client-tokens")
        kill(server.pid, SIGHUP)
        #expect(waitUntil(seconds: 5) { server.output.contains("keeping the previous client tokens: \(tokens):1: want NAME TOKEN") }, "\(server.output.suffix(1500))")
        #expect(try curl([deployment.url(port, client: "bar")]).status == 200)
        #expect(server.isRunning)
    }

    /// SIGHUP re-reads `-peers-file`: a peer added to the file is linked without a restart.
    @Test func sighupRereadsThePeersFile() throws {
        let deployment = try Deployment(fileSize: 1024)
        let peersFile = try deployment.write("# no peers yet\n", to: "peers")
        let portA = try deployment.startServer(["-id", "A", "-token", "peer-secret", "-peers-file", peersFile])
        let serverA = deployment.servers[0]
        try deployment.startClient(serverPort: portA)
        let portB = try deployment.startServer(["-id", "B", "-token", "peer-secret", "-peers", "A:peer-secret:ws://127.0.0.1:\(portA)/connect"])
        #expect(try curl([deployment.url(portB)]).status == 500, "B reached foo before A knew B")

        _ = try deployment.write("B:peer-secret:ws://127.0.0.1:\(portB)/connect\n", to: "peers")
        kill(serverA.pid, SIGHUP)
        #expect(waitUntil(seconds: 15) { (try? curl([deployment.url(portB)]))?.status == 200 }, "\(serverA.output.suffix(1500))")

        _ = try deployment.write("B:only-two-fields\n", to: "peers")
        kill(serverA.pid, SIGHUP)
        #expect(waitUntil(seconds: 5) { serverA.output.contains("keeping the previous peers: \(peersFile):1:") })
        #expect(try curl([deployment.url(portB)]).status == 200)
    }
}
