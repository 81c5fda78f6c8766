import Dispatch
import Glibc
import Testing
@testable import Reactor

/// Counts closes seen by handlers (on loop threads).
final class CloseCounter: StreamHandler, @unchecked Sendable {  // counter guarded by `lock`
    private let lock = PThreadLock()
    private var closes: [String] = []
    func streamDidRead(_ connection: any ByteStream, _ buffer: inout RingBuffer) { buffer.consume(buffer.readableBytes) }
    func streamDidClose(_ connection: any ByteStream, error: (any Error)?) {
        lock.withLock { closes.append(error.map { "\($0)" } ?? "nil") }
    }
    var seen: [String] { lock.withLock { closes } }
}

@Suite(.serialized) struct ShutdownTests {
    @Test func shutdownLeavesNoFileDescriptorsBehind() throws {
        let before = settledFileDescriptorCount()
        let counter = CloseCounter()
        do {
            let group = try ReactorGroup(loopCount: 2)
            let listener = try group.listen(on: SocketAddress("127.0.0.1:0")) { $0.start(handler: counter) }
            let v6 = try group.listen(on: SocketAddress("[::1]:0"), distribution: .reusePort) { $0.start(handler: counter) }
            // Open connections from blocking peers and from the reactor itself, then shut down
            // with all of them still open.
            let peers = (0..<10).map { _ in blockingConnect(port: listener.address.port) }
            let loop = group.loops[1]
            let connected = OneShot<Int>()
            loop.execute {
                var count = 0
                for _ in 0..<10 {
                    loop.connect(to: v6.address) { result in
                        if case .success(let connection) = result { connection.start(handler: counter) }
                        count += 1
                        if count == 10 { connected.set(count) }
                    }
                }
            }
            #expect(connected.wait(seconds: 10) == 10)
            // Wait until every accepted connection is registered on its loop.
            let registered = { group.loops.map { l in l.runBlocking { l.registrationCount } }.reduce(0, +) }
            // Accepted, outgoing, v6 accepted, listeners.
            #expect(waitUntil(seconds: 10) { registered() == 10 + 10 + 10 + 3 }, "\(registered()) registrations")
            group.shutdown()
            for fd in peers { close(fd) }
        }
        #expect(counter.seen.count == 30, "every connection's handler hears the shutdown")
        // A reactor-to-reactor pair may see its peer's loop stop first: that side reads EOF and
        // closes normally (nil). Everything else is closed by the shutdown itself.
        #expect(counter.seen.allSatisfy { $0 == "shutdown: use of closed network connection" || $0 == "nil" }, "\(counter.seen)")
        #expect(counter.seen.filter { $0 == "nil" }.count <= 10)
        #expect(openFileDescriptorCount() == before)
    }

    @Test func reusePortListenersShareOnePort() throws {
        let group = try ReactorGroup(loopCount: 2)
        defer { group.shutdown() }
        let listener = try group.listen(on: SocketAddress("127.0.0.1:0"), distribution: .reusePort) { $0.start(handler: EchoHandler()) }
        #expect(listener.listeners.count == 2)
        #expect(Set(listener.listeners.map { $0.loop.runBlocking { [b = $0] in b.value.address.port } }) == [listener.address.port])
        // Connections still work through whichever socket the kernel picks.
        for _ in 0..<8 {
            let fd = blockingConnect(port: listener.address.port)
            let message = Array("ping".utf8)
            #expect(send(fd, message, 4, 0) == 4)
            var reply = [UInt8](repeating: 0, count: 4)
            #expect(recv(fd, &reply, 4, Int32(MSG_WAITALL)) == 4)
            #expect(reply == message)
            close(fd)
        }
        listener.close()
    }
}
