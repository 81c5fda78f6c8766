import Glibc
import Reactor

/// Finds a complete head at the front of a read ring and parses it; bytes after the head (a
/// body, pipelined requests, WebSocket frames) stay in the ring. Scanning resumes where it
/// stopped, so a head arriving a byte at a time costs linear time.
public struct HTTPHeadParser: Sendable {
    public let limits: HTTPLimits
    private var scanned = 0

    public init(limits: HTTPLimits = HTTPLimits()) { self.limits = limits }

    public mutating func parseRequest(_ buffer: inout RingBuffer) throws(HTTPParseError) -> HTTPRequestHead? {
        guard let head = try takeHead(&buffer) else { return nil }
        return try head.withUnsafeBufferPointer { bytes throws(HTTPParseError) in
            let lines = try self.lines(bytes)
            let line = bytes[lines[0]]
            // Exactly two single spaces: method, target, version.
            guard let firstSpace = line.firstIndex(of: 32), let secondSpace = line[(firstSpace + 1)...].firstIndex(of: 32),
                  !line[(secondSpace + 1)...].contains(32) else { throw .malformedRequestLine }
            let method = line[..<firstSpace], target = line[(firstSpace + 1)..<secondSpace]
            // A target with control bytes (a bare CR, NUL, a tab) could mean another thing to the
            // upstream a proxied request is forwarded to.
            guard !method.isEmpty, !target.isEmpty, method.allSatisfy(Self.isTokenCharacter),
                  target.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else { throw .malformedRequestLine }
            let version = try Self.version(line[(secondSpace + 1)...])
            return HTTPRequestHead(method: String(decoding: method, as: UTF8.self), target: String(decoding: target, as: UTF8.self),
                                   version: version, headers: try headers(bytes, lines.dropFirst()))
        }
    }

    public mutating func parseResponse(_ buffer: inout RingBuffer) throws(HTTPParseError) -> HTTPResponseHead? {
        guard let head = try takeHead(&buffer) else { return nil }
        return try head.withUnsafeBufferPointer { bytes throws(HTTPParseError) in
            let lines = try self.lines(bytes)
            let line = bytes[lines[0]]
            // version SP 3DIGIT [SP reason]; the reason is not looked at.
            guard let space = line.firstIndex(of: 32) else { throw .malformedStatusLine }
            let afterCode = line[(space + 1)...].firstIndex(of: 32) ?? line.endIndex
            let code = line[(space + 1)..<afterCode]
            guard code.count == 3, code.allSatisfy({ $0 >= 48 && $0 <= 57 }), code.first! >= 49 else { throw .malformedStatusLine }
            let version = try Self.version(line[..<space])
            let status = code.reduce(0) { $0 * 10 + Int($1 - 48) }
            return HTTPResponseHead(status: HTTPStatus(status), version: version, headers: try headers(bytes, lines.dropFirst()))
        }
    }

    /// Removes the head (through the empty line that ends it) from the ring.
    private mutating func takeHead(_ buffer: inout RingBuffer) throws(HTTPParseError) -> [UInt8]? {
        // Robustness (RFC 9112 §2.2): empty lines before a message are ignored.
        if scanned == 0 {
            while !buffer.isEmpty && (buffer.byte(at: 0) == 13 || buffer.byte(at: 0) == 10) { buffer.consume(1) }
        }
        let available = buffer.readableBytes
        var end: Int?
        var index = max(0, scanned - 3)
        while index < available, let newline = Self.firstNewline(in: buffer, from: index) {
            // "\n\n" or "\n\r\n" ends the head.
            if newline + 1 < available && buffer.byte(at: newline + 1) == 10 { end = newline + 2; break }
            if newline + 2 < available && buffer.byte(at: newline + 1) == 13 && buffer.byte(at: newline + 2) == 10 { end = newline + 3; break }
            index = newline + 1
        }
        guard let end else {
            scanned = available
            if available > limits.maxHeadBytes { throw .headTooLarge }
            return nil
        }
        scanned = 0
        guard end <= limits.maxHeadBytes else { throw .headTooLarge }
        let bytes = buffer.bytes(from: 0, count: end)
        buffer.consume(end)
        return bytes
    }

