import Glibc
import Testing
@testable import Reactor

/// Counts bytes while pausing every third read for a millisecond.
final class PausingCounter: StreamHandler {
    var total = 0
    var tick = 0
    let done: Outcome<Int>
    init(done: Outcome<Int>) { self.done = done }
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

/// Regression: a writer that queues more from its writability callback and then asks for
/// closeAfterFlush used to be closed with that data still queued.
@Suite(.serialized) struct PauseResumeTests {
    @Test func pausingReaderGetsEverything() throws {
        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let listener = try group.listen(on: SocketAddress("127.0.0.1:0")) { connection in
            let flooder = Flooder(total: 32 << 20)
            connection.start(handler: flooder)
            flooder.pump(connection)
        }
        defer { listener.close() }
        let done = Outcome<Int>()
        let loop = group.loops[0]
        loop.execute {
            loop.connect(to: listener.address) { result in
                try! result.get().start(handler: PausingCounter(done: done))
            }
        }
        #expect(done.wait(seconds: 30) == 32 << 20)
    }
}
