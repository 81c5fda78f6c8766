import Glibc
import Testing
@testable import Reactor

/// Reads nothing the peer sends (it sends nothing here).
private final class Silent: StreamHandler {
    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) { buffer.consume(buffer.readableBytes) }
    func streamDidReadEOF(_ stream: any ByteStream) {}
    func streamWritabilityDidChange(_ stream: any ByteStream, isWritable: Bool) {}
    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {}
}

private final class Holder: SpareBufferHolder {
    var isAwaitingSpareBufferSweep = false
    var releases = 0
    func releaseSpareBuffers() { releases += 1 }
}

@Suite struct SpareBufferReleaseTests {
    /// A write queue that drained keeps its storage, so the next burst reuses its pages, until
    /// the loop's sweep gives it back: an idle connection then holds no buffer at all.
    @Test func aDrainedWriteQueueKeepsItsStorageUntilTheSweep() throws {
        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.loops[0]
        let accepted = OneShot<Connection>()
        let listener = try group.listen(on: SocketAddress("127.0.0.1:0")) { connection in
            connection.start(handler: Silent())
            accepted.set(connection)
        }
        defer { listener.close() }
        let peer = try #require(connectLoopback(port: listener.address.port))
        defer { close(peer) }
        let connection = try #require(accepted.wait(seconds: 10))

        // More than the kernel buffers take while the peer does not read: the rest is queued.
        let burst = [UInt8](repeating: 7, count: 16 << 20)
        let queued = loop.runBlocking {
            _ = burst.withUnsafeBytes { connection.write($0, UnsafeRawBufferPointer(start: nil, count: 0)) }
            return connection.queuedWriteBytes
        }
        try #require(queued > 0, "the kernel took the whole burst: nothing was queued")
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var received = 0
        while received < burst.count {
            let n = chunk.withUnsafeMutableBytes { recv(peer, $0.baseAddress, $0.count, 0) }
            try #require(n > 0, "the peer's read failed: \(n < 0 ? errno : 0)")
            received += n
        }
        // The last bytes left the queue just before they arrived here: drained, storage kept.
        let afterDrain = loop.runBlocking { (connection.queuedWriteBytes, connection.bufferedBytes) }
        #expect(afterDrain.0 == 0)
        #expect(afterDrain.1 > 0, "the drained queue gave its storage back at once")
        #expect(waitUntil(seconds: 5) { loop.runBlocking { connection.bufferedBytes == 0 } },
                "the idle connection still holds \(loop.runBlocking { connection.bufferedBytes }) bytes after the sweep")
    }

    /// The sweep list holds each holder once however often it drains (its flag says it is
    /// listed), weakly, and hands back only the living ones, unmarked; the first entry since a
    /// sweep is the one that schedules the next.
    @Test func theSweepListsEachLivingHolderOnce() {
        var sweep = SpareBufferSweep()
        let kept = Holder()
        var dropped: Holder? = Holder()
        let adds = [sweep.add(kept), sweep.add(kept), sweep.add(dropped!)]
        #expect(adds == [true, false, false])
        #expect(kept.isAwaitingSpareBufferSweep)
        dropped = nil
        let due = sweep.takeAll()
        #expect(due.count == 1 && due.first === kept)
        #expect(!kept.isAwaitingSpareBufferSweep, "a swept holder is still marked as listed: it would never be listed again")
        #expect(sweep.isEmpty)
        let next = sweep.add(kept)
        #expect(next, "after a sweep the next entry schedules the next sweep")
        // A holder made after the sweep (perhaps where a freed one was) is listed, once.
        let fresh = Holder()
        #expect(!sweep.add(fresh) && !sweep.add(fresh))
        #expect(sweep.takeAll().count == 2)
    }
}
