import Logging
import Reactor
import TLS
import Tunnel
import WebSocket

public struct ClientOptions: Sendable {
    public var tunnel = TunnelOptions()
    public var webSocket = WebSocketOptions()
    /// Reconnect backoff: doubles from `initialBackoff` up to `maxBackoff`, with ±20% jitter;
    /// back to the start once a session has stayed up for `stableAfter`.
    public var initialBackoff: Duration = .milliseconds(500)
    public var maxBackoff: Duration = .seconds(30)
    public var stableAfter: Duration = .seconds(10)
    public var handshakeTimeout: Duration = .seconds(30)
    /// TLS for `wss://` (nil: verify against the system roots).
    public var tls: TLSContext?
    public init() {}
}

/// The tunnel client: keeps one session to the server, dialing the server's Connects locally
/// (if the connect-authorizer allows), reconnecting with exponential backoff until stopped.
public final class RemoteDialerClient {
    public let loop: EventLoop
    public let url: WebSocketURL
    public let headers: [(String, String)]
    public let options: ClientOptions
    let connectAuthorizer: ConnectAuthorizer
    let dialer: LocalDialer?
    /// Runs on the loop each time a session is up.
    public var onConnect: ((TunnelSession) -> Void)?
    public private(set) var session: TunnelSession?
    var logger = Logger(label: "remotedialer.client")
    private var backoff: Duration
    private var connectedAt: UInt64 = 0
    private var retryTimer: TimerID?
    private var stopped = false

    public init(loop: EventLoop, url: WebSocketURL, headers: [(String, String)], options: ClientOptions = ClientOptions(),
                connectAuthorizer: @escaping ConnectAuthorizer = { _, _ in true }, dialer: LocalDialer? = nil) {
        self.loop = loop
        self.url = url
        self.headers = headers
        self.options = options
        self.connectAuthorizer = connectAuthorizer
        self.dialer = dialer
        backoff = options.initialBackoff
        if options.tunnel.traceMessages { logger.logLevel = .debug }
    }

    public func start() {
        loop.assertInLoop()
        attempt()
    }

    /// Stops reconnecting and ends the session (open connections get Error "EOF").
    public func stop() {
        loop.assertInLoop()
        stopped = true
        if let retryTimer { loop.cancelTimer(retryTimer) }
        session?.closeGracefully()
        session = nil
    }

    private func attempt() {
        guard !stopped else { return }
        logger.info("connecting to \(url)")
        WebSocketDialer.connect(to: url, headers: headers, on: loop, tls: options.tls, options: options.webSocket, timeout: options.handshakeTimeout) { [weak self] result in
            guard let self else { return }
            guard !stopped else {
                if case .success(let socket) = result { socket.abort(error: TunnelError.sessionClosed) }
                return
            }
            switch result {
            case .failure(let error):
                logger.error("failed to connect to \(url): \(error)")
                scheduleRetry()
            case .success(let socket):
                connected(socket)
            }
        }
    }

    private func connected(_ socket: WebSocketConnection) {
        let session = TunnelSession(transport: WebSocketTransport(socket: socket), role: .client,
                                    clientKey: headers.first { $0.0 == TunnelHeaders.clientID }?.1 ?? "",
                                    options: options.tunnel, connectAuthorizer: connectAuthorizer, dialer: dialer, logger: logger)
        connectedAt = MonotonicClock.now()
        session.onClose = { [weak self] error in
            guard let self else { return }
            logger.error("session to \(url) ended\(error.map { ": \($0)" } ?? "")")
            self.session = nil
            if MonotonicClock.now() &- connectedAt >= options.stableAfter.nanosecondsClamped { backoff = options.initialBackoff }
            scheduleRetry()
        }
        self.session = session
        logger.info("connected to \(url)")
        session.start()
        onConnect?(session)
    }

    private func scheduleRetry() {
        guard !stopped else { return }
        // Jitter never carries the wait past the cap, however often sessions die young.
        let delay = min(backoff * Double.random(in: 0.8...1.2), options.maxBackoff)
        backoff = min(backoff * 2, options.maxBackoff)
        logger.info("reconnecting in \(delay)")
        retryTimer = loop.scheduleTimer(after: delay) { [weak self] in self?.attempt() }
    }
}
