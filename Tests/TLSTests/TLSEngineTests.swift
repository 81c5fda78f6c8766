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

    @Test func handshakeDataAndCloseNotifyInMemory() throws {
        let certificates = TestCertificates.shared
        let server = try TLSEngine(context: TLSContext(.server(certificateChainFile: certificates.serverCertificate, privateKeyFile: certificates.serverKey)), role: .server)
        var clientConfiguration = TLSConfiguration.client(serverName: "localhost")
        clientConfiguration.caFile = certificates.caFile
        let client = try TLSEngine(context: TLSContext(clientConfiguration), role: .client)
        var rounds = 0
        while !(client.handshakeComplete && server.handshakeComplete) && rounds < 10 {
            _ = client.handshake()
            Self.pump(client, server)
            _ = server.handshake()
            Self.pump(server, client)
            rounds += 1
        }
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
