import Foundation
import Glibc
import Reactor
import Testing

/// sendfile(2) through a connection: ordered after bytes already written, from an offset.
struct SendFileTests {
    @Test func fileGoesOutAfterQueuedBytesFromItsOffset() throws {
        var random = Xorshift.logged()
        let content = (0..<(3 << 20)).map { _ in UInt8.random(in: 0...255, using: &random) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sendfile-\(UUID().uuidString)").path
        try #require(FileManager.default.createFile(atPath: path, contents: Data(content)))
        defer { unlink(path) }
        let file = open(path, O_RDONLY)
        defer { close(file) }

        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.next()
        let completed = OneShot<Bool>()
        let listener = try loop.runBlocking { () throws(SocketError) -> Listener in
            try loop.listen(on: SocketAddress("127.0.0.1:0")) { connection in
                connection.start(handler: EchoHandler())
                connection.write(Array("HEAD".utf8))
                connection.sendFile(file, offset: 1000, count: 2 << 20) { result in
                    if case .success = result { completed.set(true) } else { completed.set(false) }
                    connection.write(Array("TAIL".utf8))
                    connection.closeAfterFlush()
                }
            }
        }
        let fd = blockingConnect(port: listener.address.port)
        defer { close(fd) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            received += buffer[..<count]
        }
        #expect(completed.wait() == true)
        let expected = Array("HEAD".utf8) + content[1000..<(1000 + (2 << 20))] + Array("TAIL".utf8)
        let same = received == expected
        #expect(same, "received \(received.count) bytes, expected \(expected.count)")
        loop.runBlocking { listener.close() }
    }

    /// Bytes written while the file is still going out (the peer not reading yet), by either
    /// write, wait for it: the file's place in the queue is kept.
    @Test func writesMadeWhileTheFileIsPendingFollowIt() throws {
        var random = Xorshift.logged()
        // More than loopback's socket buffers take from a peer that does not read.
        let content = (0..<(24 << 20)).map { _ in UInt8.random(in: 0...255, using: &random) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sendfile-\(UUID().uuidString)").path
        try #require(FileManager.default.createFile(atPath: path, contents: Data(content)))
        defer { unlink(path) }
        let file = open(path, O_RDONLY)
        defer { close(file) }

        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.next()
        let pendingWhenWritten = OneShot<Bool>()
        let listener = try loop.runBlocking { () throws(SocketError) -> Listener in
            try loop.listen(on: SocketAddress("127.0.0.1:0")) { connection in
                connection.start(handler: EchoHandler())
                connection.write(Array("HEAD".utf8))
                var completed = false
                connection.sendFile(file, offset: 0, count: content.count) { _ in
                    completed = true
                    connection.write(Array("TAIL".utf8))
                    connection.closeAfterFlush()
                }
                pendingWhenWritten.set(!completed)
                // The gathered write first: it finds the queue empty, the file alone ahead of it.
                let one = Array("ONE".utf8), two = Array("TWO".utf8)
                one.withUnsafeBytes { one in two.withUnsafeBytes { two in _ = connection.write(gathering: [one, two]) } }
                connection.write(Array("THREE".utf8))
            }
        }
        let fd = blockingConnect(port: listener.address.port)
        defer { close(fd) }
        try #require(pendingWhenWritten.wait() == true, "the file went out at once: nothing was written behind it")
        let received = readToEnd(fd, seconds: 60) ?? []
        let expected = Array("HEAD".utf8) + content + Array("ONETWOTHREETAIL".utf8)
        let same = received == expected
        #expect(same, "received \(received.count) bytes, expected \(expected.count); tail \(String(decoding: received.suffix(15), as: UTF8.self))")
        loop.runBlocking { listener.close() }
    }
}
