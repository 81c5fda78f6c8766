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
        let targetPort = freePort()
        let target = Process()
        target.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        target.arguments = ["s_server", "-accept", "127.0.0.1:\(targetPort)", "-cert", Self.file("server.pem"), "-key", Self.file("server.key"), "-www"]
        target.standardOutput = FileHandle.nullDevice
        target.standardError = FileHandle.nullDevice
        try target.run()
        defer { kill(target.processIdentifier, SIGKILL); target.waitUntilExit() }
        #expect(waitUntil(seconds: 10) { canConnect(port: targetPort) })
        let page = try curl(["--cacert", Self.file("ca.pem"), "https://127.0.0.1:\(port)/client/foo/https/localhost:\(targetPort)/"])
        #expect(page.status == 200)
        #expect(String(decoding: page.body, as: UTF8.self).contains("s_server"), "\(String(decoding: page.body.prefix(300), as: UTF8.self))")
    }
}
