import Reactor
import Testing
import TestSupport
@testable import WebSocket

/// Builds a frame as a peer would send it.
func frame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, mask: UInt32? = 0x37FA213D, rsv: UInt8 = 0, forceLength: Int? = nil) -> [UInt8] {
    var bytes: [UInt8] = [(fin ? 0x80 : 0) | rsv << 4 | opcode]
    let maskBit: UInt8 = mask == nil ? 0 : 0x80
    let length = forceLength ?? payload.count
    if length < 126 && forceLength == nil {
        bytes.append(maskBit | UInt8(length))
    } else if length <= 0xFFFF {
        bytes += [maskBit | 126, UInt8(length >> 8), UInt8(length & 0xFF)]
    } else {
        bytes.append(maskBit | 127)
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8((UInt64(length) >> UInt64(shift)) & 0xFF)) }
    }
    guard let mask else { return bytes + payload }
    let key = [UInt8(mask >> 24), UInt8((mask >> 16) & 0xFF), UInt8((mask >> 8) & 0xFF), UInt8(mask & 0xFF)]
    return bytes + key + payload.enumerated().map { $0.element ^ key[$0.offset % 4] }
}

/// What the parser reported, with adjacent payload pieces joined (cuts do not change meaning).
enum Parsed: Equatable {
    case begin(UInt8)
    case payload([UInt8])
    case end
    case ping([UInt8])
    case pong([UInt8])
    case close(UInt16, String)
    case error(UInt16)
}

/// Appends `event` to `events`, joining adjacent payload pieces.
func record(_ event: FrameEvent, into events: inout [Parsed]) {
    switch event {
    case .messageBegin(let opcode): events.append(.begin(opcode.rawValue))
    case .messagePiece(let piece):
        if case .payload(let previous)? = events.last { events[events.count - 1] = .payload(previous + piece) } else { events.append(.payload(Array(piece))) }
    case .messageEnd: events.append(.end)
    case .ping(let payload): events.append(.ping(payload))
    case .pong(let payload): events.append(.pong(payload))
    case .close(let code, let reason): events.append(.close(code.rawValue, reason))
    }
}

func parse(_ pieces: [[UInt8]], role: WebSocketRole = .server, maxMessageSize: Int = 1 << 20) -> [Parsed] {
    var ring = RingBuffer(minimumCapacity: 16, maximumCapacity: 4 << 20)
    var parser = FrameParser(role: role, maxMessageSize: maxMessageSize)
    var events: [Parsed] = []
    for piece in pieces {
        _ = ring.append(piece)
        do throws(WebSocketError) {
            try parser.parse(&ring) { event in
                record(event, into: &events)
                return true
            }
        } catch {
            events.append(.error(error.code.rawValue))
            return events
        }
    }
    return events
}


struct FrameParserTests {
    static let text = Array("héllo wörld".utf8)

    static let valid: [(String, [UInt8], [Parsed])] = [
        ("text", frame(1, text), [.begin(1), .payload(text), .end]),
        ("empty binary", frame(2, []), [.begin(2), .end]),
        ("16-bit length", frame(2, Array(repeating: 7, count: 300)), [.begin(2), .payload(Array(repeating: 7, count: 300)), .end]),
        ("64-bit length", frame(2, Array(repeating: 9, count: 70_000)), [.begin(2), .payload(Array(repeating: 9, count: 70_000)), .end]),
        ("fragmented with a ping between",
         frame(1, Array(text[..<2]), fin: false) + frame(9, [1, 2]) + frame(0, Array(text[2...5]), fin: false) + frame(0, Array(text[6...])),
         [.begin(1), .payload(Array(text[..<2])), .ping([1, 2]), .payload(Array(text[2...])), .end]),
        ("close with code and reason", frame(8, [0x03, 0xE8] + Array("bye".utf8)), [.close(1000, "bye")]),
        ("close without a code", frame(8, []), [.close(1005, "")]),
        ("pong", frame(10, [5]), [.pong([5])]),
    ]

    @Test func validFramesParseTheSameAtEveryCutPoint() {
        for (name, bytes, expected) in Self.valid {
            // Long frames: every cut in the header region, then every 997th byte.
            let cuts = bytes.count < 400 ? cuttings(bytes)
                : (Array(0..<20) + Array(stride(from: 20, to: bytes.count, by: 997))).map { [Array(bytes[..<$0]), Array(bytes[$0...])] }
            for pieces in cuts {
                #expect(parse(pieces) == expected, "\(name) cut \(pieces.map(\.count).prefix(3))")
            }
        }
    }

    @Test func serverFramesAreUnmaskedOnTheClientSide() {
        #expect(parse([frame(2, [1, 2, 3], mask: nil)], role: .client) == [.begin(2), .payload([1, 2, 3]), .end])
        #expect(parse([frame(2, [1, 2, 3])], role: .client) == [.error(1002)])
        #expect(parse([frame(2, [1, 2, 3], mask: nil)], role: .server) == [.error(1002)])
    }

