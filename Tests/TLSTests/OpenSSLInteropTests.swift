import Foundation
import Glibc
import Reactor
import Testing
import TLS
import TestSupport

/// Our server and client against the `openssl` CLI's s_client and s_server.
@Suite(.serialized)
final class OpenSSLInteropTests: TLSLoopFixture {
    @Test func openSSLClientTalksToOurServerWhichAsksForNoClientCertificate() throws {
        let (port, _) = try startEchoServer()
        let client = try OpenSSLProcess(["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", certificates.caFile, "-servername", "localhost",
                                         "-verify_return_error", "-verify_hostname", "localhost", "-alpn", "http/1.1", "-msg", "-quiet", "-no_ign_eof"])
        defer { client.stop() }
        client.send("hello from s_client\n")
        #expect(client.waitForOutput(containing: "hello from s_client"), "\(client.text)")
        #expect(client.text.contains("ServerHello"))
        #expect(!client.text.contains("CertificateRequest"), "a server must not ask browsers for certificates")
    }

    @Test func ourClientTalksToOpenSSLServer() throws {
        let port = freePort()
        let server = try OpenSSLProcess(["s_server", "-accept", "127.0.0.1:\(port)", "-cert", certificates.serverCertificate,
                                         "-key", certificates.serverKey, "-alpn", "http/1.1", "-www"])
        defer { server.stop() }
        #expect(server.waitForOutput(containing: "ACCEPT"), "\(server.text)")
        let context = try clientContext()
        let outcome = OneShot<(String, (any Error)?)>()
        let alpn = OneShot<String>()
        connect(port: port) { connection in
            guard let connection else { return outcome.set(("", TLSError("connect failed"))) }
            let stream = try! TLSStream(wrapping: connection, context: context, role: .client, serverName: "localhost")
            stream.start(handler: ReadyNotifier(Collector { outcome.set(($0, $1)) }) { _ in alpn.set(stream.negotiatedALPN ?? "none") })
            stream.write(Array("GET / HTTP/1.0\r\n\r\n".utf8))
        }
        let (page, error) = try #require(outcome.wait(seconds: 10))
        #expect(error == nil)
        #expect(page.hasPrefix("HTTP/1.0 200 ok"), "\(page.prefix(200))")
        #expect(page.contains("TLSv1.3"))
        #expect(alpn.wait(seconds: 10) == "http/1.1")
    }

    @Test func tls12WorksAndRenegotiationIsRefused() throws {
        let (port, serverErrors) = try startEchoServer()
        let client = try OpenSSLProcess(["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", certificates.caFile, "-servername", "localhost",
                                         "-tls1_2", "-quiet", "-no_ign_eof"])
        defer { client.stop() }
        client.send("over TLS 1.2\n")
        #expect(client.waitForOutput(containing: "over TLS 1.2"), "\(client.text)")
        client.send("R\n")  // s_client: renegotiate
        #expect(client.waitForOutput(containing: "no renegotiation"), "\(client.text)")
        // The client answers our no_renegotiation warning with a fatal alert: that connection ends.
        #expect(serverErrors.wait(seconds: 10) == "TLS read: sslv3 alert handshake failure")
        let result = echo(port: port, context: try clientContext(), serverName: "localhost", total: 1 << 20)
        guard case .success? = result else { Issue.record("server broken after a renegotiation attempt: \(String(describing: result))"); return }
    }

