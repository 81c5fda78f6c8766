import Glibc

/// An error from the socket layer, carrying errno where the kernel gave one, so callers can both
/// match on the cause and print the same text as `strerror` (and Go's net package).
public struct SocketError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// A system call failed with this errno.
        case system(Int32)
        /// The connect timeout elapsed before the connection was established.
        case connectTimeout
        /// The write queue would exceed its hard limit.
        case writeQueueFull
        /// Name resolution failed (getaddrinfo's message).
        case resolution(String)
        /// The address text could not be parsed.
        case invalidAddress(String)
        /// The operation was attempted on a closed socket, or the loop shut down.
        case closed
    }

    public let kind: Kind
    /// The operation that failed, e.g. "connect" or "read".
    public let operation: String

    public init(_ kind: Kind, operation: String) {
        self.kind = kind
        self.operation = operation
    }

    static func errno(_ operation: String, _ code: Int32 = Glibc.errno) -> SocketError {
        SocketError(.system(code), operation: operation)
    }

    public var errnoCode: Int32? {
        if case .system(let code) = kind { return code }
        return nil
    }

    /// The cause alone, e.g. "connection refused" (lower-case like Go's syscall errors).
    public var reason: String {
        switch kind {
        case .system(let code):
            switch code {
            case ECONNREFUSED: return "connection refused"
            case ECONNRESET: return "connection reset by peer"
            case EPIPE: return "broken pipe"
            case ETIMEDOUT: return "connection timed out"
            case EHOSTUNREACH: return "no route to host"
            case ENETUNREACH: return "network is unreachable"
            case EADDRINUSE: return "address already in use"
            default: return String(cString: strerror(code))
            }
        case .connectTimeout: return "i/o timeout"
        case .writeQueueFull: return "write queue full"
        case .resolution(let message): return message
        case .invalidAddress(let text): return "invalid address \(text)"
        case .closed: return "use of closed network connection"
        }
    }

    /// "operation: reason", e.g. "connect: connection refused".
    public var description: String { "\(operation): \(reason)" }
}
