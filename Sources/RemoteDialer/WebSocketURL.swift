import Tunnel
/// A `ws://` or `wss://` URL split into what a connection needs.
public struct WebSocketURL: Sendable, CustomStringConvertible {
    public var secure: Bool
    public var host: String
    public var port: UInt16
    /// Path and query, at least "/".
    public var path: String

    public init(_ text: String) throws(ConfigurationError) {
        let rest: Substring
        if text.hasPrefix("ws://") { secure = false; rest = text.dropFirst(5) }
        else if text.hasPrefix("wss://") { secure = true; rest = text.dropFirst(6) }
        else { throw ConfigurationError("malformed ws or wss URL \(text)") }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        path = slash == rest.endIndex ? "/" : String(rest[slash...])
        guard !authority.isEmpty else { throw ConfigurationError("malformed ws or wss URL \(text)") }
        let defaultPort: UInt16 = secure ? 443 : 80
        if authority.hasPrefix("[") {  // [v6]:port
            guard let close = authority.firstIndex(of: "]") else { throw ConfigurationError("malformed ws or wss URL \(text)") }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            guard after.isEmpty || after.hasPrefix(":"), let port = after.isEmpty ? defaultPort : UInt16(after.dropFirst()) else {
                throw ConfigurationError("malformed ws or wss URL \(text)")
            }
            self.port = port
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let port = UInt16(authority[authority.index(after: colon)...]) else { throw ConfigurationError("malformed ws or wss URL \(text)") }
            self.port = port
        } else {
            host = String(authority)
            port = defaultPort
        }
    }

    /// The Host header value.
    public var hostHeader: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return port == (secure ? 443 : 80) ? shownHost : "\(shownHost):\(port)"
    }

    public var description: String { "\(secure ? "wss" : "ws")://\(hostHeader)\(path)" }
}