    @Test func versionsBelowTLS12AreRefused() throws {
        let (port, serverErrors) = try startEchoServer()
        let client = try OpenSSLProcess(["s_client", "-connect", "127.0.0.1:\(port)", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-quiet", "-no_ign_eof"])
        defer { client.stop() }
        #expect(serverErrors.wait(seconds: 10) == "TLS handshake: unsupported protocol")
    }

    // MARK: Mutual TLS

    @Test func openSSLClientWithACertificateFromTheClientCAIsAcceptedAndSeen() throws {
        let server = try startMutualTLSEchoServer(clientCAFile: certificates.clientCAFile)
        let client = try OpenSSLProcess(["s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", certificates.caFile, "-servername", "localhost",
                                         "-verify_return_error", "-cert", certificates.client.certificate, "-key", certificates.client.key, "-no_ign_eof"])
        defer { client.stop() }
        client.send("hello from a client certificate\n")
        #expect(client.waitForOutput(containing: "hello from a client certificate"), "\(client.text)")
        #expect(client.text.contains("Acceptable client certificate CA names\nCN = RemoteDialer Test Client CA\n"), "\(client.text)")
        let seen = try #require(server.clients.wait(seconds: 10) ?? nil, "the server saw no verified client certificate")
        #expect(seen.subjectCommonName == "tunnel-client-foo" && seen.dnsNames == ["foo.clients.test", "foo.internal"])
    }

    /// A client verified once can resume its session (OpenSSL refuses to without a session id context).
    @Test func openSSLClientWithACertificateResumesItsSession() throws {
        let server = try startMutualTLSEchoServer(clientCAFile: certificates.clientCAFile)
        let client = try OpenSSLProcess(["s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", certificates.caFile, "-servername", "localhost",
                                         "-cert", certificates.client.certificate, "-key", certificates.client.key, "-tls1_2", "-reconnect"])
        defer { client.stop() }
        #expect(client.waitForOutput(containing: "Reused, TLSv1.2"), "\(client.text)")
    }

    /// The alert a client hears depends on the version: TLS 1.3 has one for this (RFC 8446 §4.4.2.4).
    @Test(arguments: [("-tls1_3", "tlsv13 alert certificate required"), ("-tls1_2", "sslv3 alert handshake failure")])
    func openSSLClientWithoutACertificateIsRefused(version: String, alert: String) throws {
        let server = try startMutualTLSEchoServer(clientCAFile: certificates.clientCAFile)
        let client = try OpenSSLProcess(["s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", certificates.caFile, "-servername", "localhost",
                                         version, "-quiet", "-no_ign_eof"])
        defer { client.stop() }
        client.send("not without a certificate\n")
        #expect(server.errors.wait(seconds: 10) == "TLS handshake: peer did not return a certificate")
        #expect(client.waitForOutput(containing: alert), "\(client.text)")
        #expect(!client.text.contains("not without a certificate"))
    }

    @Test func ourClientWithACertificateIsAcceptedByOpenSSLServerThatRequiresOne() throws {
        let port = freePort()
        let server = try OpenSSLProcess(["s_server", "-accept", "127.0.0.1:\(port)", "-cert", certificates.serverCertificate, "-key", certificates.serverKey,
                                         "-Verify", "1", "-verify_return_error", "-CAfile", certificates.clientCAFile, "-www"])
        defer { server.stop() }
        #expect(server.waitForOutput(containing: "ACCEPT"), "\(server.text)")
        let (page, error) = try fetchPage(port: port, context: clientContext(certificate: certificates.client))
        #expect(error == nil)
        #expect(page.hasPrefix("HTTP/1.0 200 ok"), "\(page.prefix(200))")
        #expect(page.contains("Subject: CN=tunnel-client-foo"), "s_server shows the client certificate it verified: \(page)")
    }

    @Test func ourClientWithoutACertificateIsRefusedByOpenSSLServerThatRequiresOne() throws {
        let port = freePort()
        let server = try OpenSSLProcess(["s_server", "-accept", "127.0.0.1:\(port)", "-cert", certificates.serverCertificate, "-key", certificates.serverKey,
                                         "-Verify", "1", "-verify_return_error", "-CAfile", certificates.clientCAFile, "-www"])
        defer { server.stop() }
        #expect(server.waitForOutput(containing: "ACCEPT"), "\(server.text)")
        let (page, error) = try fetchPage(port: port, context: clientContext())
        #expect(page.isEmpty)
        #expect(error.map { "\($0)" } == "TLS read: tlsv13 alert certificate required")
        #expect(server.waitForOutput(containing: "peer did not return a certificate"), "\(server.text)")
    }

    /// GET / over TLS to `port`: what came back and the error the stream closed with.
    private func fetchPage(port: UInt16, context: TLSContext) throws -> (String, (any Error)?) {
        let outcome = OneShot<(String, (any Error)?)>()
        connect(port: port) { connection in
            guard let connection else { return outcome.set(("", TLSError("connect failed"))) }
            let stream = try! TLSStream(wrapping: connection, context: context, role: .client, serverName: "localhost")
            stream.start(handler: Collector { outcome.set(($0, $1)) })
            stream.write(Array("GET / HTTP/1.0\r\n\r\n".utf8))
        }
        return try #require(outcome.wait(seconds: 10))
    }
}
