import Logging
import Reactor
import Tunnel
import WebSocket

/// This server's client session to one peer server (HA): retried every few seconds while down;
/// announces our sessions with AddClient/RemoveClient; honours the peer's forwarded Connects
/// (`<clientKey>::<proto>`) by dialing through our own client sessions.
final class PeerLink {
    /// The server owns its links; a link's callbacks may run after the server is gone.
    private weak var server: RemoteDialerServer?
    let loop: EventLoop
    let peerID: String
    let token: String
    let url: WebSocketURL
    private var session: TunnelSession?
    private var retryTimer: TimerID?
    private var stopped = false

    init(server: RemoteDialerServer, peerID: String, token: String, url: WebSocketURL) {
        self.server = server
        self.loop = server.loop
        self.peerID = peerID
        self.token = token
        self.url = url
    }

    func start() { attempt() }

    /// True while the link's session is up.
    var isConnected: Bool { session?.isOpen ?? false }
    /// Connections the peer opened through this link (its requests to our clients).
    var connectionCount: Int { session?.connectionCount ?? 0 }

    func stop() {
        stopped = true
        if let retryTimer { loop.cancelTimer(retryTimer) }
        session?.close()
        session = nil
    }

    func announce(_ client: RemoteClient, added: Bool) {
        guard let session, session.isOpen else { return }
        session.announce(client, added: added)
    }

    private func attempt() {
        guard !stopped, let server else { return }
        server.metrics.peer("attempt", peerID: peerID)
        let headers = [(TunnelHeaders.peerID, server.options.peerID), (TunnelHeaders.peerToken, token)]
        WebSocketDialer.connect(to: url, headers: headers, on: loop, tls: server.options.peerTLS, options: server.options.webSocket) { [weak self] result in
            guard let self, !stopped, let server = self.server else {
                if case .success(let socket) = result { socket.abort(error: TunnelError.sessionClosed) }
                return
            }
            switch result {
            case .failure(let error):
                server.logger.warning("peer \(peerID) at \(url): \(error); retrying")
                scheduleRetry()
            case .success(let socket):
                connected(socket)
            }
        }
    }

    private func connected(_ socket: WebSocketConnection) {
        guard let server else { return socket.abort(error: TunnelError.sessionClosed) }
        server.metrics.peer("connected", peerID: peerID)
        server.logger.info("peer \(peerID) at \(url) connected")
        let session = TunnelSession(transport: WebSocketTransport(socket: socket), role: .client, clientKey: peerID,
                                    options: server.options.tunnel, connectAuthorizer: { _, _ in true },
                                    dialer: forwardingDialer(), logger: server.logger)
        session.onClose = { [weak self] error in
            guard let self, let server = self.server else { return }
            server.metrics.peer("disconnected", peerID: peerID)
            server.logger.warning("peer \(peerID) link ended\(error.map { ": \($0)" } ?? "")")
            self.session = nil
            scheduleRetry()
        }
        self.session = session
        session.start()
        for (key, sessionKey) in server.announceableSessions {
            session.announce(RemoteClient(clientKey: key, sessionKey: sessionKey), added: true)
        }
    }

    private func scheduleRetry() {
        guard !stopped, let server else { return }
        let base = server.options.peerRetryInterval
        let jitter = base * Double.random(in: 0...0.2)
        retryTimer = loop.scheduleTimer(after: base + jitter) { [weak self] in self?.attempt() }
    }

    /// A peer's Connect arrives as `<clientKey>::<proto>/<address>`: dial it through our own
    /// client session for that key.
    private func forwardingDialer() -> LocalDialer {
        { [weak self] target, loop, completion in
            guard let self, let server = self.server else { return loop.runSoon { completion(.failure(TunnelError.sessionClosed)) } }
            guard let (clientKey, proto) = target.peerRoute else {
                return loop.runSoon { completion(.failure(DialError(.badTarget, "peer connect without a client key: \(target)"))) }
            }
            do {
                let connection = try server.sessions.dialLocal(clientKey: clientKey, proto: proto, address: target.address)
                loop.runSoon { completion(.success(connection)) }
            } catch {
                loop.runSoon { completion(.failure(error)) }
            }
        }
    }
}
