import Reactor

/// What the parser found; payload pieces are borrowed views into the read ring, valid only
/// during the callback.
public enum FrameEvent {
    case messageBegin(WebSocketOpcode)
    case messagePiece(UnsafeRawBufferPointer)
    case messageEnd
    /// A whole ping or pong (at most 125 bytes, copied: control frames are tiny).
    case ping([UInt8])
    case pong([UInt8])
    /// A close frame, checked and decoded once, here: `.noStatus` and "" when it carried no code.
    case close(code: WebSocketCloseCode, reason: String)
}

/// Parses frames in place over a read ring (RFC 6455 §5): header bytes are read where they lie,
/// payload is unmasked in place and handed out as one or two views (around the ring's wrap
/// point) without copying. Fragmented messages are reassembled as a stream of pieces, control
/// frames may interleave, and every limit violation is an error with its close code.
public struct FrameParser: Sendable {
    public let role: WebSocketRole
    public let maxMessageSize: Int

    private struct Frame: Sendable {
        var opcode: WebSocketOpcode
        var fin: Bool
        var mask: UInt32?
        var length: Int
        var received = 0
    }

    private var frame: Frame?
    /// Opcode of the data message in progress (text/binary), if any.
    private var messageOpcode: WebSocketOpcode?
    private var messageSize = 0
    private var utf8 = UTF8Validator()

    public init(role: WebSocketRole, maxMessageSize: Int) {
        self.role = role
        self.maxMessageSize = maxMessageSize
    }

    /// Parses what the ring holds, consuming it. `sink` returns false to stop early (reading
    /// paused, connection closed); unparsed bytes stay in the ring.
    public mutating func parse(_ buffer: inout RingBuffer, _ sink: (FrameEvent) -> Bool) throws(WebSocketError) {
        while true {
            if frame == nil {
                guard let header = try parseHeader(&buffer) else { return }
                frame = header
                if !header.opcode.isControl && header.opcode != .continuation {
                    guard sink(.messageBegin(header.opcode)) else { return }
                }
            }
            guard var current = frame else { return }
            if current.opcode.isControl {
                guard buffer.readableBytes >= current.length else { return }
                var payload = buffer.bytes(from: 0, count: current.length)
                buffer.consume(current.length)
                if let mask = current.mask { payload.withUnsafeMutableBytes { Masking.apply(key: mask, offset: 0, to: $0) } }
                frame = nil
                guard sink(try controlEvent(current.opcode, payload)) else { return }
                continue
            }
            // Data: hand out what is here, unmasked in place.
            let count = min(current.length - current.received, buffer.readableBytes)
            if count > 0 {
                var keepGoing = true
                var failure: WebSocketError?
                var delivered = 0
                let opcode = messageOpcode
                buffer.withMutableReadableRegions(from: 0, count: count) { first, second in
                    for piece in [first, second] where piece.count > 0 && keepGoing {
                        if let mask = current.mask { Masking.apply(key: mask, offset: current.received + delivered, to: piece) }
                        if opcode == .text && !utf8.feed(UnsafeRawBufferPointer(piece)) {
                            failure = WebSocketError(.invalidPayload, "invalid UTF-8 in text message")
                            return
                        }
                        delivered += piece.count
                        keepGoing = sink(.messagePiece(UnsafeRawBufferPointer(piece)))
                    }
                }
                if let failure { throw failure }
                buffer.consume(delivered)
                current.received += delivered
                frame = current
                if !keepGoing { return }
            }
            guard current.received == current.length else { return }
            frame = nil
            if current.fin {
                if messageOpcode == .text && !utf8.isComplete { throw WebSocketError(.invalidPayload, "invalid UTF-8 in text message") }
                messageOpcode = nil
                messageSize = 0
                utf8 = UTF8Validator()
                guard sink(.messageEnd) else { return }
            }
        }
    }

