/// Why a tunnelled connection or a session ended; `description` is the text sent in Error
/// messages and shown to users, matching the Go implementation's where it has one.
public enum TunnelError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The session under the connection ended.
    case tunnelDisconnect
    /// The remote closed the connection with this error text (never "EOF", which is a clean end).
    case remote(String)
    /// Data for an id this session does not know.
    case connectionNotFound(clientKey: String, sessionKey: Int64, connID: Int64)
    /// The connect-authorizer refused a Connect.
    case connectNotAllowed
    /// The remote kept sending after Pause until the buffer cap.
    case inboundBufferExceeded(limit: Int)
    /// The session holds `maxConnections` already.
    case tooManyConnections(limit: Int)
    /// A text WebSocket message: the protocol only has binary ones.
    case wrongMessageType
    /// Neither ping nor pong for the idle timeout.
    case idleTimeout
    /// A message could not be decoded (Go's text for the same input).
    case decoding(TunnelDecodingError)
    /// The session was closed locally.
    case sessionClosed
    /// The remote's SyncConnections no longer lists the connection.
    case staleConnection
    /// The server's cap on bytes buffered by all sessions was crossed; this one held the most.
    case bufferCapExceeded(limit: Int)

    public var description: String {
        switch self {
        case .tunnelDisconnect: "tunnel disconnect"
        case .remote(let text): text
        case .connectionNotFound(let clientKey, let sessionKey, let connID): "connection not found \(clientKey)/\(sessionKey)/\(connID)"
        case .connectNotAllowed: "connect not allowed"
        case .inboundBufferExceeded(let limit): "remote ignored Pause: more than \(limit) bytes buffered"
        case .tooManyConnections(let limit): "too many connections on session (limit \(limit))"
        case .wrongMessageType: "wrong websocket message type"
        case .idleTimeout: "no ping or pong within the idle timeout"
        case .decoding(let error): error.description
        case .sessionClosed: "session closed"
        case .staleConnection: "connection not in the remote's sync list"
        case .bufferCapExceeded(let limit): "server buffer cap of \(limit) bytes exceeded"
        }
    }
}
