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
        var state = seed | 1
        expected = (0..<count).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
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

@Suite(.serialized)
struct SessionOverSocketTests {
    @Test func thousandConcurrentConnectionsEchoRandomDataWithChecksums() throws {
        let fixture = try TunnelFixture()
        defer { fixture.shutdown() }
        let count = 1000
        let finished = Signal<(ok: Int, failures: [String])>()
        fixture.serverLoop.execute {
            var ok = 0
            var failures: [String] = []
            for index in 0..<count {
                let checker = EchoChecker(seed: UInt64(index) + 1, count: 16 << 10 + index) { success, error in
                    if success { ok += 1 } else { failures.append("\(index): \(error.map { "\($0)" } ?? "mismatch")") }
                    if ok + failures.count == count { finished.fulfil((ok, failures)) }
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

    @Test func slowReaderMakesTheRemoteGetPauseAndMemoryStaysBounded() throws {
        let total = 24 << 20
        let fixture = try TunnelFixture(sourceBytes: total)
        defer { fixture.shutdown() }
        let finished = Signal<(Int, Bool, String?, TunnelConnection.Statistics)>()
        fixture.serverLoop.execute {
            let connection = try! fixture.serverSession.dial(proto: "tcp", address: fixture.sourceAddress)
            connection.start(handler: SlowReader { received, corrupt, error in
                finished.fulfil((received, corrupt, error.map { "\($0)" }, connection.statistics))
            })
        }
        let (received, corrupt, error, statistics) = try #require(finished.wait(seconds: 120))
        #expect(error == nil)
        #expect(received == total && !corrupt)
        #expect(statistics.pausesSent > 0, "the slow reader must have made us send Pause")
        // Bounded: what arrives after Pause is what was in flight, far below the hard cap.
        let options = TunnelOptions()
        #expect(statistics.maxBufferedInbound < options.maxBufferedInbound)
        #expect(statistics.maxBufferedInbound >= options.pauseThreshold)
        print("slow reader: max buffered inbound \(statistics.maxBufferedInbound) bytes, pauses sent \(statistics.pausesSent)")
    }

    @Test func killingTheWebSocketEndsEveryConnectionOnBothSidesWithoutLeaks() throws {
        let before = openFileDescriptorCount()
        do {
            let fixture = try TunnelFixture(sourceBytes: 1 << 40)
            defer { fixture.shutdown() }
            let closed = Signal<[String]>()
            let count = 20
            fixture.serverLoop.execute {
                var errors: [String] = []
                for _ in 0..<count {
                    let connection = try! fixture.serverSession.dial(proto: "tcp", address: fixture.sourceAddress)
                    connection.start(handler: SlowReader { _, _, error in
                        errors.append(error.map { "\($0)" } ?? "clean")
                        if errors.count == count { closed.fulfil(errors) }
                    })
                }
            }
            // Wait until the client side has dialled them all, then drop its TCP socket.
            var clientCount = 0
            for _ in 0..<200 where clientCount < count {
                usleep(20_000)
                clientCount = fixture.clientLoop.runBlocking { fixture.clientSession.connectionCount }
            }
            #expect(clientCount == count)
            fixture.clientLoop.runBlocking {
                (fixture.clientSession.transport as! WebSocketTransport).socket.stream.close()
            }
            let errors = try #require(closed.wait(seconds: 30))
            #expect(errors.allSatisfy { $0 == "tunnel disconnect" }, "\(errors.prefix(3))")
            let clientState = fixture.clientLoop.runBlocking { (fixture.clientSession.isOpen, fixture.clientSession.connectionCount) }
            #expect(clientState.0 == false && clientState.1 == 0)
        }
        usleep(100_000)
        #expect(openFileDescriptorCount() == before)
    }

    @Test func syncConnectionsClosesAStaleConnection() throws {
        var options = TunnelOptions()
        options.syncGrace = .zero
        let fixture = try TunnelFixture(serverOptions: options)
        defer { fixture.shutdown() }
        let closed = Signal<String>()
        let live = Signal<Int64>()
        fixture.serverLoop.execute {
            let stale = try! fixture.serverSession.dial(proto: "tcp", address: fixture.echoAddress)
            stale.start(handler: SlowReader { _, _, error in closed.fulfil(error.map { "\($0)" } ?? "clean") })
            live.fulfil(stale.id)
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
        let refused = Signal<String>()
        fixture.serverLoop.execute {
            let connection = try! fixture.serverSession.dial(proto: "tcp", address: "127.0.0.1:1")
            connection.start(handler: SlowReader { _, _, error in refused.fulfil(error.map { "\($0)" } ?? "clean") })
        }
        #expect(refused.wait() == "connect not allowed")
        let echoed = Signal<Bool>()
        fixture.serverLoop.execute {
            let checker = EchoChecker(seed: 7, count: 1 << 20) { ok, _ in echoed.fulfil(ok) }
            let connection = try! fixture.serverSession.dial(proto: "tcp", address: fixture.echoAddress)
            connection.start(handler: checker)
            checker.begin(connection)
        }
        #expect(echoed.wait() == true)
    }

    @Test func deadTargetReportsTheGoDialError() throws {
        let fixture = try TunnelFixture()
        defer { fixture.shutdown() }
        let failed = Signal<String>()
        fixture.serverLoop.execute {
            let connection = try! fixture.serverSession.dial(proto: "tcp", address: "127.0.0.1:1")
            connection.start(handler: SlowReader { _, _, error in failed.fulfil(error.map { "\($0)" } ?? "clean") })
        }
        #expect(failed.wait() == "dial tcp 127.0.0.1:1: connect: connection refused")
    }
}
