import Reactor
import Testing
import TestSupport
@testable import WebSocket

/// A stream that keeps what is written to it, for looking at frames as they leave.
final class RecordingStream: ByteStream {
    let loop: EventLoop
    var written: [UInt8] = []
    var writeCalls = 0
    var handler: (any StreamHandler)?
    var isOpen = true
    var isWritable: Bool { true }
    var isStarted: Bool { handler != nil }

    init(loop: EventLoop) { self.loop = loop }

    func start(handler: any StreamHandler) { self.handler = handler }
    func replaceHandler(_ handler: any StreamHandler) { self.handler = handler }
    func write(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> Bool {
        guard isOpen else { return false }
        writeCalls += 1
        written += first
        written += second
        return true
    }
    func pauseReading() {}
    func resumeReading() {}
    func shutdownWrite() {}
    func closeAfterFlush() { close() }
    func close() { close(nil) }
    func close(error: any Error) { close(Optional(error)) }
    private func close(_ error: (any Error)?) {
        guard isOpen else { return }
        isOpen = false
        handler?.streamDidClose(self, error: error)
    }
}

/// The frames in `bytes` as (fin, opcode, masked, payload unmasked), read the way RFC 6455 §5.2 lays them out.
func decodeFrames(_ bytes: [UInt8]) -> [(fin: Bool, opcode: UInt8, masked: Bool, payload: [UInt8])] {
    var frames: [(fin: Bool, opcode: UInt8, masked: Bool, payload: [UInt8])] = []
    var index = 0
    while index < bytes.count {
        let fin = bytes[index] & 0x80 != 0, opcode = bytes[index] & 0x0F
        let masked = bytes[index + 1] & 0x80 != 0
        var length = Int(bytes[index + 1] & 0x7F)
        index += 2
        let extended = length == 126 ? 2 : length == 127 ? 8 : 0
        if extended > 0 {
            length = bytes[index..<index + extended].reduce(0) { $0 << 8 | Int($1) }
            index += extended
        }
        var key: [UInt8] = [0, 0, 0, 0]
        if masked { key = Array(bytes[index..<index + 4]); index += 4 }
        let payload = bytes[index..<index + length].enumerated().map { $0.element ^ key[$0.offset % 4] }
        frames.append((fin, opcode, masked, payload))
        index += length
    }
    return frames
}

@Suite(.serialized)
struct FrameWriterTests {
    static let group = try! ReactorGroup(loopCount: 1, name: "ws-writer")
    static var loop: EventLoop { group.loops[0] }

    /// Header length forms at their boundaries, payload split between the two pieces anywhere.
    @Test(arguments: [WebSocketRole.client, .server])
    func framesParseBackWithMinimalLengthsAndTheRightMasking(role: WebSocketRole) {
        for length in [0, 1, 64, 65, 125, 126, 127, 65535, 65536, 70_000] {
            let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
            for cut in Set([0, min(length, 1), length / 2, min(length, 65), length]) {
                let stream = RecordingStream(loop: Self.loop)
                var writer = FrameWriter(role: role)
                let ok = payload.withUnsafeBytes { raw in
                    writer.write(to: stream, opcode: .binary, fin: true,
                                 UnsafeRawBufferPointer(rebasing: raw[..<cut]), UnsafeRawBufferPointer(rebasing: raw[cut...]))
                }
                #expect(ok)
                let headerLength = (length < 126 ? 2 : length <= 0xFFFF ? 4 : 10) + (role == .client ? 4 : 0)
                #expect(stream.written.count == headerLength + length, "length \(length)")
                let frames = decodeFrames(stream.written)
                #expect(frames.count == 1)
                #expect(frames.first?.masked == (role == .client) && frames.first?.payload == payload, "\(role) length \(length) cut \(cut)")
                // And our own parser, on the other side, agrees.
                let peer: WebSocketRole = role == .client ? .server : .client
                #expect(parse([stream.written], role: peer) == (length == 0 ? [.begin(2), .end] : [.begin(2), .payload(payload), .end]))
            }
        }
    }

    /// A client frame larger than the masking buffer goes out in chunks with the key phase carried
    /// across them, and the buffer stays bounded.
    @Test func largeClientFrameIsMaskedInBoundedChunks() {
        let length = 3 * FrameWriter.maskingChunk + 12_345
        let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        for cut in [0, 3, FrameWriter.maskingChunk - 13, FrameWriter.maskingChunk + 1, length] {
            let stream = RecordingStream(loop: Self.loop)
            var writer = FrameWriter(role: .client)
            _ = payload.withUnsafeBytes { raw in
                writer.write(to: stream, opcode: .binary, fin: true,
                             UnsafeRawBufferPointer(rebasing: raw[..<cut]), UnsafeRawBufferPointer(rebasing: raw[cut...]))
            }
            #expect(stream.writeCalls == 4)
            #expect(writer.scratch.count <= FrameWriter.maskingChunk)
            #expect(decodeFrames(stream.written).first?.payload == payload, "cut \(cut)")
        }
    }

    /// Keys come from the CSPRNG in batches: over several batches no key repeats (a batch
    /// reused would repeat every one; 300 random 32-bit keys collide with odds about 1 in 10^5).
    @Test func clientUsesAFreshKeyPerFrame() {
        let stream = RecordingStream(loop: Self.loop)
        var writer = FrameWriter(role: .client)
        for _ in 0..<300 { _ = writer.write(to: stream, opcode: .ping, fin: true, .init(start: nil, count: 0), .init(start: nil, count: 0)) }
        let keys = (0..<300).map { Array(stream.written[$0 * 6 + 2..<$0 * 6 + 6]) }
        #expect(Set(keys.map { $0.reduce(0) { $0 << 8 | UInt32($1) } }).count >= 299)
    }

