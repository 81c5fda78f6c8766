import Foundation
import Glibc
import Testing

/// HTTP CONNECT on the server's main listener, driven by curl (`-p -x`): a TLS target behind the
/// client (openssl s_server, verified end to end by curl), a plain TCP service (the dummy's
/// HTTP inside the tunnel), and every refusal.
@Suite(.serialized)
struct ConnectProxyEndToEndTests {
    static let aliceToken = "alice-token-0123456789"
    static let bobToken = "bob-token-0123456789ab"

    /// A server with proxy users (alice may reach foo; bob only bar and nobody) and client foo.
    static func deployment() throws -> (Deployment, UInt16) {
        let deployment = try Deployment(fileSize: 4 << 20)
        let users = try deployment.write("alice \(aliceToken) foo\nbob \(bobToken) bar,nobody\n", to: "proxy-tokens")
        let port = try deployment.startServer(["-proxy-tokens", users])
        try deployment.startClient(serverPort: port, probe: ["-H", "Authorization: Bearer \(aliceToken)"])
        return (deployment, port)
    }

    @Test func curlReachesATLSTargetAndAPlainTCPServiceThroughConnect() throws {
        let (deployment, port) = try Self.deployment()
        let proxy = ["-p", "-x", "http://foo:\(Self.aliceToken)@127.0.0.1:\(port)"]

        let target = try OpenSSLTarget()
        let page = try curl(proxy + ["--cacert", TLSEndToEndTests.file("ca.pem"), "https://localhost:\(target.port)/"])
        #expect(page.status == 200, "exit \(page.exitCode)")
        #expect(String(decoding: page.body, as: UTF8.self).contains("s_server"), "\(String(decoding: page.body.prefix(300), as: UTF8.self))")

        // Plain TCP in the tunnel: curl speaks HTTP/1.1 to the dummy through it, 4 MiB checked.
        let download = try curl(proxy + ["http://127.0.0.1:\(deployment.filePort)/file"])
        #expect(download.status == 200, "exit \(download.exitCode)")
        #expect(download.body == deployment.file)
    }

    @Test func refusalsAre407WithoutCredentials403OutOfScopeAnd502WhenTheDialFails() throws {
        let (deployment, port) = try Self.deployment()
        let url = "http://127.0.0.1:\(deployment.filePort)/file"
        func connectStatus(_ credential: String) throws -> Int {
            try curl(["-p", "-x", "http://\(credential)127.0.0.1:\(port)", url], writeOut: "%{http_connect}").status
        }
        #expect(try connectStatus("") == 407)
        #expect(try connectStatus("foo:not-a-token-0123456789@") == 407)
        #expect(try connectStatus("foo:\(Self.bobToken)@") == 403)

        // The Go texts of the failed dial, in the 502's body: no session, and the client's own refusal.
        func rawConnect(_ target: String, client: String, token: String) -> String {
            let credential = Data("\(client):\(token)".utf8).base64EncodedString()
            let answer = rawExchange(port: port, "CONNECT \(target) HTTP/1.1\r\nHost: \(target)\r\nProxy-Authorization: Basic \(credential)\r\nConnection: close\r\n\r\n")
            return String(decoding: answer ?? [], as: UTF8.self)
        }
        let noSession = rawConnect("127.0.0.1:\(deployment.filePort)", client: "nobody", token: Self.bobToken)
        #expect(noSession.hasPrefix("HTTP/1.1 502") && noSession.hasSuffix("failed to find Session for client nobody\n"), "\(noSession)")
        let deadPort = freePort()
        let refused = rawConnect("127.0.0.1:\(deadPort)", client: "foo", token: Self.aliceToken)
        #expect(refused.hasPrefix("HTTP/1.1 502") && refused.hasSuffix("dial tcp 127.0.0.1:\(deadPort): connect: connection refused\n"), "\(refused)")
        let malformed = rawConnect("no-port", client: "foo", token: Self.aliceToken)
        #expect(malformed.hasPrefix("HTTP/1.1 400"), "\(malformed)")
    }
}
