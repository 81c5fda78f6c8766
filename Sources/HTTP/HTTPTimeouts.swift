/// How long a server connection may spend in each phase before it is ended. Every phase a peer
/// controls has one, so a silent or trickling socket cannot hold an fd for long.
public struct HTTPTimeouts: Sendable {
    /// From accept (including a TLS handshake), or from the first byte of a later request, until
    /// its head is complete; an upgrade (WebSocket) must also be answered within it. Crossing it
    /// answers 408 (or just closes if nothing arrived) and ends the connection.
    public var head: Duration = .seconds(10)
    /// Between requests on a kept-alive connection: closed silently after this.
    public var keepAliveIdle: Duration = .seconds(60)
    /// While a body moves: no request-body byte arriving (unless we paused it), or the response
    /// not being taken by the peer, for this long ends the exchange and the connection.
    public var bodyIdle: Duration = .seconds(60)

    public init() {}
}

/// Why a server connection was ended by one of its timeouts.
public enum HTTPTimeoutError: Error, Equatable, Sendable, CustomStringConvertible {
    case head, keepAliveIdle, bodyIdle

    public var description: String {
        switch self {
        case .head: "timed out reading the request head"
        case .keepAliveIdle: "keep-alive connection idle"
        case .bodyIdle: "body idle timeout"
        }
    }
}
