import Glibc
import Testing
@testable import Reactor

/// `Connection.coalescedWriteLimit`: small writes wait for the end of the loop pass, larger ones
/// keep their place behind them, and closing in the same pass still sends what waited.
@Suite(.serialized) struct CoalescedWriteTests {
    /// Reads from blocking `fd` until `count` bytes or EOF.
    private func receive(_ fd: Int32, count: Int) -> [UInt8] {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while received.count < count {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            received += chunk[..<n]
        }
        return received
    }

    private func acceptedConnection(_ group: ReactorGroup) throws -> (GroupListener, Int32, Connection) {
        let accepted = OneShot<Connection>()
        let listener = try group.listen(on: SocketAddress("127.0.0.1:0")) { connection in
            connection.coalescedWriteLimit = 1024
            connection.start(handler: EchoHandler())
            accepted.set(connection)
        }
        let fd = blockingConnect(port: listener.address.port)
        return (listener, fd, try #require(accepted.wait(seconds: 10)))
    }

    @Test func smallWritesWaitForThePassEndAndKeepTheirOrder() throws {
        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let (listener, fd, connection) = try acceptedConnection(group)
        defer { listener.close(); close(fd) }
        let small = [UInt8](repeating: 1, count: 100), large = [UInt8](repeating: 2, count: 4096), last = [UInt8](repeating: 3, count: 10)
        let (queued, nothingSentYet) = group.loops[0].runBlocking {
            connection.write(small)
            connection.write(small)
            // Over the limit, but behind queued bytes: it queues too rather than overtaking them.
            connection.write(large)
            connection.write(last)
            var byte: UInt8 = 0
            let peeked = recv(fd, &byte, 1, Int32(MSG_DONTWAIT))
            return (connection.queuedWriteBytes, peeked == -1 && errno == EAGAIN)
        }
        #expect(queued == 2 * small.count + large.count + last.count)
        #expect(nothingSentYet, "a small write went out before the loop pass ended")
        let received = receive(fd, count: queued)
        #expect(received == small + small + large + last)
        #expect(group.loops[0].runBlocking { connection.queuedWriteBytes } == 0)
    }

    @Test func closingInTheSamePassStillSendsTheWaitingWrites() throws {
        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let (listener, fd, connection) = try acceptedConnection(group)
        defer { listener.close(); close(fd) }
        let message = Array("last words before the close".utf8)
        group.loops[0].runBlocking {
            connection.write(message)
            connection.close()
        }
        // Everything, then EOF.
        #expect(receive(fd, count: .max) == message)
    }
}
