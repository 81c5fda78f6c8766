import Reactor

/// Finds a complete head at the front of a read ring and parses it; bytes after the head (a
/// body, pipelined requests, WebSocket frames) stay in the ring. Scanning resumes where it
/// stopped, so a head arriving a byte at a time costs linear time.
public struct HTTPHeadParser: Sendable {
    public let limits: HTTPLimits
    private var scanned = 0

    public init(limits: HTTPLimits = HTTPLimits()) { self.limits = limits }

    public mutating func parseRequest(_ buffer: inout RingBuffer) throws(HTTPParseError) -> HTTPRequestHead? {
        guard let lines = try takeHead(&buffer) else { return nil }
        let parts = lines[0].split(separator: " ", omittingEmptySubsequences: false)
        // A target with control bytes (a bare CR, NUL, a tab) could mean another thing to the
        // upstream a proxied request is forwarded to.
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty,
              parts[0].utf8.allSatisfy(Self.isTokenCharacter),
              parts[1].utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else { throw .malformedRequestLine }
        let version = try Self.version(parts[2])
        return HTTPRequestHead(method: String(parts[0]), target: String(parts[1]), version: version,
                               headers: try headers(lines.dropFirst()))
    }

    public mutating func parseResponse(_ buffer: inout RingBuffer) throws(HTTPParseError) -> HTTPResponseHead? {
        guard let lines = try takeHead(&buffer) else { return nil }
        let parts = lines[0].split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[1].utf8.count == 3, let code = Int(parts[1]), code >= 100 else { throw .malformedStatusLine }
        let version = try Self.version(parts[0])
        return HTTPResponseHead(status: HTTPStatus(code), version: version, headers: try headers(lines.dropFirst()))
    }

    /// Removes the head from the ring and splits it into lines (CRLF, or bare LF leniently).
    private mutating func takeHead(_ buffer: inout RingBuffer) throws(HTTPParseError) -> [Substring]? {
        // Robustness (RFC 9112 §2.2): empty lines before a message are ignored.
        if scanned == 0 {
            while !buffer.isEmpty && (buffer.byte(at: 0) == 13 || buffer.byte(at: 0) == 10) { buffer.consume(1) }
        }
        let available = buffer.readableBytes
        var end: Int?
        var index = max(0, scanned - 3)
        while index < available {
            if buffer.byte(at: index) == 10 {
                // "\n\n" or "\n\r\n" ends the head.
                if index + 1 < available && buffer.byte(at: index + 1) == 10 { end = index + 2; break }
                if index + 2 < available && buffer.byte(at: index + 1) == 13 && buffer.byte(at: index + 2) == 10 { end = index + 3; break }
            }
            index += 1
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
        // Split on bytes: as Characters, "\r\n" is one grapheme and would never equal "\n".
        var lines: [Substring] = bytes.split(separator: 10, omittingEmptySubsequences: false).map { line in
            Substring(String(decoding: line.last == 13 ? line.dropLast() : line, as: UTF8.self))
        }
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard !lines.isEmpty else { throw .malformedRequestLine }
        if lines.contains(where: { $0.utf8.count > limits.maxLineLength }) { throw .headTooLarge }
        return lines
    }

    private func headers(_ lines: ArraySlice<Substring>) throws(HTTPParseError) -> HTTPHeaders {
        guard lines.count <= limits.maxHeaderCount else { throw .tooManyHeaders }
        var headers = HTTPHeaders()
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { throw .malformedHeader }
            let name = line[..<colon]
            // No whitespace between name and colon (RFC 9112 §5.1), no obs-fold.
            guard !name.isEmpty, name.utf8.allSatisfy(Self.isTokenCharacter) else { throw .malformedHeader }
            let value = line[line.index(after: colon)...].trimmingASCIISpaces()
            // RFC 9110 §5.5: no CR, LF, NUL or other controls in a value (a bare CR is how
            // header injection and request smuggling through lenient peers start).
            guard value.utf8.allSatisfy(Self.isFieldValueByte) else { throw .malformedHeader }
            headers.add(name: String(name), value: String(value))
        }
        return headers
    }

    private static func version(_ text: Substring) throws(HTTPParseError) -> HTTPVersion {
        switch text {
        case "HTTP/1.1": return .http11
        case "HTTP/1.0": return .http10
        default:
            if text.hasPrefix("HTTP/") { throw .unsupportedVersion }
            throw .malformedRequestLine
        }
    }

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
