import HTTP
import Logging
import Reactor
import Tunnel

/// `-forward LISTEN=CLIENT/tcp/HOST:PORT`: a listener on the server whose every accepted
/// connection is dialled by CLIENT to HOST:PORT and spliced with it (`StreamRelay`,
/// back-pressure end to end). While CLIENT has no session, accepted connections are closed at
/// once (the requester sees a connection that ends without a byte), logged at most once a
/// second; a dial the client refuses closes the connection the same way.
public final class PortForward {
    public struct Spec: Equatable, Sendable, CustomStringConvertible {
        public let listen: SocketAddress
        public let clientKey: String
        public let target: TargetAddress

        /// `LISTEN=CLIENT/tcp/HOST:PORT`, LISTEN as `-listen` (`:port` for every interface).
        public init(parsing text: String) throws(ForwardSpecError) {
            let sides = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard sides.count == 2 else { throw ForwardSpecError(text, "want LISTEN=CLIENT/tcp/HOST:PORT") }
            guard let listen = try? SocketAddress(String(sides[0])) else { throw ForwardSpecError(text, "bad listen address \(sides[0])") }
            let parts = sides[1].split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, !parts[0].isEmpty else { throw ForwardSpecError(text, "want LISTEN=CLIENT/tcp/HOST:PORT") }
            guard parts[1] == "tcp" else { throw ForwardSpecError(text, "only tcp can be forwarded") }
            guard let target = TargetAddress(authority: String(parts[2])) else { throw ForwardSpecError(text, "bad target \(parts[2])") }
            self.listen = listen
            clientKey = String(parts[0])
            self.target = target
        }

        public var description: String { "\(listen)=\(clientKey)/tcp/\(target)" }
    }

    public let spec: Spec
    let server: RemoteDialerServer
    private var refusals = LogThrottle()
    var logger = Logger(label: "remotedialer.forward")

    public init(spec: Spec, server: RemoteDialerServer) {
        self.spec = spec
        self.server = server
    }

    /// Listens on the server's loop; with `limit`, its connections count against that cap (and
    /// it stops accepting at the cap) with every other way into the server.
    public func listen(options: ListenOptions = ListenOptions(), limit: ConnectionLimit? = nil) throws(SocketError) -> Listener {
        let listener = try server.loop.listen(on: spec.listen, options: options) { [self] connection in
            limit?.track(connection)
            accept(connection, limit: limit)
        }
        limit?.join(listener)
        return listener
    }

    private func accept(_ connection: Connection, limit: ConnectionLimit?) {
        guard server.canReach(clientKey: spec.clientKey) else { return refuse(connection, DialError(.noSession, "client \(spec.clientKey) is not connected")) }
        // On the loop of the client's session (the socket moves there first).
        let logger = logger, spec = spec
        server.dial(clientKey: spec.clientKey, address: spec.target.description, moving: connection) { result, connection in
            // A socket that moved left the count with its old Connection: count the new one.
            if let limit, connection.onClosed == nil { limit.track(connection) }
            switch result {
            case .success(let tunnelled):
                _ = StreamRelay(connection, tunnelled)
            case .failure(let error):
                // Rare (the session left between the check and the dial): not throttled.
                logger.warning("forward \(spec): closing a connection from \(connection.remoteAddress.map { "\($0)" } ?? "?"): \(error)")
                connection.close()
            }
        }
    }

    private func refuse(_ connection: Connection, _ error: DialError) {
        if let suppressed = refusals.admit(now: MonotonicClock.now()) {
            logger.warning("forward \(spec): closing a connection from \(connection.remoteAddress.map { "\($0)" } ?? "?"): \(error)\(suppressed > 0 ? " (\(suppressed) more suppressed)" : "")")
        }
        connection.close()
    }
}

/// A `-forward` value that does not parse.
public struct ForwardSpecError: Error, CustomStringConvertible {
    public let description: String
    init(_ text: String, _ reason: String) { description = "bad -forward \(text): \(reason)" }
}
