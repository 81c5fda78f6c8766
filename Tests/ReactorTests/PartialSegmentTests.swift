import Glibc
import Testing
@testable import Reactor

/// `holdsPartialSegments`: a large write's partial last segment waits in the kernel for the next
/// write of the loop pass, and the pass's end sends it. Seen from the sender's own socket
/// (SIOCOUTQNSD), so nothing here depends on when the peer's side runs.
@Suite(.serialized) struct PartialSegmentTests {
    /// Less than one loopback segment (MSS 65,483) and above `Connection.segmentHoldingMinimum`:
    /// the whole write is a partial segment.
    static let writeSize = 20_000

    @Test(arguments: [true, false])
    func aPartialSegmentWaitsForThePassEndOnlyWhenHeld(holds: Bool) throws {
        try withAcceptedConnection { loop, connection, fd in
            let unsentWithinPass = loop.runBlocking {
                connection.holdsPartialSegments = holds
                connection.write([UInt8](repeating: 7, count: Self.writeSize))
                return connection.kernelUnsentBytes
            }
            // A task submitted later runs in a later pass, after this pass's push.
            let unsentAfterPass = loop.runBlocking { connection.kernelUnsentBytes }
            #expect(unsentWithinPass == (holds ? Self.writeSize : 0))
            #expect(unsentAfterPass == 0)
            #expect(readExactly(fd, count: Self.writeSize) == Self.writeSize)
        }
    }

    @Test func smallWritesAreNeverHeld() throws {
        try withAcceptedConnection { loop, connection, _ in
            let unsent = loop.runBlocking {
                connection.holdsPartialSegments = true
                connection.write([UInt8](repeating: 7, count: Connection.segmentHoldingMinimum - 1))
                return connection.kernelUnsentBytes
            }
            #expect(unsent == 0)
        }
    }

    /// A connection accepted on a one-loop group, and the blocking socket at its other end.
    private func withAcceptedConnection(_ body: (EventLoop, Connection, Int32) throws -> Void) throws {
        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let accepted = OneShot<Connection>()
        let listener = try group.listen(on: SocketAddress("127.0.0.1:0")) { connection in
            connection.start(handler: EchoHandler())
            accepted.set(connection)
        }
        let fd = blockingConnect(port: listener.address.port)
        defer { listener.close(); close(fd) }
        try body(group.loops[0], try #require(accepted.wait(seconds: 10)), fd)
    }
}

/// Reads until `count` bytes arrived or the stream ends; returns how many arrived.
private func readExactly(_ fd: Int32, count: Int) -> Int {
    var buffer = [UInt8](repeating: 0, count: count)
    var received = 0
    while received < count {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + received, count - received, 0) }
        if n <= 0 { break }
        received += n
    }
    return received
}