    private mutating func parseHeader(_ buffer: inout RingBuffer) throws(WebSocketError) -> Frame? {
        guard buffer.readableBytes >= 2 else { return nil }
        let b0 = buffer.byte(at: 0), b1 = buffer.byte(at: 1)
        guard b0 & 0x70 == 0 else { throw WebSocketError(.protocolError, "reserved bits set") }
        guard let opcode = WebSocketOpcode(rawValue: b0 & 0x0F) else { throw WebSocketError(.protocolError, "reserved opcode \(b0 & 0x0F)") }
        let fin = b0 & 0x80 != 0
        let masked = b1 & 0x80 != 0
        let short = Int(b1 & 0x7F)
        let extended = short == 126 ? 2 : short == 127 ? 8 : 0
        let headerLength = 2 + extended + (masked ? 4 : 0)
        guard buffer.readableBytes >= headerLength else { return nil }
        var length = short
        if extended > 0 {
            var value: UInt64 = 0
            for index in 0..<extended { value = value << 8 | UInt64(buffer.byte(at: 2 + index)) }
            guard value >> 63 == 0 else { throw WebSocketError(.protocolError, "frame length has the top bit set") }
            guard (extended == 2 && value >= 126) || (extended == 8 && value > 0xFFFF) else {
                throw WebSocketError(.protocolError, "frame length not minimally encoded")
            }
            guard value <= UInt64(Int.max) else { throw WebSocketError(.messageTooBig, "frame too large") }
            length = Int(value)
        }
        var mask: UInt32?
        if masked {
            var key: UInt32 = 0
            for index in 0..<4 { key = key << 8 | UInt32(buffer.byte(at: 2 + extended + index)) }
            mask = key
        }
        // Client frames must be masked, server frames must not be (RFC 6455 §5.1).
        guard masked == (role == .server) else {
            throw WebSocketError(.protocolError, masked ? "server frames must not be masked" : "client frames must be masked")
        }
        if opcode.isControl {
            guard fin else { throw WebSocketError(.protocolError, "fragmented control frame") }
            guard length <= 125 else { throw WebSocketError(.protocolError, "control frame longer than 125 bytes") }
        } else if opcode == .continuation {
            guard messageOpcode != nil else { throw WebSocketError(.protocolError, "continuation without a message") }
        } else {
            guard messageOpcode == nil else { throw WebSocketError(.protocolError, "new message before the previous one ended") }
            messageOpcode = opcode
        }
        if !opcode.isControl {
            guard length <= maxMessageSize - messageSize else {
                throw WebSocketError(.messageTooBig, "message larger than \(maxMessageSize) bytes")
            }
            messageSize += length
        }
        buffer.consume(headerLength)
        return Frame(opcode: opcode, fin: fin, mask: mask, length: length)
    }

    /// A control frame's event; a close frame's code and reason are checked (RFC 6455 §5.5.1,
    /// §7.4) and decoded.
    private func controlEvent(_ opcode: WebSocketOpcode, _ payload: [UInt8]) throws(WebSocketError) -> FrameEvent {
        switch opcode {
        case .ping: return .ping(payload)
        case .pong: return .pong(payload)
        default:  // .close: the header parser admits no other control opcode
            guard !payload.isEmpty else { return .close(code: .noStatus, reason: "") }
            guard payload.count >= 2 else { throw WebSocketError(.protocolError, "close frame with a 1-byte payload") }
            let code = WebSocketCloseCode(rawValue: UInt16(payload[0]) << 8 | UInt16(payload[1]))
            guard code.isSendable else { throw WebSocketError(.protocolError, "invalid close code \(code.rawValue)") }
            var validator = UTF8Validator()
            let valid = payload[2...].withUnsafeBytes { validator.feed($0) } && validator.isComplete
            guard valid else { throw WebSocketError(.invalidPayload, "invalid UTF-8 in close reason") }
            return .close(code: code, reason: String(decoding: payload[2...], as: UTF8.self))
        }
    }
}

public enum WebSocketRole: Sendable { case client, server }
