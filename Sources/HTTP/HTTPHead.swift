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
    public var path: Substring {
        guard let mark = queryMark else { return target[...] }
        return target[..<target.utf8.index(target.utf8.startIndex, offsetBy: mark)]
    }

    /// The raw query (after `?`), empty if none.
    public var query: Substring {
        guard let mark = queryMark else { return "" }
        return target[target.utf8.index(target.utf8.startIndex, offsetBy: mark + 1)...]
    }

    /// The byte offset of `?` in `target`. Searched on the contiguous bytes: the generic search
    /// over `String.UTF8View` cost about a thousand instructions, and every request asks twice.
    private var queryMark: Int? {
        var target = target
        return target.withUTF8 { $0.firstIndex(of: UInt8(ascii: "?")) }
    }

    /// The first value of query parameter `name` (percent-decoding not needed for our routes).
    public func queryParameter(_ name: String) -> String? {
        var target = target, name = name
        return target.withUTF8 { bytes in
            guard let mark = bytes.firstIndex(of: UInt8(ascii: "?")) else { return nil }
            return name.withUTF8 { name in
                // Cut on bytes: `&` and `=` are ASCII, so every cut is on a character boundary.
                for pair in bytes[(mark + 1)...].split(separator: UInt8(ascii: "&")) {
                    let equals = pair.firstIndex(of: UInt8(ascii: "=")) ?? pair.endIndex
                    guard pair[..<equals].elementsEqual(name) else { continue }
                    return equals == pair.endIndex ? "" : String(decoding: UnsafeBufferPointer(rebasing: pair[(equals + 1)...]), as: UTF8.self)
                }
                return nil
            }
        }
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
        bytes.appendUTF8(method)
        bytes.append(32)
        bytes.appendUTF8(target)
        bytes.append(32)
        version.serialize(into: &bytes)
        bytes.appendCRLF()
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
        bytes.appendUTF8(code)
        bytes.append(32)
        bytes.appendUTF8(reason)
        bytes.appendCRLF()
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
        case .http11: bytes.appendUTF8("HTTP/1.1")
        case .http10: bytes.appendUTF8("HTTP/1.0")
        default: bytes.appendUTF8(description)
        }
    }
}
