import Glibc
import Reactor
import Testing
@testable import Tunnel

/// Writes `count` seeded random bytes into a tunnelled connection, reads the echo back and
/// reports whether every byte came back in order.
final class EchoChecker: StreamHandler {
    let expected: [UInt8]
    var received = 0
    var mismatch = false
    let done: (Bool, (any Error)?) -> Void
    var reported = false

    init(seed: UInt64, count: Int, done: @escaping (Bool, (any Error)?) -> Void) {
        var random = Xorshift(seed: seed)
        expected = (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        self.done = done
    }

    func begin(_ stream: any ByteStream) {
        expected.withUnsafeBytes { _ = stream.write($0) }
    }

    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        let bytes = buffer.bytes()
        buffer.consume(bytes.count)
        for byte in bytes {
            if received >= expected.count || expected[received] != byte { mismatch = true }
            received += 1
        }
        if received >= expected.count { report(!mismatch && received == expected.count, nil); stream.close() }
    }

    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) { report(false, error) }

    private func report(_ ok: Bool, _ error: (any Error)?) {
        guard !reported else { return }
        reported = true
        done(ok, error)
    }
}

/// Reads a piped source slowly: consumes 64 KiB every 2 ms, checking the `i % 251` pattern.
final class SlowReader: StreamHandler {
    var received = 0
    var corrupt = false
    var timer: TimerID?
    let done: (Int, Bool, (any Error)?) -> Void
    init(done: @escaping (Int, Bool, (any Error)?) -> Void) { self.done = done }

    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        let take = min(buffer.readableBytes, 64 << 10)
        for (index, byte) in buffer.bytes(from: 0, count: take).enumerated() where byte != UInt8((received + index) % 251) { corrupt = true }
        received += take
        buffer.consume(take)
        stream.pauseReading()
        timer = stream.loop.scheduleTimer(after: .milliseconds(2)) { stream.resumeReading() }
    }
    func streamDidReadEOF(_ stream: any ByteStream) { done(received, corrupt, nil); stream.close() }
    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) { if error != nil { done(received, corrupt, error) } }
}

/// Consumes nothing until `release`, noting how much it held when our Pause went out; then reads
/// everything, checking the `i % 251` pattern, until EOF.
final class StallingReader: StreamHandler {
    /// Bytes a sender honouring Pause can still deliver after it on loopback: its WebSocket write
    /// queue (1 MiB high watermark plus a read's worth), its kernel send buffer (tcp_wmem max,
    /// 4 MiB) and what our loop had not yet read from its receive buffer. Measured: about 3 MiB.
    /// A sender ignoring Pause passes it and then the 32 MiB cap.
    static let inFlightBound = 8 << 20

    private(set) var heldWhenPauseSent: Int?
    private var released = false
    private var received = 0
    private var corrupt = false
    private var reported = false
    /// Bytes received after release, whether any broke the pattern, and why it ended early (nil at EOF).
    let done: (Int, Bool, String?) -> Void
    init(done: @escaping (Int, Bool, String?) -> Void) { self.done = done }

    func release(_ stream: any ByteStream) {
        released = true
        stream.resumeReading()
    }

    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        guard released else {
            if heldWhenPauseSent == nil, (stream as! TunnelConnection).statistics.pausesSent > 0 {
                heldWhenPauseSent = buffer.readableBytes
                stream.pauseReading()
            }
            return
        }
        let count = buffer.readableBytes
        for (index, byte) in buffer.bytes(from: 0, count: count).enumerated() where byte != TestPattern.byte(at: received + index) {
            corrupt = true
        }
        received += count
        buffer.consume(count)
    }
    func streamDidReadEOF(_ stream: any ByteStream) { report(nil); stream.close() }
    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) { report(error.map { "\($0)" } ?? "closed before EOF") }
    private func report(_ error: String?) {
        guard !reported else { return }
        reported = true
        done(received, corrupt, error)
    }
}

