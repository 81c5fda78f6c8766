import Reactor

/// How a message's body is delimited (RFC 9112 §6).
public enum HTTPBodyFraming: Equatable, Sendable {
    case none
    case length(Int)
    case chunked
    /// Responses only: the body runs until the connection closes.
    case untilClose

    public static func of(request head: HTTPRequestHead) throws(HTTPParseError) -> HTTPBodyFraming {
        if let framing = try explicit(head.headers) { return framing }
        return .none
    }

    public static func of(response head: HTTPResponseHead, requestMethod: String) throws(HTTPParseError) -> HTTPBodyFraming {
        let code = head.status.code
        if requestMethod == "HEAD" || code < 200 || code == 204 || code == 304 { return .none }
        if let framing = try explicit(head.headers) { return framing }
        return .untilClose
    }

    private static func explicit(_ headers: HTTPHeaders) throws(HTTPParseError) -> HTTPBodyFraming? {
        var encodingFields = 0, codings = 0, chunked = true
        var length: Substring.UTF8View?, conflictingLengths = false
        for field in headers.fields {
            if field.name.equalsIgnoringASCIICase("Transfer-Encoding") {
                encodingFields += 1
                for coding in field.value.utf8.split(separator: UInt8(ascii: ",")) {
                    codings += 1
                    chunked = chunked && asciiCaseInsensitiveEqual(coding.trimmingASCIISpaces(), "chunked".utf8)
                }
            } else if field.name.equalsIgnoringASCIICase("Content-Length") {
                for item in field.value.utf8.split(separator: UInt8(ascii: ",")) {
                    let item = item.trimmingASCIISpaces()
                    if let length, !length.elementsEqual(item) { conflictingLengths = true }
                    length = length ?? item
                }
            }
        }
        if encodingFields > 0 {
            // Only "chunked" (listed alone) is supported; it wins over Content-Length.
            guard codings == 1, chunked else { throw .unsupportedTransferEncoding }
            return .chunked
        }
        guard let length else { return nil }
        // Differing lengths: which one a peer on the way used is unknowable.
        guard !conflictingLengths, !length.isEmpty, length.count <= 18,
              length.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { throw .invalidContentLength }
        return .length(length.reduce(0) { $0 * 10 + Int($1 - 48) })
    }
}

/// Streams a body out of a read ring as borrowed pieces, never assembling it.
public struct HTTPBodyDecoder: Sendable {
    private enum State: Sendable {
        case remaining(Int)
        case chunkSize
        case chunkData(Int)
        case chunkDataEnd
        case trailers
        case untilClose
        case done
    }

    private var state: State
    private let limits: HTTPLimits

    public init(framing: HTTPBodyFraming, limits: HTTPLimits = HTTPLimits()) {
        self.limits = limits
        switch framing {
        case .none: state = .done
        case .length(let count): state = count == 0 ? .done : .remaining(count)
        case .chunked: state = .chunkSize
        case .untilClose: state = .untilClose
        }
    }

    public var isComplete: Bool { if case .done = state { true } else { false } }

    /// Hands over as much body as the ring holds (consuming it) and returns true once the body
    /// is complete. Bytes after the body stay in the ring.
    public mutating func decode(_ buffer: inout RingBuffer, _ onPiece: (UnsafeRawBufferPointer) -> Void) throws(HTTPParseError) -> Bool {
        try decode(&buffer, while: { true }, onPiece)
    }

    /// Like `decode(_:_:)`, but hands over no further piece once `shouldContinue` returns false
    /// (asked before each): a consumer that stopped taking bytes (its writes back up) leaves the
    /// rest in the ring, where back-pressure can act on it, instead of having it all pushed into
    /// its own queue at once.
    public mutating func decode(_ buffer: inout RingBuffer, while shouldContinue: () -> Bool,
                                _ onPiece: (UnsafeRawBufferPointer) -> Void) throws(HTTPParseError) -> Bool {
        while true {
            switch state {
            case .done:
                return true
            case .untilClose:
                deliver(&buffer, count: buffer.readableBytes, shouldContinue, onPiece)
                return false
            case .remaining(let count):
                let taken = deliver(&buffer, count: count, shouldContinue, onPiece)
                state = taken == count ? .done : .remaining(count - taken)
                if taken < count { return false }
            case .chunkData(let count):
                let taken = deliver(&buffer, count: count, shouldContinue, onPiece)
                state = taken == count ? .chunkDataEnd : .chunkData(count - taken)
                if taken < count { return false }
            case .chunkSize:
                guard let line = try takeLine(&buffer) else { return false }
                // chunk-size [; extensions]
                let sizeText = line.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)[0].trimmingASCIISpaces()
                // Hex digits only: Int(_:radix:) would also take a sign, and "-5" would stall the body.
                guard !sizeText.isEmpty, sizeText.utf8.count <= 15, sizeText.utf8.allSatisfy(\.isASCIIHexDigit),
                      let size = Int(sizeText, radix: 16) else { throw .malformedChunk }
                state = size == 0 ? .trailers : .chunkData(size)
            case .chunkDataEnd:
                guard let line = try takeLine(&buffer) else { return false }
                guard line.isEmpty else { throw .malformedChunk }
                state = .chunkSize
            case .trailers:
                guard let line = try takeLine(&buffer) else { return false }
                if line.isEmpty { state = .done }
            }
        }
    }

    /// The connection ended: fine for `untilClose`, a truncation otherwise.
    public mutating func finishAtEOF() throws(HTTPParseError) {
        switch state {
        case .done: return
        case .untilClose: state = .done
        default: throw .bodyTruncated
        }
    }

    /// Hands over up to `count` readable bytes (at most two pieces, split at the ring's wrap
    /// point) while `shouldContinue` allows; returns how many were handed over and consumed.
    @discardableResult
    private func deliver(_ buffer: inout RingBuffer, count: Int, _ shouldContinue: () -> Bool,
                         _ onPiece: (UnsafeRawBufferPointer) -> Void) -> Int {
        let available = min(count, buffer.readableBytes)
        guard available > 0, shouldContinue() else { return 0 }
        let taken = buffer.withReadableRegions { first, second in
            let a = min(available, first.count)
            onPiece(UnsafeRawBufferPointer(rebasing: first[..<a]))
            guard available > a, shouldContinue() else { return a }
            onPiece(UnsafeRawBufferPointer(rebasing: second[..<(available - a)]))
            return available
        }
        buffer.consume(taken)
        return taken
    }

    private func takeLine(_ buffer: inout RingBuffer) throws(HTTPParseError) -> Substring? {
        let available = buffer.readableBytes
        var index = 0
        while index < available && buffer.byte(at: index) != 10 { index += 1 }
        guard index < available else {
            if available > limits.maxChunkLineLength { throw .malformedChunk }
            return nil
        }
        guard index <= limits.maxChunkLineLength else { throw .malformedChunk }
        var bytes = buffer.bytes(from: 0, count: index)
        buffer.consume(index + 1)
        if bytes.last == 13 { bytes.removeLast() }
        return Substring(String(decoding: bytes, as: UTF8.self))
    }
}

extension UInt8 {
    var isASCIIHexDigit: Bool {
        switch self {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"): true
        default: false
        }
    }
}
