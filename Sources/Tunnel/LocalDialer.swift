import Reactor

/// Decides whether a Connect from the remote may be dialled: `(proto, address) -> allowed`.
public typealias ConnectAuthorizer = (_ proto: String, _ address: String) -> Bool

/// Dials a Connect's target on the session's loop and hands back an unstarted stream (or the
/// error whose text goes back to the remote). A server's peer sessions plug in a dialer that
/// goes through another session instead of TCP.
public typealias LocalDialer = (_ target: ConnectTarget, _ loop: EventLoop,
                                _ completion: @escaping (Result<any ByteStream, any Error>) -> Void) -> Void

/// Why a dial failed: `kind` for code that decides what to do, `description` the Go dialer's
/// text (e.g. "dial tcp 127.0.0.1:1: connect: connection refused"), which goes back to the
/// remote and into responses.
public struct DialError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Equatable, Sendable {
        /// No session of the client, here or at a peer.
        case noSession
        /// The client's session refused the dial (too many connections, closing).
        case session(TunnelError)
        /// The target cannot be dialled as written: its network, address or port.
        case badTarget
        /// The connect itself failed (refused, unreachable, timed out, name not resolved).
        case connect(SocketError)
        /// A dialer of the embedding program's own failed.
        case other
    }

    public let kind: Kind
    public let description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }

    /// A custom dialer's failure (`kind` is `.other`).
    public init(_ description: String) { self.init(.other, description) }
}

/// The default dialer: TCP to `host:port` through the reactor, with the session's timeout and
/// socket buffers tied to the flow-control thresholds (so a full socket means Pause).
public enum TCPDialer {
    public static func make(options: TunnelOptions) -> LocalDialer {
        var connectOptions = ConnectOptions()
        connectOptions.timeout = options.dialTimeout
        connectOptions.connection.writeHighWatermark = options.pauseThreshold
        connectOptions.connection.writeLowWatermark = options.resumeThreshold
        connectOptions.connection.writeQueueLimit = options.maxBufferedInbound
        return { target, loop, completion in
            let prefix = "dial \(target.proto) \(target.address)"
            guard ["tcp", "tcp4", "tcp6"].contains(target.proto) else {
                return loop.runSoon { completion(.failure(DialError(.badTarget, "\(prefix): unknown network \(target.proto)"))) }
            }
            let (host, port): (String, UInt16)
            switch splitHostPort(target.address) {
            case .success(let parts): (host, port) = parts
            case .failure(let error): return loop.runSoon { completion(.failure(DialError(.badTarget, "\(prefix): \(error.description)"))) }
            }
            loop.connect(host: host, port: port, options: connectOptions) { result in
                completion(result.map { $0 as any ByteStream }.mapError { DialError(.connect($0), "\(prefix): \($0)") })
            }
        }
    }

    /// Go's net.SplitHostPort rules for the cases a tunnel sees: "host:port", "[v6]:port".
    static func splitHostPort(_ address: String) -> Result<(String, UInt16), DialError> {
        guard let colon = address.lastIndex(of: ":") else {
            return .failure(DialError(.badTarget, "address \(address): missing port in address"))
        }
        var host = String(address[..<colon])
        let portText = address[address.index(after: colon)...]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard let port = UInt16(portText) else {
            return .failure(DialError(.badTarget, "address \(address): invalid port"))
        }
        return .success((host.isEmpty ? "127.0.0.1" : host, port))
    }
}