    /// A client frame carrying a full 64 KiB tunnel Data message (its header as the first piece)
    /// leaves in one write, not two.
    @Test func clientFrameOfAFullDataMessageIsOneWrite() {
        let stream = RecordingStream(loop: Self.loop)
        var writer = FrameWriter(role: .client)
        let header = [UInt8](repeating: 1, count: 21), body = [UInt8](repeating: 2, count: 64 << 10)
        _ = header.withUnsafeBytes { h in body.withUnsafeBytes { writer.write(to: stream, opcode: .binary, fin: true, h, $0) } }
        #expect(stream.writeCalls == 1)
        #expect(decodeFrames(stream.written).first?.payload == header + body)
    }

    @Test func serverFrameGoesOutInOneGatheredWrite() {
        let stream = RecordingStream(loop: Self.loop)
        var writer = FrameWriter(role: .server)
        let header = [UInt8](repeating: 1, count: 12), body = [UInt8](repeating: 2, count: 100_000)
        _ = header.withUnsafeBytes { h in body.withUnsafeBytes { writer.write(to: stream, opcode: .binary, fin: true, h, $0) } }
        #expect(stream.writeCalls == 1)
        #expect(decodeFrames(stream.written).first?.payload == header + body)
    }

    /// `maxFrameSize` splits a message into a first frame and continuations, across the two pieces.
    @Test(arguments: [WebSocketRole.client, .server])
    func sendSplitsMessagesIntoFramesOfMaxFrameSize(role: WebSocketRole) throws {
        let frames = Self.loop.runBlocking {
            var options = WebSocketOptions()
            options.maxFrameSize = 10
            let stream = RecordingStream(loop: Self.loop)
            let socket = WebSocketConnection(stream: stream, role: role, options: options)
            socket.start(handler: MessageCollector(echo: false))
            let first = Array("abcdefg".utf8), second = Array("hijklmnopqrstuvwxy".utf8)
            _ = first.withUnsafeBytes { a in second.withUnsafeBytes { socket.send(.text, a, $0) } }
            _ = Array("short".utf8).withUnsafeBytes { socket.send(.binary, $0, .init(start: nil, count: 0)) }
            return decodeFrames(stream.written)
        }
        #expect(frames.map(\.fin) == [false, false, true, true])
        #expect(frames.map(\.opcode) == [1, 0, 0, 2])
        #expect(frames.map(\.payload.count) == [10, 10, 5, 5])
        #expect(frames[..<3].flatMap(\.payload) == Array("abcdefghijklmnopqrstuvwxy".utf8))
        #expect(frames.allSatisfy { $0.masked == (role == .client) })
    }

    /// Random sizes, cuts between the pieces and frame limits (150 messages per role): the peer's parser always gets the
    /// message back whole, in frames no larger than the limit.
    @Test(arguments: [WebSocketRole.client, .server])
    func randomlySplitMessagesArriveWhole(role: WebSocketRole) {
        let peer: WebSocketRole = role == .client ? .server : .client
        let outcome = Self.loop.runBlocking { () -> [String] in
            var random = Xorshift(seed: role == .client ? 11 : 12)
            var failures: [String] = []
            for round in 0..<150 {
                var options = WebSocketOptions()
                let limit = 1 + Int(random.next() % 3000)
                options.maxFrameSize = round % 5 == 0 ? nil : limit
                let stream = RecordingStream(loop: Self.loop)
                let socket = WebSocketConnection(stream: stream, role: role, options: options)
                socket.start(handler: MessageCollector(echo: false))
                let length = Int(random.next() % 20_000)
                let payload = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                let cut = length == 0 ? 0 : Int(random.next() % UInt64(length + 1))
                _ = payload.withUnsafeBytes { raw in
                    socket.send(.binary, UnsafeRawBufferPointer(rebasing: raw[..<cut]), UnsafeRawBufferPointer(rebasing: raw[cut...]))
                }
                let frames = decodeFrames(stream.written)
                let events = parse([stream.written], role: peer)
                if events != (length == 0 ? [.begin(2), .end] : [.begin(2), .payload(payload), .end])
                    || frames.contains(where: { $0.payload.count > (options.maxFrameSize ?? .max) })
                    || frames.dropLast().contains(where: \.fin) || frames.last?.fin != true {
                    failures.append("round \(round): length \(length) cut \(cut) limit \(String(describing: options.maxFrameSize))")
                }
            }
            return failures
        }
        #expect(outcome.isEmpty, "\(outcome.prefix(3))")
    }

    @Test func sendAndPingRefuseWhenClosedOrTooLong() {
        let results = Self.loop.runBlocking {
            let stream = RecordingStream(loop: Self.loop)
            let socket = WebSocketConnection(stream: stream, role: .server)
            let beforeStart = socket.sendPing()
            socket.start(handler: MessageCollector(echo: false))
            let longPing = [UInt8](repeating: 0, count: 126).withUnsafeBytes { socket.sendPing($0) }
            let ping = [UInt8](repeating: 0, count: 125).withUnsafeBytes { socket.sendPing($0) }
            socket.close(code: .goingAway, reason: "bye")
            let afterClose = [UInt8](repeating: 0, count: 3).withUnsafeBytes { socket.send(.binary, $0, .init(start: nil, count: 0)) }
            return (beforeStart, longPing, ping, afterClose, decodeFrames(stream.written).map(\.opcode))
        }
        #expect(results.0 == false && results.1 == false && results.2 == true && results.3 == false)
        #expect(results.4 == [9, 8])
    }
}
