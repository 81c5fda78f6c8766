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

/// The direct path: OpenSSL reads the peer's ciphertext where the caller keeps it, and what it
/// seals goes straight to the sink.
extension TLSEngineTests {
    /// One side's sealed records, kept as they leave, then lent to the other side in pieces of
    /// `step` bytes (so records and their headers split across lends); what a lend did not take
    /// is lent again.
    final class Wire {
        var bytes: [UInt8] = []
        var lentPieces = 0

        func lend(to engine: TLSEngine, step: Int, _ body: () -> Void) {
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + step, bytes.count)
                let taken = bytes.withUnsafeBytes { engine.lendingCiphertext(UnsafeRawBufferPointer(rebasing: $0[offset..<end]), body) }
                lentPieces += 1
                offset += taken
                if taken == 0 { break }
            }
            bytes.removeFirst(offset)
        }
    }

    static func directPair() throws -> (client: TLSEngine, server: TLSEngine, toServer: Wire, toClient: Wire) {
        let certificates = TestCertificates.shared
        var clientConfiguration = TLSConfiguration.client(serverName: "localhost")
        clientConfiguration.caFile = certificates.caFile
        let server = try TLSEngine(context: TLSContext(.server(certificateChainFile: certificates.serverCertificate, privateKeyFile: certificates.serverKey)),
                                   role: .server, path: .direct)
        let client = try TLSEngine(context: TLSContext(clientConfiguration), role: .client, path: .direct)
        let toServer = Wire(), toClient = Wire()
        client.ciphertextSink = { toServer.bytes += $0; return true }
        server.ciphertextSink = { toClient.bytes += $0; return true }
        return (client, server, toServer, toClient)
    }

    @Test func theDirectPathHandshakesAndCarriesDataLentInPieces() throws {
        let (client, server, toServer, toClient) = try Self.directPair()
        var rounds = 0
        _ = client.handshake()
        while !(client.handshakeComplete && server.handshakeComplete) && rounds < 10 {
            toServer.lend(to: server, step: 7) { _ = server.handshake() }
            toClient.lend(to: client, step: 7) { _ = client.handshake() }
            rounds += 1
        }
        #expect(client.handshakeComplete && server.handshakeComplete)
        #expect(client.pendingCiphertext == 0, "the direct path buffers no ciphertext")

        let message = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        #expect(message.withUnsafeBytes { client.write($0) } == .done)
        #expect(toServer.bytes.count > message.count, "the records went to the sink")
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        toServer.lend(to: server, step: 1000) {
            while true {
                let (status, count) = buffer.withUnsafeMutableBytes { server.read(into: $0) }
                guard status == .done else { return }
                received += buffer[..<count]
            }
        }
        #expect(received == message)
        #expect(toServer.bytes.isEmpty && toServer.lentPieces > 100)
    }

    /// A lend OpenSSL does not need all of is taken only in part: the rest stays with the caller.
    @Test func aLendIsTakenOnlyAsFarAsTheReadsGo() throws {
        let (client, server, toServer, toClient) = try Self.directPair()
        _ = client.handshake()
        for _ in 0..<4 {
            toServer.lend(to: server, step: 1 << 20) { _ = server.handshake() }
            toClient.lend(to: client, step: 1 << 20) { _ = client.handshake() }
        }
        try #require(client.handshakeComplete && server.handshakeComplete)
        for text in ["first", "second"] { #expect(Array(text.utf8).withUnsafeBytes { client.write($0) } == .done) }
        var buffer = [UInt8](repeating: 0, count: 64)
        var count = 0
        let taken = toServer.bytes.withUnsafeBytes { wire in
            server.lendingCiphertext(wire) { (_, count) = buffer.withUnsafeMutableBytes { server.read(into: $0) } }
        }
        #expect(String(decoding: buffer[..<count], as: UTF8.self) == "first")
        #expect(taken > 0 && taken < toServer.bytes.count, "one record read, the second left: \(taken) of \(toServer.bytes.count)")
    }

    /// A sink that refuses (its stream is gone) fails the write.
    @Test func aRefusingSinkFailsTheWrite() throws {
        let (client, server, toServer, toClient) = try Self.directPair()
        _ = client.handshake()
        for _ in 0..<4 {
            toServer.lend(to: server, step: 1 << 20) { _ = server.handshake() }
            toClient.lend(to: client, step: 1 << 20) { _ = client.handshake() }
        }
        try #require(client.handshakeComplete)
        client.ciphertextSink = { _ in false }
        guard case .failed = Array("lost".utf8).withUnsafeBytes({ client.write($0) }) else {
            Issue.record("a write into a refusing sink succeeded")
            return
        }
    }
}
