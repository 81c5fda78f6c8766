import Glibc
import Reactor

/// The shared target every implementation downloads from: a small HTTP/1.1 server on our reactor,
/// serving bytes from memory so that only the tunnel differs between implementations.
///   GET /bulk   → the bulk payload (Content-Length, keep-alive)
///   GET /part   → its first `partBytes` bytes (for many concurrent downloads)
///   GET /small  → 1 KiB
final class SourceServer: @unchecked Sendable {  // immutable after init; connections live on the group's loops
    let group: ReactorGroup
    let listener: GroupListener
    let bulk: UnsafeRawBufferPointer
    let small: [UInt8]
    let partBytes: Int

    init(bulkBytes: Int, partBytes: Int) throws {
        self.partBytes = min(partBytes, bulkBytes)
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: bulkBytes, alignment: 16)
        var state: UInt64 = 0x9E3779B97F4A7C15
        let words = storage.bindMemory(to: UInt64.self)
        for index in words.indices {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            words[index] = state
        }
        bulk = UnsafeRawBufferPointer(storage)
        small = Array(repeating: UInt8(ascii: "x"), count: 1024)
        group = try ReactorGroup(loopCount: 1, name: "source")
        let payload = Payload(bytes: bulk)
        let smallBody = small
        let partCount = self.partBytes
        listener = try group.listen(on: SocketAddress("127.0.0.1:0")) { connection in
            let bulk = payload.bytes
            connection.start(handler: SourceHandler(bulk: bulk, part: UnsafeRawBufferPointer(rebasing: bulk[..<partCount]), small: smallBody))
        }
    }

    var port: UInt16 { listener.address.port }

    func stop() {
        listener.close()
        group.shutdown()
    }
}

/// One keep-alive connection: parses request heads (just enough: the path and Connection: close)
/// and streams the body with back-pressure.
final class SourceHandler: StreamHandler {
    let bulk: UnsafeRawBufferPointer
    let part: UnsafeRawBufferPointer
    let small: [UInt8]
    private var body: UnsafeRawBufferPointer?
    private var offset = 0
    private var closeWhenDone = false

    init(bulk: UnsafeRawBufferPointer, part: UnsafeRawBufferPointer, small: [UInt8]) {
        self.bulk = bulk
        self.part = part
        self.small = small
    }

    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        while body == nil, let head = takeHead(&buffer) {
            let lines = head.split(separator: "\r\n")
            let target = lines.first?.split(separator: " ").dropFirst().first ?? ""
            closeWhenDone = lines.contains { $0.lowercased() == "connection: close" }
            switch target {
            case "/bulk": respond(stream, status: "200 OK", body: bulk)
            case "/part": respond(stream, status: "200 OK", body: part)
            case "/small": small.withUnsafeBytes { respond(stream, status: "200 OK", body: $0) }
            default: respond(stream, status: "404 Not Found", body: UnsafeRawBufferPointer(start: nil, count: 0))
            }
        }
        if body != nil { stream.pauseReading() }  // one request at a time
    }

    /// The request head up to the blank line, consumed from the ring; nil until complete.
    private func takeHead(_ buffer: inout RingBuffer) -> String? {
        let count = buffer.readableBytes
        guard count >= 4 else { return nil }
        for index in 3..<count where buffer.byte(at: index) == 10 && buffer.byte(at: index - 1) == 13
            && buffer.byte(at: index - 2) == 10 && buffer.byte(at: index - 3) == 13 {
            let head = String(decoding: buffer.bytes(count: index + 1), as: UTF8.self)
            buffer.consume(index + 1)
            return head
        }
        if count > 16 * 1024 { buffer.consume(count) }  // not HTTP: drop it
        return nil
    }

    private func respond(_ stream: any ByteStream, status: String, body: UnsafeRawBufferPointer) {
        let head = "HTTP/1.1 \(status)\r\nContent-Length: \(body.count)\r\nContent-Type: application/octet-stream\r\n\r\n"
        stream.write(Array(head.utf8))
        if body.count <= 64 * 1024 {
            stream.write(body)
            finishResponse(stream)
        } else {
            self.body = body
            offset = 0
            pump(stream)
        }
    }

    private func pump(_ stream: any ByteStream) {
        guard let body else { return }
        while offset < body.count && stream.isWritable {
            let n = min(256 * 1024, body.count - offset)
            stream.write(UnsafeRawBufferPointer(rebasing: body[offset..<(offset + n)]))
            offset += n
        }
        if offset == body.count {
            self.body = nil
            finishResponse(stream)
            stream.resumeReading()
        }
    }

    private func finishResponse(_ stream: any ByteStream) {
        if closeWhenDone { stream.closeAfterFlush() }
    }

    func streamWritabilityDidChange(_ stream: any ByteStream, isWritable: Bool) {
        if isWritable { pump(stream) }
    }

    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {}
}

/// The payload memory, shared read-only by every connection for the server's lifetime.
struct Payload: @unchecked Sendable {  // immutable bytes, never freed while the server runs
    let bytes: UnsafeRawBufferPointer
}