@Suite(.serialized)
struct SessionOverSocketTests {
    @Test func thousandConcurrentConnectionsEchoRandomDataWithChecksums() throws {
        let fixture = try TunnelFixture()
        defer { fixture.shutdown() }
        let count = 1000
        let finished = OneShot<(ok: Int, failures: [String])>()
        fixture.serverLoop.execute {
            var ok = 0
            var failures: [String] = []
            for index in 0..<count {
                let checker = EchoChecker(seed: UInt64(index) + 1, count: 16 << 10 + index) { success, error in
                    if success { ok += 1 } else { failures.append("\(index): \(error.map { "\($0)" } ?? "mismatch")") }
                    if ok + failures.count == count { finished.set((ok, failures)) }
                }
                let connection = try! fixture.serverSession.dial(proto: "tcp", address: fixture.echoAddress)
                connection.start(handler: checker)
                checker.begin(connection)
            }
        }
        let result = try #require(finished.wait(seconds: 120))
        #expect(result.failures.isEmpty, "\(result.failures.prefix(5))")
        #expect(result.ok == count)
        let remaining = fixture.serverLoop.runBlocking { fixture.serverSession.connectionCount }
        #expect(remaining == 0)
    }

    /// With a reader that consumes nothing, what the sender emits after our Pause is only what
    /// was already in flight (its WebSocket write queue and the two kernel socket buffers), far
    /// below the hard cap the transfer is twice as big as; after Resume the rest arrives intact.
    /// (rancher/rancher#36584: Go's Pause was advisory and its sender overshot by ~4 MB.)
    /// Both ends keep what the kernel holds unsent small, so a Pause or another connection's
    /// message does not wait behind megabytes of one connection's data.
    @Test func bothEndsLimitWhatTheKernelHoldsUnsent() throws {
        let fixture = try TunnelFixture()
        defer { fixture.shutdown() }
        for (loop, session) in [(fixture.serverLoop, fixture.serverSession!), (fixture.clientLoop, fixture.clientSession!)] {
            let limit = loop.runBlocking { ((session.transport as? WebSocketTransport)?.socket.stream as? Connection)?.unsentBytesLimit }
            #expect(limit == WebSocketTransport.unsentBytesLimit)
        }
    }

    @Test func stalledReaderStopsTheSenderAfterPauseAndResumeDeliversTheRest() throws {
        let total = 64 << 20  // twice the default 32 MiB cap
        let options = TunnelOptions()
        let fixture = try TunnelFixture(sourceBytes: total)
        defer { fixture.shutdown() }
        let finished = OneShot<(received: Int, corrupt: Bool, error: String?)>()
        let (connection, reader) = fixture.serverLoop.runBlocking {
            let connection = try! fixture.serverSession.dial(proto: "tcp", address: fixture.sourceAddress)
            let reader = StallingReader { finished.set(($0, $1, $2)) }
            connection.start(handler: reader)
            return (connection, reader)
        }
        #expect(fixture.waitUntilSenderHonoursPause(connection), "the sender never went quiet after Pause")
        let stalled = fixture.serverLoop.runBlocking {
            (open: connection.isOpen, heldAtPause: reader.heldWhenPauseSent, peak: connection.statistics.maxBufferedInbound)
        }
        try #require(stalled.open, "the connection ended while its reader was stalled")
        let heldAtPause = try #require(stalled.heldAtPause, "no Pause was sent")
        #expect(heldAtPause > options.pauseThreshold && heldAtPause <= options.pauseThreshold + options.maxDataPayload)
        let emittedAfterPause = stalled.peak - heldAtPause
        print("stalled reader: \(heldAtPause) bytes held when Pause went out, \(emittedAfterPause) arrived after it")
        #expect(emittedAfterPause <= StallingReader.inFlightBound,
                "the sender emitted \(emittedAfterPause) bytes after our Pause")

