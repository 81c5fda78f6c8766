import Glibc

/// An IPv4 or IPv6 socket address (the kernel's `sockaddr_in` or `sockaddr_in6`, with its
/// length), parsed from and printed as `host:port` / `[v6]:port`.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    /// Either family fits (IPv4 in its first bytes); a `sockaddr_storage` would make the address
    /// 136 bytes, and every connection keeps two.
    var storage: sockaddr_in6
    var length: socklen_t

    public var family: Int32 { Int32(storage.sin6_family) }

    init(storage: sockaddr_in6, length: socklen_t) {
        self.storage = storage
        self.length = length
    }

    /// The address in the `length` bytes at `raw` (as the kernel fills them in); nil unless IPv4 or IPv6.
    init?(_ raw: UnsafeRawPointer, length: socklen_t) {
        let family = Int32(raw.load(fromByteOffset: MemoryLayout.offset(of: \sockaddr.sa_family)!, as: sa_family_t.self))
        guard family == AF_INET || family == AF_INET6, Int(length) <= MemoryLayout<sockaddr_in6>.size else { return nil }
        var storage = sockaddr_in6()
        withUnsafeMutableBytes(of: &storage) { $0.baseAddress!.copyMemory(from: raw, byteCount: Int(length)) }
        self.init(storage: storage, length: length)
    }

    /// A literal IP address and port; returns nil when `host` is not an IP literal.
    public init?(ipLiteral host: String, port: UInt16) {
        var storage = sockaddr_in6()
        let unbracketed = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, unbracketed, &v4) == 1 {
            withUnsafeMutableBytes(of: &storage) { raw in
                let sin = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self)
                sin.pointee.sin_family = sa_family_t(AF_INET)
                sin.pointee.sin_port = port.bigEndian
                sin.pointee.sin_addr = v4
            }
            self.init(storage: storage, length: socklen_t(MemoryLayout<sockaddr_in>.size))
        } else if inet_pton(AF_INET6, unbracketed, &v6) == 1 {
            withUnsafeMutableBytes(of: &storage) { raw in
                let sin6 = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self)
                sin6.pointee.sin6_family = sa_family_t(AF_INET6)
                sin6.pointee.sin6_port = port.bigEndian
                sin6.pointee.sin6_addr = v6
            }
            self.init(storage: storage, length: socklen_t(MemoryLayout<sockaddr_in6>.size))
        } else {
            return nil
        }
    }

    /// Splits `host:port` (`[v6]:port`, or `:port` for all interfaces) into its parts.
    public static func splitHostPort(_ text: String) throws(SocketError) -> (host: String, port: UInt16) {
        guard let colon = text.lastIndex(of: ":"),
              let port = UInt16(text[text.index(after: colon)...]) else {
            throw SocketError(.invalidAddress(text), operation: "parse")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") {
            guard host.hasSuffix("]") else { throw SocketError(.invalidAddress(text), operation: "parse") }
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            throw SocketError(.invalidAddress(text), operation: "parse")  // v6 needs brackets
        }
        return (host, port)
    }

    /// Parses `ip:port`; an empty host (`:8123`) means every IPv4 interface.
    public init(_ text: String) throws(SocketError) {
        let (host, port) = try Self.splitHostPort(text)
        guard let address = SocketAddress(ipLiteral: host.isEmpty ? "0.0.0.0" : host, port: port) else {
            throw SocketError(.invalidAddress(text), operation: "parse")
        }
        self = address
    }

    public var port: UInt16 {
        get {
            withUnsafeBytes(of: storage) { raw in
                family == AF_INET6
                    ? UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port)
                    : UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port)
            }
        }
        set {
            let isV6 = family == AF_INET6
            withUnsafeMutableBytes(of: &storage) { raw in
                if isV6 {
                    raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self).pointee.sin6_port = newValue.bigEndian
                } else {
                    raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self).pointee.sin_port = newValue.bigEndian
                }
            }
        }
    }

    /// The IP address as text, without the port.
    /// The IP address in network byte order: 4 bytes for IPv4, 16 for IPv6.
    public var ipBytes: [UInt8] {
        withUnsafeBytes(of: storage) { raw in
            if family == AF_INET6 { return withUnsafeBytes(of: raw.load(as: sockaddr_in6.self).sin6_addr) { Array($0) } }
            return withUnsafeBytes(of: raw.load(as: sockaddr_in.self).sin_addr) { Array($0) }
        }
    }

    public var host: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        withUnsafeBytes(of: storage) { raw in
            if family == AF_INET6 {
                var addr = raw.load(as: sockaddr_in6.self).sin6_addr
                _ = inet_ntop(AF_INET6, &addr, &buffer, socklen_t(buffer.count))
            } else {
                var addr = raw.load(as: sockaddr_in.self).sin_addr
                _ = inet_ntop(AF_INET, &addr, &buffer, socklen_t(buffer.count))
            }
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public var description: String {
        family == AF_INET6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafeBytes(of: storage) { raw in
            body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
    }

    public static func == (lhs: SocketAddress, rhs: SocketAddress) -> Bool {
        lhs.description == rhs.description
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(description)
    }
}
