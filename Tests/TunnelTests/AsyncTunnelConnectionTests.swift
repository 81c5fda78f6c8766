import Glibc
import Reactor
import Testing
@testable import Tunnel

/// The async/await façade over a tunnelled connection: consumption drives Pause/Resume.
@Suite(.serialized)
struct AsyncTunnelConnectionTests {
    @Test func asyncWriteAndInboundSequenceEchoThroughTheTunnel() async throws {
        let fixture = try TunnelFixture()
        defer { fixture.shutdown() }
        let stream = fixture.serverLoop.runBlocking {
            AsyncByteStream(try! fixture.serverSession.dial(proto: "tcp", address: fixture.echoAddress))
        }
        let payload = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ ($0 >> 9)) }
        async let sent: Void = stream.write(payload)
        var echoed: [UInt8] = []
        for try await chunk in stream.inbound {
            echoed += chunk
            if echoed.count >= payload.count { break }
        }
        try await sent
        #expect(echoed == payload)
        stream.close()
    }

    @Test func aReaderThatStopsConsumingMakesTheRemoteGetPause() async throws {
        let total = 16 << 20
        let fixture = try TunnelFixture(sourceBytes: total)
        defer { fixture.shutdown() }
        let (stream, connection) = fixture.serverLoop.runBlocking {
            let connection = try! fixture.serverSession.dial(proto: "tcp", address: fixture.sourceAddress)
            return (AsyncByteStream(connection), connection)
        }
        // Nobody reads for a while: the façade pauses the connection, its buffer passes the
        // threshold, and Pause goes out.
        try await Task.sleep(for: .milliseconds(500))
        let paused = fixture.serverLoop.runBlocking { connection.statistics.pausesSent }
        #expect(paused > 0)
        var received = 0
        var intact = true
        for try await chunk in stream.inbound {
            for (index, byte) in chunk.enumerated() where byte != UInt8((received + index) % 251) { intact = false }
            received += chunk.count
        }
        #expect(received == total && intact)
        let buffered = fixture.serverLoop.runBlocking { connection.statistics.maxBufferedInbound }
        #expect(buffered < TunnelOptions().maxBufferedInbound)
    }
}