    /// The offset of the first LF at or after `offset`: a scan of the ring's regions, not a
    /// bounds-checked load per byte.
    private static func firstNewline(in buffer: borrowing RingBuffer, from offset: Int) -> Int? {
        buffer.withReadableRegions(from: offset) { first, second in
            if let index = firstNewline(in: first, from: 0) { return offset + index }
            if let index = firstNewline(in: second, from: 0) { return offset + first.count + index }
            return nil
        }
    }

    /// The offset of the first LF in `bytes` at or after `start` (memchr, several bytes a step).
    private static func firstNewline(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard start < bytes.count, let base = bytes.baseAddress,
              let found = memchr(base + start, 10, bytes.count - start) else { return nil }
        return base.distance(to: UnsafeRawPointer(found))
    }

    /// The head's lines (split at LF, bare LF accepted; a CR before the LF is not part of the
    /// line), up to the empty line that ends it; a line over the limit is rejected.
    private func lines(_ head: UnsafeBufferPointer<UInt8>) throws(HTTPParseError) -> [Range<Int>] {
        var lines: [Range<Int>] = []
        var start = 0
        while let newline = Self.firstNewline(in: UnsafeRawBufferPointer(head), from: start) {
            let end = newline > start && head[newline - 1] == 13 ? newline - 1 : newline
            if end == start { break }
            guard end - start <= limits.maxLineLength else { throw .headTooLarge }
            lines.append(start..<end)
            start = newline + 1
        }
        guard !lines.isEmpty else { throw .malformedRequestLine }
        return lines
    }

    private func headers(_ head: UnsafeBufferPointer<UInt8>, _ lines: ArraySlice<Range<Int>>) throws(HTTPParseError) -> HTTPHeaders {
        guard lines.count <= limits.maxHeaderCount else { throw .tooManyHeaders }
        var headers = HTTPHeaders(capacity: lines.count)
        for range in lines {
            let line = head[range]
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { throw .malformedHeader }
            let name = line[..<colon]
            // No whitespace between name and colon (RFC 9112 §5.1), no obs-fold.
            guard !name.isEmpty, name.allSatisfy(Self.isTokenCharacter) else { throw .malformedHeader }
            let value = line[(colon + 1)...].trimmingASCIISpaces()
            // RFC 9110 §5.5: no CR, LF, NUL or other controls in a value (a bare CR is how
            // header injection and request smuggling through lenient peers start).
            guard value.allSatisfy(Self.isFieldValueByte) else { throw .malformedHeader }
            headers.add(name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self))
        }
        return headers
    }

    private static func version(_ text: Slice<UnsafeBufferPointer<UInt8>>) throws(HTTPParseError) -> HTTPVersion {
        // Byte by byte: comparing with `"HTTP/1.1".utf8` took the generic String.UTF8View walk,
        // about 400 instructions, on every head.
        if text.count == 8 && text.starts(with: httpOnePrefix) {
            switch text.last {
            case UInt8(ascii: "1"): return .http11
            case UInt8(ascii: "0"): return .http10
            default: throw .unsupportedVersion
            }
        }
        if text.starts(with: httpOnePrefix.prefix(5)) { throw .unsupportedVersion }
        throw .malformedRequestLine
    }

    private static let httpOnePrefix: [UInt8] = Array("HTTP/1.".utf8)

    /// RFC 9110 field-vchar, SP or HTAB (obs-text included).
    static func isFieldValueByte(_ byte: UInt8) -> Bool {
        (byte >= 0x20 && byte != 0x7F) || byte == 0x09
    }

    /// RFC 9110 tchar.
    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"): true
        default: false
        }
    }
}
