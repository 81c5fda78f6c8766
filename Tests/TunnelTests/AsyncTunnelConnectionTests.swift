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
        let deadline = closeAtDeadline(stream)
        defer { deadline.cancel() }
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

    /// Nobody iterates `inbound` at first: the façade pauses the connection, its buffer passes
    /// the threshold, Pause goes out and the sender stops with only what was in flight; then
    /// the whole transfer, twice the hard cap, arrives intact.
    @Test func aReaderThatStopsConsumingStopsTheSenderUntilItReadsAgain() async throws {
        let total = 64 << 20
        let options = TunnelOptions()
        let fixture = try TunnelFixture(sourceBytes: total)
        defer { fixture.shutdown() }
        let (stream, connection) = fixture.serverLoop.runBlocking {
            let connection = try! fixture.serverSession.dial(proto: "tcp", address: fixture.sourceAddress)
            return (AsyncByteStream(connection), connection)
        }
        #expect(fixture.waitUntilSenderHonoursPause(connection), "the sender never went quiet after Pause")
        let stalled = fixture.serverLoop.runBlocking { (open: connection.isOpen, statistics: connection.statistics) }
        try #require(stalled.open, "the connection ended while nobody read")
        #expect(stalled.statistics.pausesSent == 1)
        #expect(stalled.statistics.maxBufferedInbound <= options.pauseThreshold + options.maxDataPayload + StallingReader.inFlightBound,
                "\(stalled.statistics.maxBufferedInbound) bytes buffered with the reader stalled")
        let deadline = closeAtDeadline(stream)
        defer { deadline.cancel() }
        var received = 0
        var intact = true
        for try await chunk in stream.inbound {
            for (index, byte) in chunk.enumerated() where byte != TestPattern.byte(at: received + index) { intact = false }
            received += chunk.count
        }
        #expect(received == total && intact)
    }
}
