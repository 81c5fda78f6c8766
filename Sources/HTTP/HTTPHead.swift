/// A request line and its header fields.
public struct HTTPRequestHead: Sendable, CustomStringConvertible {
    public var method: String
    /// The raw request-target, e.g. `/client/foo/http/127.0.0.1:8125/file?timeout=600`.
    public var target: String
    public var version: HTTPVersion
    public var headers: HTTPHeaders

    public init(method: String, target: String, version: HTTPVersion = .http11, headers: HTTPHeaders = HTTPHeaders()) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
    }

    /// The target's path (before `?`).
    public var path: Substring { target[..<(target.utf8.firstIndex(of: UInt8(ascii: "?")) ?? target.endIndex)] }

    /// The raw query (after `?`), empty if none.
    public var query: Substring {
        guard let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return "" }
        return target[target.utf8.index(after: mark)...]
    }

    /// The first value of query parameter `name` (percent-decoding not needed for our routes).
    public func queryParameter(_ name: String) -> String? {
        // Split on bytes: `&` and `=` are ASCII, so every cut is on a character boundary.
        for pair in query.utf8.split(separator: UInt8(ascii: "&")) {
            let equals = pair.firstIndex(of: UInt8(ascii: "=")) ?? pair.endIndex
            guard pair[..<equals].elementsEqual(name.utf8) else { continue }
            return equals == pair.endIndex ? "" : String(Substring(pair[pair.index(after: equals)...]))
        }
        return nil
    }

    /// Persistent per RFC 9112 §9.3: HTTP/1.1 unless `Connection: close`; 1.0 only with keep-alive.
    public var keepAlive: Bool {
        if headers.containsToken("close", in: "Connection") { return false }
        return version == .http11 || headers.containsToken("keep-alive", in: "Connection")
    }

    public var description: String { "\(method) \(target) \(version)" }

    /// The head's bytes on the wire.
    public var serialized: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(method.utf8.count + target.utf8.count + headers.serializedCount + 13)
        bytes += method.utf8
        bytes.append(32)
        bytes += target.utf8
        bytes.append(32)
        version.serialize(into: &bytes)
        bytes += "\r\n".utf8
        headers.serialize(into: &bytes)
        return bytes
    }
}

/// A status line and its header fields.
public struct HTTPResponseHead: Sendable, CustomStringConvertible {
    public var version: HTTPVersion
    public var status: HTTPStatus
    public var headers: HTTPHeaders

    public init(status: HTTPStatus, version: HTTPVersion = .http11, headers: HTTPHeaders = HTTPHeaders()) {
        self.status = status
        self.version = version
        self.headers = headers
    }

    public var description: String { "\(version) \(status)" }

    public var serialized: [UInt8] {
        var bytes: [UInt8] = []
        let code = String(status.code), reason = status.reasonPhrase
        bytes.reserveCapacity(code.utf8.count + reason.utf8.count + headers.serializedCount + 12)
        version.serialize(into: &bytes)
        bytes.append(32)
        bytes += code.utf8
        bytes.append(32)
        bytes += reason.utf8
        bytes += "\r\n".utf8
        headers.serialize(into: &bytes)
        return bytes
    }
}

public struct HTTPVersion: Equatable, Sendable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public static let http11 = HTTPVersion(major: 1, minor: 1)
    public static let http10 = HTTPVersion(major: 1, minor: 0)
    public var description: String { "HTTP/\(major).\(minor)" }

    /// Appends `description`; the two versions we speak without formatting a string.
    func serialize(into bytes: inout [UInt8]) {
        switch self {
        case .http11: bytes += "HTTP/1.1".utf8
        case .http10: bytes += "HTTP/1.0".utf8
        default: bytes += description.utf8
        }
    }
}
