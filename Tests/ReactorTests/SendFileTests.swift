import Foundation
import Glibc
import Reactor
import Testing

/// sendfile(2) through a connection: ordered after bytes already written, from an offset, and
/// ahead of bytes written while it is still going out.
struct SendFileTests {
    @Test func fileGoesOutAfterQueuedBytesFromItsOffset() throws {
        let completed = OneShot<Bool>()
        try Self.serveFile(size: 3 << 20) { connection, file, _ in
            connection.write(Array("HEAD".utf8))
            connection.sendFile(file, offset: 1000, count: 2 << 20) { result in
                if case .success = result { completed.set(true) } else { completed.set(false) }
                connection.write(Array("TAIL".utf8))
                connection.closeAfterFlush()
            }
        } check: { content, received in
            #expect(completed.wait() == true)
            let expected = Array("HEAD".utf8) + content[1000..<(1000 + (2 << 20))] + Array("TAIL".utf8)
            let same = received == expected
            #expect(same, "received \(received.count) bytes, expected \(expected.count)")
        }
    }

    /// Bytes written while the file is still going out (the peer not reading yet), by either
    /// write, wait for it: the file's place in the queue is kept.
    @Test func writesMadeWhileTheFileIsPendingFollowIt() throws {
        let pendingWhenWritten = OneShot<Bool>()
        // More than loopback's socket buffers take from a peer that does not read.
        try Self.serveFile(size: 24 << 20) { connection, file, size in
            connection.write(Array("HEAD".utf8))
            var completed = false
            connection.sendFile(file, offset: 0, count: size) { _ in
                completed = true
                connection.write(Array("TAIL".utf8))
                connection.closeAfterFlush()
            }
            pendingWhenWritten.set(!completed)
            // The gathered write first: it finds the queue empty, the file alone ahead of it.
            let one = Array("ONE".utf8), two = Array("TWO".utf8)
            one.withUnsafeBytes { one in two.withUnsafeBytes { two in _ = connection.write(gathering: [one, two]) } }
            connection.write(Array("THREE".utf8))
        } check: { content, received in
            #expect(pendingWhenWritten.wait() == true, "the file went out at once: nothing was written behind it")
            let expected = Array("HEAD".utf8) + content + Array("ONETWOTHREETAIL".utf8)
            let same = received == expected
            #expect(same, "received \(received.count) bytes, expected \(expected.count); tail \(String(decoding: received.suffix(15), as: UTF8.self))")
        }
    }

    /// A file of `size` random bytes; `serve(connection, fd, size)` runs on the loop for the one
    /// accepted connection; `check(content, received)` gets everything a blocking peer read
    /// until the connection closed.
    private static func serveFile(size: Int, serve: @escaping (Connection, Int32, Int) -> Void,
                                  check: ([UInt8], [UInt8]) throws -> Void) throws {
        var random = Xorshift.logged()
        let content = (0..<size).map { _ in UInt8.random(in: 0...255, using: &random) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sendfile-\(UUID().uuidString)").path
        try #require(FileManager.default.createFile(atPath: path, contents: Data(content)))
        defer { unlink(path) }
        let file = open(path, O_RDONLY)
        defer { close(file) }

        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.next()
        let listener = try loop.runBlocking { () throws(SocketError) -> Listener in
            try loop.listen(on: SocketAddress("127.0.0.1:0")) { connection in
                connection.start(handler: EchoHandler())
                serve(connection, file, size)
            }
        }
        defer { loop.runBlocking { listener.close() } }
        let fd = blockingConnect(port: listener.address.port)
        defer { close(fd) }
        try check(content, readToEnd(fd, seconds: 60) ?? [])
    }
}
