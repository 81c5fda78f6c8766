import Glibc
import Testing
@testable import Reactor

/// `ByteStream.limitUnsentBytes`: a connection sets the kernel's TCP_NOTSENT_LOWAT, so a peer that
/// stops reading leaves the excess in our queue, where writability sees it, not in the kernel.
@Suite(.serialized) struct UnsentBytesLimitTests {
    @Test func aLimitedConnectionKeepsTheExcessInItsOwnQueue() throws {
        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let accepted = OneShot<Connection>()
        let listener = try group.listen(on: SocketAddress("127.0.0.1:0")) { connection in
            connection.start(handler: EchoHandler())
            accepted.set(connection)
        }
        let fd = blockingConnect(port: listener.address.port)  // never read: the window fills
        defer { listener.close(); close(fd) }
        let connection = try #require(accepted.wait(seconds: 10))
        let limit = 16 << 10, written = 8 << 20
        let (set, queued) = group.loops[0].runBlocking {
            connection.limitUnsentBytes(limit)
            connection.write([UInt8](repeating: 7, count: written))
            return (connection.unsentBytesLimit, connection.queuedWriteBytes)
        }
        #expect(set == limit)
        // The kernel took the peer's window and at most `limit` more; without the limit it took
        // its whole send buffer (up to tcp_wmem's maximum, 4 MiB by default).
        #expect(written - queued <= (1 << 20), "the kernel took \(written - queued) bytes")
    }
}
