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
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let extensions = path("san.ext")
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(toFile: extensions, atomically: true, encoding: .utf8)
        try run(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", path("ca.key"), "-out", caFile, "-days", "2", "-subj", "/CN=RemoteDialer Test CA"])
        try run(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", path("other-ca.key"), "-out", otherCAFile, "-days", "2", "-subj", "/CN=Unrelated CA"])
        try run(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", serverKey, "-out", path("server.csr"), "-subj", "/CN=localhost"])
        try run(["x509", "-req", "-in", path("server.csr"), "-CA", caFile, "-CAkey", path("ca.key"), "-CAcreateserial",
                 "-out", serverCertificate, "-days", "2", "-extfile", extensions])
        try run(["x509", "-req", "-in", path("server.csr"), "-CA", caFile, "-CAkey", path("ca.key"), "-CAcreateserial",
                 "-out", expiredCertificate, "-days", "-1", "-extfile", extensions])
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    private func run(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TLSError("openssl \(arguments.prefix(2)) failed") }
    }
}

import TLS