        fixture.serverLoop.runBlocking { reader.release(connection) }
        let result = try #require(finished.wait(seconds: 60), "the rest never arrived after Resume")
        #expect(result.error == nil)
        #expect(result.received == total)
        #expect(!result.corrupt)
    }

    @Test func killingTheWebSocketEndsEveryConnectionOnBothSidesWithoutLeaks() throws {
        let before = settledFileDescriptorCount()
        do {
            let fixture = try TunnelFixture(sourceBytes: 1 << 40)
            defer { fixture.shutdown() }
            let closed = OneShot<[String]>()
            let count = 20
            fixture.serverLoop.execute {
                var errors: [String] = []
                for _ in 0..<count {
                    let connection = try! fixture.serverSession.dial(proto: "tcp", address: fixture.sourceAddress)
                    connection.start(handler: SlowReader { _, _, error in
                        errors.append(error.map { "\($0)" } ?? "clean")
                        if errors.count == count { closed.set(errors) }
                    })
                }
            }
            // Wait until the client side has dialled them all, then drop its TCP socket.
            #expect(waitUntil(seconds: 10) { fixture.clientLoop.runBlocking { fixture.clientSession.connectionCount } == count },
                    "the client never had all \(count) connections")
            fixture.clientLoop.runBlocking {
                (fixture.clientSession.transport as! WebSocketTransport).socket.stream.close()
            }
            let errors = try #require(closed.wait(seconds: 30))
            #expect(errors.allSatisfy { $0 == "tunnel disconnect" }, "\(errors.prefix(3))")
            let clientState = fixture.clientLoop.runBlocking { (fixture.clientSession.isOpen, fixture.clientSession.connectionCount) }
            #expect(clientState.0 == false && clientState.1 == 0)
        }
        // The fixture's group has shut down: its loops are joined and every descriptor released.
        #expect(openFileDescriptorCount() == before)
    }

    @Test func syncConnectionsClosesAStaleConnection() throws {
        var options = TunnelOptions()
        options.syncGrace = .zero
        let fixture = try TunnelFixture(serverOptions: options)
        defer { fixture.shutdown() }
        let closed = OneShot<String>()
        let live = OneShot<Int64>()
        fixture.serverLoop.execute {
            let stale = try! fixture.serverSession.dial(proto: "tcp", address: fixture.echoAddress)
            stale.start(handler: SlowReader { _, _, error in closed.set(error.map { "\($0)" } ?? "clean") })
            live.set(stale.id)
        }
        let staleID = try #require(live.wait())
        // The client claims it has no connections at all.
        fixture.clientLoop.runBlocking {
            let message = TunnelMessage.syncConnections(id: 1, [])
            message.encoded.withUnsafeBytes { _ = fixture.clientSession.transport.sendMessage($0, UnsafeRawBufferPointer(start: nil, count: 0)) }
        }
        #expect(closed.wait() == TunnelError.staleConnection.description)
        let remaining = fixture.serverLoop.runBlocking { fixture.serverSession.activeConnectionIDs }
        #expect(!remaining.contains(staleID))
    }

    @Test func refusedConnectKeepsTheSessionAlive() throws {
        let fixture = try TunnelFixture(connectAuthorizer: { _, address in !address.hasSuffix(":1") })
        defer { fixture.shutdown() }
        let refused = OneShot<String>()
        fixture.serverLoop.execute {
            let connection = try! fixture.serverSession.dial(proto: "tcp", address: "127.0.0.1:1")
            connection.start(handler: SlowReader { _, _, error in refused.set(error.map { "\($0)" } ?? "clean") })
        }
        #expect(refused.wait() == "connect not allowed")
        let echoed = OneShot<Bool>()
        fixture.serverLoop.execute {
            let checker = EchoChecker(seed: 7, count: 1 << 20) { ok, _ in echoed.set(ok) }
            let connection = try! fixture.serverSession.dial(proto: "tcp", address: fixture.echoAddress)
            connection.start(handler: checker)
            checker.begin(connection)
        }
        #expect(echoed.wait() == true)
    }

    @Test func deadTargetReportsTheGoDialError() throws {
        let fixture = try TunnelFixture()
        defer { fixture.shutdown() }
        let failed = OneShot<String>()
        fixture.serverLoop.execute {
            let connection = try! fixture.serverSession.dial(proto: "tcp", address: "127.0.0.1:1")
            connection.start(handler: SlowReader { _, _, error in failed.set(error.map { "\($0)" } ?? "clean") })
        }
        #expect(failed.wait() == "dial tcp 127.0.0.1:1: connect: connection refused")
    }
}
