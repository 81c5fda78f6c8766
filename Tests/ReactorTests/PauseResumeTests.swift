import Glibc
import Testing
@testable import Reactor

/// Counts bytes while pausing every third read for a millisecond.
final class PausingCounter: StreamHandler {
    var total = 0
    var tick = 0
    let done: OneShot<Int>
    init(done: OneShot<Int>) { self.done = done }
    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        total += buffer.readableBytes
        buffer.consume(buffer.readableBytes)
        tick += 1
        if tick % 3 == 0 {
            stream.pauseReading()
            stream.loop.scheduleTimer(after: .milliseconds(1)) { stream.resumeReading() }
        }
    }
    func streamDidReadEOF(_ stream: any ByteStream) { done.set(total); stream.close() }
    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) { done.set(-total) }
}

/// Pauses reading on its first read and keeps what it got unconsumed; after `drain` it consumes
/// and counts everything until EOF.
final class PauseOnFirstRead: StreamHandler {
    private(set) var reads = 0
    private(set) var heldWhilePaused = 0
    private var draining = false
    private var total = 0
    let done: OneShot<Int>
    init(done: OneShot<Int>) { self.done = done }

    func drain(_ stream: any ByteStream) {
        draining = true
        stream.resumeReading()
    }

    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        reads += 1
        guard draining else {
            heldWhilePaused = buffer.readableBytes
            return stream.pauseReading()
        }
        total += buffer.readableBytes
        buffer.consume(buffer.readableBytes)
    }
    func streamDidReadEOF(_ stream: any ByteStream) { done.set(total); stream.close() }
    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) { done.set(-1) }
}

@Suite(.serialized) struct PauseResumeTests {
    /// A paused connection leaves its socket unread: the peer's nonblocking writes fill the
    /// kernel buffers until EAGAIN while our handler is not called again and our ring holds only
    /// what was read before the pause; after resuming, every byte arrives.
    @Test func aPausedConnectionLeavesItsSocketUnread() throws {
        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.loops[0]
        let done = OneShot<Int>()
        let accepted = OneShot<(Connection, PauseOnFirstRead)>()
        let listener = try group.listen(on: SocketAddress("127.0.0.1:0")) { connection in
            let handler = PauseOnFirstRead(done: done)
            connection.start(handler: handler)
            accepted.set((connection, handler))
        }
        defer { listener.close() }
        let peer = try #require(connectLoopback(port: listener.address.port))
        defer { close(peer) }
        let (connection, handler) = try #require(accepted.wait(seconds: 10))

        var first: UInt8 = 0
        #expect(send(peer, &first, 1, 0) == 1)
        #expect(waitUntil { loop.runBlocking { handler.reads == 1 } }, "the first byte was never read")
        _ = fcntl(peer, F_SETFL, fcntl(peer, F_GETFL) | O_NONBLOCK)
        let chunk = [UInt8](repeating: 7, count: 64 << 10)
        var written = 0
        var failure: Int32 = 0
        while failure == 0 {
            let n = chunk.withUnsafeBytes { send(peer, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 { failure = errno } else { written += n }
        }
        #expect(failure == EAGAIN, "the peer's write failed otherwise: errno \(failure)")
        // Two round trips through the loop: at least one whole epoll pass sees the readable
        // socket; an unpaused connection would read it there.
        loop.runBlocking {}
        let state = loop.runBlocking { (reads: handler.reads, held: handler.heldWhilePaused, ring: connection.bufferedBytes) }
        #expect(state.reads == 1, "the paused connection was read again")
        #expect(state.held == 1)
        #expect(state.ring <= ConnectionOptions().readBufferMinimum, "the ring grew to \(state.ring) bytes while paused")
        #expect(written >= 64 << 10, "only \(written) bytes fitted in the kernel buffers")

        loop.runBlocking { handler.drain(connection) }
        shutdown(peer, Int32(SHUT_WR))
        #expect(done.wait(seconds: 30) == 1 + written)
    }

    /// Regression: a writer that queues more from its writability callback and then asks for
    /// closeAfterFlush used to be closed with that data still queued.
    @Test func pausingReaderGetsEverything() throws {
        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let listener = try group.listen(on: SocketAddress("127.0.0.1:0")) { connection in
            let flooder = Flooder(total: 32 << 20)
            connection.start(handler: flooder)
            flooder.pump(connection)
        }
        defer { listener.close() }
        let done = OneShot<Int>()
        let loop = group.loops[0]
        loop.execute {
            loop.connect(to: listener.address) { result in
                try! result.get().start(handler: PausingCounter(done: done))
            }
        }
        #expect(done.wait(seconds: 30) == 32 << 20)
    }
}
