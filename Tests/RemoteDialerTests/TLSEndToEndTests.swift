import Foundation
import Glibc
import Testing

/// The programs over TLS: `wss://` to a server with `-cert/-key` (a test CA made by
/// Scripts/make-test-pki.sh), and an `https` target reached with TLS inside the tunnel.
@Suite(.serialized)
struct TLSEndToEndTests {
    static let pki: URL = {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pki-\(UUID().uuidString)")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Scripts/make-test-pki.sh").standardized
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script.path, directory.path]
        try! process.run()
        process.waitUntilExit()
        return directory
    }()

    static func file(_ name: String) -> String { pki.appendingPathComponent(name).path }

    @Test func wssWithATestCAAndHttpsTargetThroughTheTunnel() throws {
        let deployment = try Deployment()
        let port = try deployment.startServer(["-cert", Self.file("server.pem"), "-key", Self.file("server.key"),
                                               "-upstream-ca", Self.file("ca.pem")])
        // Without the CA the client refuses the server, and says why.
        let untrusting = try Subprocess("remotedialer-client", ["-connect", "wss://localhost:\(port)/connect", "-id", "foo"])
        #expect(waitUntil(seconds: 10) { untrusting.output.contains("certificate verify failed: unable to get local issuer certificate") }, "\(untrusting.output)")
        untrusting.stop()

        try deployment.startClient(serverPort: port, ["-connect", "wss://localhost:\(port)/connect", "-ca", Self.file("ca.pem")],
                                   viaTLS: Self.file("ca.pem"))
        let download = try curl(["--cacert", Self.file("ca.pem"), deployment.url(port, scheme: "https")])
        #expect(download.status == 200)
        #expect(download.body == deployment.file)

        // An https target: openssl s_server -www, reached with TLS inside the tunnelled connection.
        let target = try OpenSSLTarget()
        let page = try curl(["--cacert", Self.file("ca.pem"), "https://127.0.0.1:\(port)/client/foo/https/localhost:\(target.port)/"])
        #expect(page.status == 200)
        #expect(String(decoding: page.body, as: UTF8.self).contains("s_server"), "\(String(decoding: page.body.prefix(300), as: UTF8.self))")
    }

    /// Mutual TLS (`-client-ca`): a client certificate from that CA is the client's identity;
    /// none is 401, one from another CA fails the handshake, an X-Tunnel-ID that disagrees with
    /// it is 401; requesters without certificates still use the proxy route.
    @Test func clientCertificatesIdentifyClients() throws {
        func makeClientCertificate(_ name: String, cn: String, san: String, issuer: String) {
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Scripts/make-test-pki.sh").standardized
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = [script.path, Self.pki.path, "client", name, cn, san, issuer]
            try! process.run()
            process.waitUntilExit()
        }
        makeClientCertificate("edge1", cn: "edge-1", san: "DNS:edge-1.internal", issuer: "client-ca")
        makeClientCertificate("rogue", cn: "edge-1", san: "DNS:edge-1.internal", issuer: "other-ca")
        let deployment = try Deployment(fileSize: 64 << 10)
        let port = try deployment.startServer(["-cert", Self.file("server.pem"), "-key", Self.file("server.key"), "-client-ca", Self.file("client-ca.pem")])
        let server = deployment.servers[0]
        let connect = ["-connect", "wss://localhost:\(port)/connect", "-ca", Self.file("ca.pem")]

        // The certificate names the client: no -id needed beyond what it says (the id flag is
        // the certificate's DNS name here, which it also carries).
        try deployment.startClient(serverPort: port, id: "edge-1.internal", connect + ["-cert", Self.file("edge1.pem"), "-key", Self.file("edge1.key")],
                                   viaTLS: Self.file("ca.pem"))
        let download = try curl(["--cacert", Self.file("ca.pem"), deployment.url(port, client: "edge-1.internal", scheme: "https")])
        #expect(download.status == 200 && download.body == deployment.file, "a requester without a certificate uses the route")

        let noCertificate = try Subprocess("remotedialer-client", connect + ["-id", "edge-1"])
        #expect(waitUntil(seconds: 10) { noCertificate.output.contains("401") && noCertificate.output.contains("client certificate required") }, "\(noCertificate.output)")
        noCertificate.stop()

        let mismatch = try Subprocess("remotedialer-client", connect + ["-id", "edge-2", "-cert", Self.file("edge1.pem"), "-key", Self.file("edge1.key")])
        #expect(waitUntil(seconds: 10) { mismatch.output.contains("X-Tunnel-ID does not match the client certificate") }, "\(mismatch.output)")
        mismatch.stop()

        let rogue = try Subprocess("remotedialer-client", connect + ["-id", "edge-1", "-cert", Self.file("rogue.pem"), "-key", Self.file("rogue.key")])
        #expect(waitUntil(seconds: 10) { rogue.output.contains("unknown ca") }, "\(rogue.output)")
        rogue.stop()
        #expect(!server.output.contains("session edge-1/"), "a refused client got a session: \(server.output.suffix(1500))")
    }

    /// Issue 11, item 2: a TLS handshake counts inside the head timeout, so a requester that
    /// starts a ClientHello and stops is closed at it.
    @Test func aStalledTLSHandshakeIsClosedAtTheHeadTimeout() throws {
        let deployment = try Deployment(fileSize: 1024)
        let port = try deployment.startServer(["-cert", Self.file("server.pem"), "-key", Self.file("server.key"), "-head-timeout", "1s"])
        let start = Date()
        let stalled = try #require(RawSocket(port: port, receiveTimeout: 8))
        stalled.send([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])  // a record header and the first byte of a ClientHello
        let silent = try #require(RawSocket(port: port, receiveTimeout: 8))
        var received: [UInt8] = []
        #expect(stalled.readUntilClosed(into: &received), "a stalled handshake was kept")
        #expect(silent.readUntilClosed(into: &received), "a silent TLS socket was kept")
        let elapsed = Date().timeIntervalSince(start)
        #expect(elapsed >= 0.9 && elapsed < 5, "closed after \(elapsed) s with a 1 s head timeout")
    }
}
