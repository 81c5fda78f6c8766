import Reactor

/// Where a client is asked to dial, as the Go dialer writes it: `host:port`, `[v6]:port`.
/// The host may be a name; the client resolves it on its side.
public struct TargetAddress: Equatable, Sendable, CustomStringConvertible {
    public let host: String
    public let port: UInt16

    /// A host of at most 255 bytes (a DNS name's limit, SOCKS5's too) with no spaces,
    /// controls, slashes or brackets, and a port other than 0.
    public init?(host: String, port: UInt16) {
        guard !host.isEmpty, host.utf8.count <= 255, port != 0,
              host.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "[") && $0 != UInt8(ascii: "]") })
        else { return nil }
        self.host = host
        self.port = port
    }

    /// `host:port` or `[v6]:port` (an HTTP CONNECT target, a `-forward` target).
    public init?(authority: String) {
        guard let (host, port) = try? SocketAddress.splitHostPort(authority) else { return nil }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
