import Foundation

/// A throw-away PKI made with the `openssl` CLI at test time: a CA, a server certificate for
/// localhost/127.0.0.1, an expired one, an unrelated CA, and for mutual TLS a client CA with a
/// client certificate it signed and one the server CA signed.
final class TestCertificates: @unchecked Sendable {  // read-only after init
    /// A client certificate (EC key, clientAuth) and where its files are.
    struct ClientCertificate {
        let certificate: String
        let key: String
        let der: String
    }

    let directory: URL
    var caFile: String { path("ca.pem") }
    var otherCAFile: String { path("other-ca.pem") }
    var clientCAFile: String { path("client-ca.pem") }
    var serverCertificate: String { path("server.pem") }
    var serverKey: String { path("server.key") }
    var expiredCertificate: String { path("expired.pem") }
    /// CN "tunnel-client-foo", DNS foo.clients.test and foo.internal, IP 10.0.0.7 and ::1; signed by the client CA.
    let client: ClientCertificate
    /// CN "tunnel-client-bar", signed by the server CA (`caFile`), not the client CA.
    let clientOfServerCA: ClientCertificate

    static let shared: TestCertificates = try! TestCertificates()

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)")
        try Self.runScript([directory.path])
        client = try Self.makeClientCertificate(in: directory, name: "client", commonName: "tunnel-client-foo",
                                                subjectAltName: "DNS:foo.clients.test,DNS:foo.internal,IP:10.0.0.7,IP:::1", issuer: "client-ca")
        clientOfServerCA = try Self.makeClientCertificate(in: directory, name: "client-of-server-ca", commonName: "tunnel-client-bar",
                                                          subjectAltName: "DNS:bar.clients.test", issuer: "ca")
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// A client certificate `NAME.pem`/`.key`/`.der` in `directory`, with subject CN `commonName`
    /// and `subjectAltName` (openssl syntax, "DNS:a,IP:b"), signed by `issuer` ("ca", "client-ca", "other-ca").
    static func makeClientCertificate(in directory: URL, name: String, commonName: String, subjectAltName: String, issuer: String) throws -> ClientCertificate {
        try runScript([directory.path, "client", name, commonName, subjectAltName, issuer])
        let base = directory.appendingPathComponent(name).path
        return ClientCertificate(certificate: base + ".pem", key: base + ".key", der: base + ".der")
    }

    private static func runScript(_ arguments: [String]) throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Scripts/make-test-pki.sh").standardized
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script.path] + arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TLSError("make-test-pki.sh \(arguments.dropFirst().joined(separator: " ")) failed") }
    }
}

import TLS