    static let invalid: [(String, [UInt8], UInt16)] = [
        ("reserved bit", frame(2, [1], rsv: 4), 1002),
        ("reserved opcode", frame(3, [1]), 1002),
        ("reserved control opcode", frame(11, []), 1002),
        ("fragmented ping", frame(9, [1], fin: false), 1002),
        ("ping over 125 bytes", frame(9, Array(repeating: 0, count: 126)), 1002),
        ("continuation first", frame(0, [1]), 1002),
        ("new message inside a fragmented one", frame(1, [65], fin: false) + frame(2, [1]), 1002),
        ("invalid UTF-8", frame(1, [0xC0, 0xAF]), 1007),
        ("UTF-8 cut at the end of the message", frame(1, [0xE2, 0x82]), 1007),
        ("surrogate", frame(1, [0xED, 0xA0, 0x80]), 1007),
        ("close code 1005", frame(8, [0x03, 0xED]), 1002),
        ("close payload of one byte", frame(8, [3]), 1002),
        ("close reason not UTF-8", frame(8, [0x03, 0xE8, 0xFF]), 1007),
        ("non-minimal 16-bit length", frame(2, Array(repeating: 0, count: 5), forceLength: 5) , 1002),
        ("non-minimal 64-bit length", [0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 1, 2, 3, 4], 1002),
        ("64-bit length with the top bit set", [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4], 1002),
        ("close code 999", frame(8, [0x03, 0xE7]), 1002),
        ("close code 1015 (never sent)", frame(8, [0x03, 0xF7]), 1002),
        ("message too big", frame(2, [], forceLength: 2 << 20), 1009),
        ("fragments too big together", frame(2, Array(repeating: 0, count: 700_000), fin: false) + frame(0, Array(repeating: 0, count: 700_000)), 1009),
    ]

    @Test func violationsCloseWithTheirCode() {
        for (name, bytes, code) in Self.invalid {
            let cuts = bytes.count < 300 ? cuttings(bytes) : [[bytes]]
            for pieces in cuts {
                let events = parse(pieces)
                #expect(events.last == .error(code), "\(name): \(events.suffix(1))")
            }
        }
    }

    /// Many frames of every kind back to back, fed at random cut points, mean the same as fed whole.
    @Test func longStreamAtRandomCutPointsMeansTheSameAsWhole() {
        var stream: [UInt8] = []
        var expected: [Parsed] = []
        var random = Xorshift(seed: 0x5EED)
        for round in 0..<300 {
            let length = Int(random.next() % (round % 10 == 0 ? 70_000 : 300))
            let payload = (0..<length).map { _ in UInt8(ascii: "a") + UInt8(random.next() % 26) }
            let mask: UInt32 = UInt32(truncatingIfNeeded: random.next())
            switch round % 4 {
            case 0:
                stream += frame(1, payload, mask: mask)
                expected += payload.isEmpty ? [.begin(1), .end] : [.begin(1), .payload(payload), .end]
            case 1:
                let cut = length / 3
                stream += frame(2, Array(payload[..<cut]), fin: false, mask: mask) + frame(10, [9], mask: mask)
                    + frame(0, Array(payload[cut...]), mask: mask)
                expected += [.begin(2)] + (cut > 0 ? [.payload(Array(payload[..<cut]))] : []) + [.pong([9])]
                    + (length > cut ? [.payload(Array(payload[cut...]))] : []) + [.end]
            case 2:
                let ping = Array(payload.prefix(125))
                stream += frame(9, ping, mask: mask)
                expected.append(.ping(ping))
            default:
                stream += frame(2, payload, mask: mask)
                expected += payload.isEmpty ? [.begin(2), .end] : [.begin(2), .payload(payload), .end]
            }
        }
        #expect(parse([stream], maxMessageSize: 1 << 20) == expected)
        for _ in 0..<20 {
            var pieces: [[UInt8]] = []
            var offset = 0
            while offset < stream.count {
                let count = 1 + Int(random.next() % (random.next() % 2 == 0 ? 16 : 5000))
                pieces.append(Array(stream[offset..<min(stream.count, offset + count)]))
                offset += count
            }
            #expect(parse(pieces, maxMessageSize: 1 << 20) == expected)
        }
    }

    /// A sink that says stop after every event (reading paused) loses nothing: the next parse
    /// call picks up where it left off, mid-frame included.
    @Test func stoppingAfterEveryEventResumesWhereItLeftOff() throws {
        let bytes = Self.valid.map(\.1).joined()
        var ring = RingBuffer(minimumCapacity: 16, maximumCapacity: 1 << 20)
        _ = ring.append(Array(bytes))
        var parser = FrameParser(role: .server, maxMessageSize: 1 << 20)
        var events: [Parsed] = []
        var calls = 0
        while !ring.isEmpty && calls < 1000 {
            calls += 1
            try parser.parse(&ring) { event in
                record(event, into: &events)
                return false
            }
        }
        #expect(events == Self.valid.flatMap(\.2))
        #expect(calls > events.count / 2)
    }

    @Test func utf8SplitAcrossFramesIsValid() {
        let euro: [UInt8] = [0xE2, 0x82, 0xAC]
        let bytes = frame(1, [euro[0]], fin: false) + frame(0, [euro[1]], fin: false) + frame(0, [euro[2]])
        #expect(parse([bytes]) == [.begin(1), .payload(euro), .end])
    }

