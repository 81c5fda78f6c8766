import Testing
import TLS

/// Two engines talking through memory only: no sockets at all.
struct TLSEngineTests {
    static func pump(_ from: TLSEngine, _ to: TLSEngine) {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while from.pendingCiphertext > 0 {
            let count = buffer.withUnsafeMutableBytes { from.takeCiphertext(into: $0) }
            buffer.withUnsafeBytes { to.feed(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
        }
    }

    /// A server and a client engine (ALPN lists as given), handshaken through memory.
    /// With `clientCAFile` the server requires a client certificate, and the client presents `clientCertificate`.
    static func connectedPair(serverALPN: [String] = ["http/1.1"], clientALPN: [String] = ["http/1.1"], clientCAFile: String? = nil,
                              clientCertificate: TestCertificates.ClientCertificate? = nil) throws -> (client: TLSEngine, server: TLSEngine) {
        let certificates = TestCertificates.shared
        var serverConfiguration = TLSConfiguration.server(certificateChainFile: certificates.serverCertificate, privateKeyFile: certificates.serverKey,
                                                          clientCAFile: clientCAFile)
        serverConfiguration.alpn = serverALPN
        var clientConfiguration = TLSConfiguration.client(serverName: "localhost")
        clientConfiguration.caFile = certificates.caFile
        clientConfiguration.alpn = clientALPN
        clientConfiguration.certificateChainFile = clientCertificate?.certificate
        clientConfiguration.privateKeyFile = clientCertificate?.key
        let server = try TLSEngine(context: TLSContext(serverConfiguration), role: .server)
        let client = try TLSEngine(context: TLSContext(clientConfiguration), role: .client)
        var rounds = 0
        while !(client.handshakeComplete && server.handshakeComplete) && rounds < 10 {
            _ = client.handshake()
            Self.pump(client, server)
            _ = server.handshake()
            Self.pump(server, client)
            rounds += 1
        }
        return (client, server)
    }

    @Test func handshakeDataAndCloseNotifyInMemory() throws {
        let (client, server) = try Self.connectedPair()
        #expect(client.handshakeComplete && server.handshakeComplete)
        #expect(client.negotiatedALPN == "http/1.1" && server.negotiatedALPN == "http/1.1")
        #expect(client.negotiatedVersion == "TLSv1.3")

        let message = Array("over memory BIOs".utf8)
        #expect(message.withUnsafeBytes { client.write($0) } == .done)
        Self.pump(client, server)
        var buffer = [UInt8](repeating: 0, count: 100)
        let (status, count) = buffer.withUnsafeMutableBytes { server.read(into: $0) }
        #expect(status == .done && Array(buffer[..<count]) == message)

        client.shutdown()
        Self.pump(client, server)
        let (closing, _) = buffer.withUnsafeMutableBytes { server.read(into: $0) }
        #expect(closing == .closed)
    }
}

extension TLSEngineTests {
    @Test func theServerPicksItsPreferredProtocolAmongTheClientOffers() throws {
        let (client, server) = try Self.connectedPair(serverALPN: ["x-custom", "http/1.1"], clientALPN: ["http/1.1", "x-custom"])
        #expect(client.handshakeComplete && server.handshakeComplete)
        #expect(client.negotiatedALPN == "x-custom" && server.negotiatedALPN == "x-custom")
    }

    @Test func noCommonProtocolMeansNoALPNButAHandshake() throws {
        let (client, server) = try Self.connectedPair(serverALPN: ["http/1.1"], clientALPN: ["h2"])
        #expect(client.handshakeComplete && server.handshakeComplete)
        #expect(client.negotiatedALPN == nil && server.negotiatedALPN == nil)
    }

    @Test func aRequiredClientCertificateIsVerifiedAndReadInMemory() throws {
        let certificates = TestCertificates.shared
        let (client, server) = try Self.connectedPair(clientCAFile: certificates.clientCAFile, clientCertificate: certificates.client)
        #expect(client.handshakeComplete && server.handshakeComplete)
        let seen = try #require(server.peerCertificate)
        #expect(seen.subjectCommonName == "tunnel-client-foo")
        #expect(seen.dnsNames == ["foo.clients.test", "foo.internal"] && seen.ipAddresses == ["10.0.0.7", "::1"])
        #expect(client.peerCertificate?.subjectCommonName == "localhost")
    }

    @Test func aClientCAFileWithoutCertificatesIsRefused() throws {
        let certificates = TestCertificates.shared
        let error = #expect(throws: TLSError.self) {
            try TLSContext(.server(certificateChainFile: certificates.serverCertificate, privateKeyFile: certificates.serverKey,
                                   clientCAFile: certificates.serverKey))
        }
        #expect(error?.description.hasPrefix("loading client CA file \(certificates.serverKey)") == true, "\(String(describing: error))")
    }

    @Test func anALPNNameLongerThan255BytesIsRefused() {
        var configuration = TLSConfiguration.client(serverName: "localhost")
        configuration.alpn = [String(repeating: "x", count: 256)]
        #expect(throws: TLSError.self) { try TLSContext(configuration) }
    }
}
