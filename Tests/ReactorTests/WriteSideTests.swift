import Glibc
import Testing
import TestSupport
@testable import Reactor

/// Records what it reads and says when the connection ends.
private final class ReadRecorder: StreamHandler {
    let received = OneShot<[UInt8]>()
    let closed = OneShot<Bool>()
    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        var bytes: [UInt8] = []
        buffer.withReadableRegions { bytes += $0; bytes += $1 }
        buffer.consume(buffer.readableBytes)
        received.set(bytes)
    }
    func streamDidReadEOF(_ stream: any ByteStream) { stream.close() }
    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) { closed.set(true) }
}

/// How a connection's write side ends while bytes are still queued: `shutdownWrite` sends FIN
/// after them and reading goes on, `closeAfterFlush` closes after them; neither takes another
/// write meanwhile.
@Suite(.serialized) struct WriteSideTests {
    /// More than loopback's socket buffers hold, so part of it waits in our queue.
    static let queuedTotal = 4 << 20

    /// What the serving loop saw when it ended the write side.
    struct Ended {
        let connection: Connection
        fileprivate let recorder: ReadRecorder
        let queued: Int
        let laterWriteTaken: Bool
    }

    /// Serves one connection that writes `queuedTotal` pattern bytes at once (most of them
    /// queued) and then ends its write side with `end`; checks that no later write was taken and
    /// that the peer got every byte and then the end of the stream; then runs `after` with the
    /// peer's socket and what the serving loop saw.
    private func endWithBytesQueued(_ end: @escaping @Sendable (Connection) -> Void,
                                    after: (_ peer: Int32, _ served: Ended) throws -> Void) throws {
        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let ended = OneShot<Ended>()
        let listener = try group.listen(on: SocketAddress("127.0.0.1:0")) { connection in
            let recorder = ReadRecorder()
            connection.start(handler: recorder)
            let bytes = (0..<Self.queuedTotal).map(TestPattern.byte(at:))
            _ = bytes.withUnsafeBytes { connection.write($0) }
            let queued = connection.queuedWriteBytes
            end(connection)
            let laterWriteTaken = [UInt8](repeating: 1, count: 10).withUnsafeBytes { connection.write($0) }
            ended.set(Ended(connection: connection, recorder: recorder, queued: queued, laterWriteTaken: laterWriteTaken))
        }
        defer { listener.close() }
        let peer = try #require(connectLoopback(port: listener.address.port))
        defer { close(peer) }
        let served = try #require(ended.wait(seconds: 10))
        #expect(served.queued > 0, "nothing was queued: the test needs bytes waiting in our queue")
        #expect(!served.laterWriteTaken, "a write after the write side began ending was taken")

        let received = try #require(readToEnd(peer, seconds: 20), "the peer saw no end of the stream after the queued bytes")
        #expect(received.count == Self.queuedTotal)
        #expect(received.indices.allSatisfy { received[$0] == TestPattern.byte(at: $0) })
        try after(peer, served)
    }

    @Test func shutdownWriteSendsFINAfterTheQueueAndKeepsReading() throws {
        try endWithBytesQueued({ $0.shutdownWrite() }) { peer, served in
            // Half-closed, not closed: what the peer sends now is still read.
            #expect(sendAll(peer, Array("after FIN".utf8)))
            #expect(served.recorder.received.wait(seconds: 10) == Array("after FIN".utf8))
        }
    }

    @Test func closeAfterFlushClosesAfterTheQueueAndTakesNoMoreWrites() throws {
        try endWithBytesQueued({ $0.closeAfterFlush() }) { _, served in
            #expect(served.recorder.closed.wait(seconds: 10) == true)
        }
    }
}