    @Test func maskingWordAtATimeMatchesBytewiseAtEveryOffset() {
        var random = Xorshift.logged()
        let data = (0..<1000).map { _ in UInt8.random(in: 0...255, using: &random) }
        let key: UInt32 = 0xA1B2C3D4
        let keyBytes: [UInt8] = [0xA1, 0xB2, 0xC3, 0xD4]
        let reference = data.enumerated().map { $0.element ^ keyBytes[$0.offset % 4] }
        for cut in [0, 1, 2, 3, 5, 8, 13, 500, 999] {
            var copy = data
            copy.withUnsafeMutableBytes { raw in
                Masking.apply(key: key, offset: 0, to: UnsafeMutableRawBufferPointer(rebasing: raw[..<cut]))
                Masking.apply(key: key, offset: cut, to: UnsafeMutableRawBufferPointer(rebasing: raw[cut...]))
            }
            #expect(copy == reference, "cut \(cut)")
        }
    }

    /// Fuzzing: random and mutated frames at random cuts leave at most a partial header or a
    /// partial control frame (125 bytes) unconsumed after each parse, and the events form
    /// well-shaped messages within the size limit until the first error.
    @Test func randomInputKeepsTheRingBoundedAndEventsWellFormed() {
        var random = Xorshift.logged()
        let seeds = Self.valid.map(\.1).filter { $0.count < 2000 }
        for round in 0..<20_000 {
            var input = round % 4 == 0 ? (0..<random.below(300)).map { _ in UInt8(truncatingIfNeeded: random.next()) } : seeds[round % seeds.count]
            for _ in 0..<random.below(6) where !input.isEmpty { input[random.below(input.count)] = UInt8(truncatingIfNeeded: random.next()) }
            var ring = RingBuffer(minimumCapacity: 16, maximumCapacity: 4 << 20)
            var parser = FrameParser(role: round % 2 == 0 ? .server : .client, maxMessageSize: 4096)
            var grammar = EventGrammar(maxMessageSize: 4096)
            var offset = 0
            feeding: while offset < input.count {
                let count = min(input.count - offset, 1 + random.below(40))
                _ = ring.append(input[offset..<(offset + count)])
                offset += count
                do throws(WebSocketError) {
                    try parser.parse(&ring) { grammar.accept($0); return true }
                } catch {
                    break feeding
                }
                if ring.readableBytes > 125 {
                    Issue.record("round \(round): \(ring.readableBytes) bytes left unconsumed")
                    break feeding
                }
            }
            if let violation = grammar.violation { Issue.record("round \(round): \(violation)") }
            #expect(grammar.payloadBytes <= input.count)
        }
    }
}

/// Checks that parser events form messages: begin, pieces, end, with control frames anywhere,
/// never a piece outside a message, no message above the limit, no control payload above 125.
struct EventGrammar {
    let maxMessageSize: Int
    /// Bytes of the message being delivered; nil outside a message.
    private var messageSize: Int?
    private(set) var payloadBytes = 0
    private(set) var violation: String?

    init(maxMessageSize: Int) { self.maxMessageSize = maxMessageSize }

    mutating func accept(_ event: FrameEvent) {
        guard violation == nil else { return }
        switch event {
        case .messageBegin(let opcode):
            if messageSize != nil { violation = "begin inside a message" }
            if opcode != .text && opcode != .binary { violation = "message begins with \(opcode)" }
            messageSize = 0
        case .messagePiece(let piece):
            guard let size = messageSize else { violation = "piece outside a message"; return }
            messageSize = size + piece.count
            payloadBytes += piece.count
            if size + piece.count > maxMessageSize { violation = "message over \(maxMessageSize) bytes" }
        case .messageEnd:
            if messageSize == nil { violation = "end outside a message" }
            messageSize = nil
        case .ping(let payload), .pong(let payload):
            payloadBytes += payload.count
            if payload.count > 125 { violation = "control payload of \(payload.count) bytes" }
        case .close(let code, let reason):
            payloadBytes += code == .noStatus ? 0 : 2 + reason.utf8.count
            if reason.utf8.count > 123 { violation = "close reason of \(reason.utf8.count) bytes" }
        }
    }
}

struct UTF8ValidatorTests {
    @Test func acceptsAndRejectsLikeRFC3629() {
        let valid: [[UInt8]] = [Array("aé€𝄞".utf8), [0xF4, 0x8F, 0xBF, 0xBF], []]
        let invalid: [[UInt8]] = [[0x80], [0xC1, 0x81], [0xE0, 0x80, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xF5], [0xED, 0xBF, 0xBF]]
        for bytes in valid {
            var validator = UTF8Validator()
            #expect(bytes.withUnsafeBytes { validator.feed($0) } && validator.isComplete)
        }
        for bytes in invalid {
            var validator = UTF8Validator()
            #expect(!bytes.withUnsafeBytes { validator.feed($0) }, "\(bytes)")
        }
    }
}
