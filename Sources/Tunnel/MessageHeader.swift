/// The varint header in front of every message's payload.
public struct MessageHeader: Equatable, Sendable, CustomStringConvertible {
    /// The sender's message counter; receivers only log it.
    public var id: Int64
    public var connID: Int64
    public var type: MessageType

    /// What the Go implementation writes in the legacy deadline field (milliseconds).
    public static let legacyDeadline: Int64 = 15_000
    /// id + connID + type + deadline, each at most 10 bytes.
    public static let maxEncodedLength = 4 * Varint.maxLength

    public init(id: Int64, connID: Int64, type: MessageType) {
        self.id = id
        self.connID = connID
        self.type = type
    }

    /// Writes the header at `destination` (room for `maxEncodedLength`); returns its length.
    public func encode(into destination: UnsafeMutableRawPointer) -> Int {
        var length = Varint.encode(id, into: destination)
        length += Varint.encode(connID, into: destination + length)
        length += Varint.encode(type.rawValue, into: destination + length)
        if type.hasDeadline { length += Varint.encode(Self.legacyDeadline, into: destination + length) }
        return length
    }

    /// Calls `body` with the encoded header, built on the stack.
    public func withEncodedBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(byteCount: Self.maxEncodedLength, alignment: 8) { buffer in
            let length = encode(into: buffer.baseAddress!)
            return try body(UnsafeRawBufferPointer(rebasing: buffer[..<length]))
        }
    }

    public var description: String { "\(id) \(connID) \(type)" }
}

/// Reads a header from message bytes that arrive in pieces: feed pieces until it reports the
/// header and how much of the piece it used; everything after that is payload.
public struct MessageHeaderDecoder {
    private enum Field { case id, connID, type, deadline, done }
    private var field = Field.id
    private var varint = VarintDecoder()
    private var header = MessageHeader(id: 0, connID: 0, type: MessageType(rawValue: 0))

    public init() {}

    /// Consumes bytes of `piece` until the header is complete. Returns the header and the number
    /// of bytes it took from `piece`, or nil when `piece` was used up without completing it.
    public mutating func feed(_ piece: UnsafeRawBufferPointer) throws(TunnelDecodingError) -> (header: MessageHeader, used: Int)? {
        for index in 0..<piece.count {
            guard case .done(let value) = try varint.feed(piece[index]) else { continue }
            switch field {
            case .id:
                header.id = value
                field = .connID
            case .connID:
                header.connID = value
                field = .type
            case .type:
                header.type = MessageType(rawValue: value)
                field = header.type.hasDeadline ? .deadline : .done
            case .deadline, .done:
                field = .done  // the legacy deadline is read and ignored
            }
            if field == .done { return (header, index + 1) }
        }
        return nil
    }

    /// The message ended before its header did: Go's error for that point.
    public var endOfInputError: TunnelDecodingError { varint.endOfInputError }
}
