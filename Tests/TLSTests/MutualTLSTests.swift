import Foundation
import Reactor
import Testing
import TLS
import TestSupport

/// Mutual TLS between our own server and client, over loopback.
@Suite(.serialized)
final class MutualTLSTests: TLSLoopFixture {
    @Test func aClientCertificateFromTheClientCAIsAcceptedAndTheServerSeesItsNames() throws {
        let server = try startMutualTLSEchoServer(clientCAFile: certificates.clientCAFile)
        let client = certificates.client
        let result = echo(port: server.port, context: try clientContext(certificate: client), serverName: "localhost", total: 1 << 20)
        guard case .success? = result else { Issue.record("refused: \(String(describing: result))"); return }
        let seen = try #require(server.clients.wait(seconds: 10) ?? nil, "the server saw no verified client certificate")
        #expect(seen.subjectCommonName == "tunnel-client-foo")
        #expect(seen.dnsNames == ["foo.clients.test", "foo.internal"])
        #expect(seen.ipAddresses == ["10.0.0.7", "::1"])
        #expect(seen.der == Array(try Data(contentsOf: URL(fileURLWithPath: client.der))))
    }

    @Test func aClientWithoutACertificateIsRefusedOnBothSides() throws {
        let server = try startMutualTLSEchoServer(clientCAFile: certificates.clientCAFile)
        let result = echo(port: server.port, context: try clientContext(), serverName: "localhost", total: 1000)
        guard case .failure(let error)? = result else { Issue.record("accepted a client without a certificate"); return }
        #expect("\(error)" == "TLS read: tlsv13 alert certificate required")
        #expect(server.errors.wait(seconds: 10) == "TLS handshake: peer did not return a certificate")
    }

    /// The server trusts the server CA for its own connections (`caFile`); a client certificate
    /// it signed still does not count. (The client sends that CA along, found in its own store.)
    @Test func aClientCertificateFromAnotherCAIsRefusedOnBothSides() throws {
        let server = try startMutualTLSEchoServer(clientCAFile: certificates.clientCAFile)
        let result = echo(port: server.port, context: try clientContext(certificate: certificates.clientOfServerCA), serverName: "localhost", total: 1000)
        guard case .failure(let error)? = result else { Issue.record("accepted a client certificate from another CA"); return }
        #expect("\(error)" == "TLS read: tlsv1 alert unknown ca")
        #expect(server.errors.wait(seconds: 10) == "client certificate verify failed: self-signed certificate in certificate chain")
    }

    @Test func aServerWithoutAClientCAAsksForNoCertificateAndReportsNone() throws {
        let context = try serverContext
        let seen = OneShot<TLSPeerCertificate?>()
        let port = try listen { connection in
            let stream = try! TLSStream(wrapping: connection, context: context, role: .server)
            stream.start(handler: ReadyNotifier(EchoHandler()) { _ in seen.set(stream.peerCertificate) })
        }
        let result = echo(port: port, context: try clientContext(certificate: certificates.client), serverName: "localhost", total: 1000)
        guard case .success? = result else { Issue.record("\(String(describing: result))"); return }
        let certificate = try #require(seen.wait(seconds: 10))
        #expect(certificate == nil)
    }

    /// A client sees the server's verified certificate; with verification off it sees none.
    @Test func aClientSeesTheServerCertificateOnlyWhenItVerifiedIt() throws {
        let (port, _) = try startEchoServer()
        #expect(try serverCertificateSeen(port: port, context: clientContext()) == TLSPeerCertificate(
            subjectCommonName: "localhost", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"],
            der: Array(try Data(contentsOf: URL(fileURLWithPath: certificates.path("server.der"))))))
        #expect(try serverCertificateSeen(port: port, context: clientContext(insecure: true)) == .some(nil))
    }

    private func serverCertificateSeen(port: UInt16, context: TLSContext) -> TLSPeerCertificate?? {
        let seen = OneShot<TLSPeerCertificate?>()
        connect(port: port) { connection in
            let stream = try! TLSStream(wrapping: connection!, context: context, role: .client, serverName: "localhost")
            stream.start(handler: ReadyNotifier(Collector { _, _ in }) { stream in
                seen.set((stream as! TLSStream).peerCertificate)
                stream.close()
            })
        }
        return seen.wait(seconds: 10)
    }
}
