import Glibc
import Testing
@testable import Reactor

@Suite(.serialized) struct AsyncByteStreamTests {
    @Test func echoThroughTheAsyncFacade() async throws {
        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let listener = try group.listen(on: SocketAddress("127.0.0.1:0")) { $0.start(handler: EchoHandler()) }
        defer { listener.close() }
        let stream = try await AsyncByteStream.connect(to: listener.address, on: group.loops[0])
        let total = 8 << 20
        async let sentSum: [UInt64] = {
            var generator = RandomBytes(seed: 3)
            var sum = StreamChecksum()
            var chunk = [UInt8](repeating: 0, count: 100_000)
            var sent = 0
            while sent < total {
                let n = min(chunk.count, total - sent)
                chunk.withUnsafeMutableBytes { generator.fill(UnsafeMutableRawBufferPointer(rebasing: $0[..<n])) }
                let piece = Array(chunk[..<n])
                piece.withUnsafeBytes { sum.update($0) }
                try await stream.write(piece)
                sent += n
            }
            stream.shutdownWrite()
            return sum.value
        }()
        let deadline = closeAtDeadline(stream)
        defer { deadline.cancel() }
        var received = StreamChecksum()
        for try await chunk in stream.inbound {
            chunk.withUnsafeBytes { received.update($0) }
        }
        #expect(try await sentSum == received.value)
        #expect(received.count == total)
    }

    @Test func unconsumedInputPausesReading() async throws {
        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        // A blocking peer that writes 32 MiB as fast as it can.
        let listener = try group.listen(on: SocketAddress("127.0.0.1:0")) { connection in
            let flooder = Flooder(total: 32 << 20)
            connection.start(handler: flooder)
            flooder.pump(connection)
        }
        defer { listener.close() }
        var options = AsyncByteStream.Options()
        options.maxBufferedBytes = 512 * 1024
        options.resumeBelowBytes = 128 * 1024
        let stream = try await AsyncByteStream.connect(to: listener.address, on: group.loops[0], streamOptions: options)
        // Nobody reads: the façade fills to its limit, then must stop reading, not buffer 32 MiB.
        #expect(waitUntil(seconds: 10) { stream.bufferedByteCount > options.maxBufferedBytes }, "the façade never filled")
        group.loops[0].runBlocking {}  // two round trips through the loop: one whole epoll pass
        group.loops[0].runBlocking {}  // in which an unpaused connection would read more
        let buffered = stream.bufferedByteCount
        #expect(buffered > 0)
        #expect(buffered <= options.maxBufferedBytes + 256 * 1024, "buffered \(buffered) bytes while nobody read")
        // Then everything arrives once the consumer reads.
        let deadline = closeAtDeadline(stream)
        defer { deadline.cancel() }
        var total = 0
        for try await chunk in stream.inbound { total += chunk.count }
        #expect(total == 32 << 20)
    }
}

/// Writes `total` bytes as fast as the peer takes them, then closes.
final class Flooder: StreamHandler {
    let total: Int
    var sent = 0
    let chunk = [UInt8](repeating: 0xAB, count: 64 * 1024)
    init(total: Int) { self.total = total }

    func pump(_ stream: any ByteStream) {
        while sent < total && stream.isWritable {
            stream.write(chunk)
            sent += chunk.count
        }
        if sent >= total { stream.closeAfterFlush() }
    }
    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        buffer.consume(buffer.readableBytes)
        pump(stream)
    }
    func streamWritabilityDidChange(_ stream: any ByteStream, isWritable: Bool) {
        if isWritable { pump(stream) }
    }
    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {}
}
