import Glibc
import Reactor

/// Accepts connections on one loop and serves each with an `HTTPServerConnection`, at most
/// `maxConnections` at once (its own, or a `ConnectionLimit` shared with other loops' servers):
/// at the limit the listener stops accepting (new connections wait in the kernel's backlog) and
/// resumes as connections close. Upgraded connections count until their socket closes.
public final class HTTPServer: AcceptingMember {
    public let loop: EventLoop
    public let limits: HTTPLimits
    public let timeouts: HTTPTimeouts
    public let maxConnections: Int
    private let limit: ConnectionLimit
    private var listeners: [Listener] = []
    private let respond: HTTPServerConnection.Responder
    /// Sockets accepted and not yet closed.
    public private(set) var openConnections = 0
    /// Sockets accepted by this server's listeners since it started (not those adopted).
    public private(set) var acceptedConnections = 0
    /// Their HTTP handlers, by socket, until the socket closes or is upgraded: an upgraded
    /// socket's new owner holds it, and keeping its spent handler cost every WebSocket session
    /// about 0.45 KiB.
    private var handlers: [ObjectIdentifier: HTTPServerConnection] = [:]
    /// False once `stopKeepingAlive()`: every connection closes after its response.
    public private(set) var keepsAlive = true

    /// Wraps each accepted connection before HTTP runs on it (TLS, for HTTPS); nil drops it.
    public var wrapAccepted: ((Connection) -> (any ByteStream)?)?
    /// Sees each accepted socket first; true if it took the socket elsewhere (e.g. moved it to
    /// another loop's server, which serves it with `serveAccepted`), false to serve it here.
    public var handOffAccepted: ((Connection) -> Bool)?

    public init(loop: EventLoop, limits: HTTPLimits = HTTPLimits(), timeouts: HTTPTimeouts = HTTPTimeouts(),
                maxConnections: Int = HTTPServer.defaultMaxConnections, sharing limit: ConnectionLimit? = nil,
                respond: @escaping HTTPServerConnection.Responder) {
        self.loop = loop
        self.limits = limits
        self.timeouts = timeouts
        self.limit = limit ?? ConnectionLimit(maximum: maxConnections)
        self.maxConnections = self.limit.maximum
        self.respond = respond
        self.limit.join(self)
    }

    /// Sized from the process's fd limit, keeping a quarter (at least 64) for everything else a
    /// server opens: tunnelled targets, peer links, files.
    public static var defaultMaxConnections: Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { return 10_000 }
        let files = Int(clamping: limit.rlim_cur)
        return max(files - max(files / 4, 64), 16)
    }

    /// Starts listening; returns the bound address (port 0 picks a free one).
    @discardableResult
    public func listen(on address: SocketAddress, options: ListenOptions = ListenOptions()) throws(SocketError) -> SocketAddress {
        loop.assertInLoop()
        // The listener keeps the server alive while it listens (callers may drop their reference).
        let listener = try loop.listen(on: address, options: options) { connection in self.accept(connection) }
        listeners.append(listener)
        return listener.address
    }

    private func accept(_ connection: Connection) {
        acceptedConnections += 1
        if let handOffAccepted, handOffAccepted(connection) { return }
        serveAccepted(connection)
    }

    /// Serves a socket accepted elsewhere (see `handOffAccepted`) as if accepted here.
    public func serveAccepted(_ connection: Connection) {
        loop.assertInLoop()
        guard let stream: any ByteStream = wrapAccepted.map({ $0(connection) }) ?? connection else { return connection.close() }
        serve(connection, over: stream).start()
    }

    /// Serves a request whose socket moved here from another loop's server, with its head as
    /// parsed there (`HTTPServerExchange.move`); counts against this server's connections.
    public func adopt(_ stream: any MigratableStream, head: HTTPRequestHead) {
        loop.assertInLoop()
        guard let socket = stream.socket else { return stream.close() }
        serve(socket, over: stream).start(resuming: head)
    }

    private func serve(_ connection: Connection, over stream: any ByteStream) -> HTTPServerConnection {
        openConnections += 1
        let socket = ObjectIdentifier(connection)
        connection.onClosed = { [weak self] in self?.connectionDidClose(socket) }
        limit.opened()
        let handler = HTTPServerConnection(stream: stream, remoteAddress: connection.remoteAddress, limits: limits, timeouts: timeouts,
                                           respond: respond)
        if !keepsAlive { handler.stopKeepingAlive() }
        handler.onUpgraded = { [weak self] in self?.handlers[socket] = nil }
        handlers[socket] = handler
        return handler
    }

    private func connectionDidClose(_ socket: ObjectIdentifier) {
        handlers[socket] = nil
        openConnections -= 1
        limit.closed()
    }

    /// The shared limit was reached (true) or left (false).
    public func setAcceptingPaused(_ paused: Bool) {
        for listener in listeners where listener.isAcceptingPaused != paused {
            if paused { listener.pauseAccepting() } else { listener.resumeAccepting() }
        }
    }

    /// True while accepting is held off at the connection limit.
    public var isAcceptingPaused: Bool { listeners.contains { $0.isAcceptingPaused } }

    /// Connections still speaking HTTP: requests in progress, responses flushing, idle
    /// kept-alive ones (upgraded connections are not counted).
    public var servingConnections: Int { handlers.values.reduce(0) { $0 + ($1.isServingHTTP ? 1 : 0) } }

    /// For a drain: kept-alive connections close now, the others after their response, and
    /// new ones after their first.
    public func stopKeepingAlive() {
        loop.assertInLoop()
        keepsAlive = false
        for handler in handlers.values { handler.stopKeepingAlive() }
    }

    public func close() {
        for listener in listeners { listener.close() }
        listeners.removeAll()
        limit.leave(self)
    }
}
