import Foundation

/// A throw-away PKI made with the `openssl` CLI at test time: a CA, a server certificate for
/// localhost/127.0.0.1, an expired one, and an unrelated CA.
final class TestCertificates: @unchecked Sendable {  // read-only after init
    let directory: URL
    var caFile: String { path("ca.pem") }
    var otherCAFile: String { path("other-ca.pem") }
    var serverCertificate: String { path("server.pem") }
    var serverKey: String { path("server.key") }
    var expiredCertificate: String { path("expired.pem") }

    static let shared: TestCertificates = try! TestCertificates()

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Scripts/make-test-pki.sh").standardized
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script.path, directory.path]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TLSError("make-test-pki.sh failed") }
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
}

import TLS
