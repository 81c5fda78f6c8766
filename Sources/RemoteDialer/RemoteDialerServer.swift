import Glibc
import HTTP
import Logging
import Reactor
import TLS
import Tunnel
import WebSocket

public struct ServerOptions: Sendable {
    public var tunnel = TunnelOptions()
    public var webSocket = WebSocketOptions()
    /// This server's id and token when it links to peers (HA).
    public var peerID = ""
    public var peerToken = ""
    /// Period between attempts while a peer link is down (a random 0–20% is added).
    public var peerRetryInterval: Duration = .seconds(5)
    /// TLS for `wss://` peer links (nil: verify against the system roots).
    public var peerTLS: TLSContext?
    /// TLS for `https` targets of the `/client/...` route (nil: verify against the system roots).
    public var upstreamTLS: TLSContext?
    /// `/client/...` without `?timeout=`: how long the whole answer may take.
    public var defaultProxyTimeout: Duration = .seconds(15)
    /// The most a requester may ask for with `?timeout=`.
    public var maxProxyTimeout: Duration = .seconds(600)
    /// Sessions one client key may hold at once; one more is refused with 429.
    public var maxSessionsPerClient = 64
    /// Bytes buffered by all sessions together (WebSocket queues and connection rings); past it
    /// the sessions holding the most are closed first until the total is below again.
    public var maxBufferedBytes = 1 << 30
    /// How often that total is measured.
    public var bufferCheckInterval: Duration = .milliseconds(250)
    public init() {}
}

/// The tunnel server: authenticates WebSocket upgrades, keeps sessions by client key, dials
/// through them, and links to peer servers. One loop owns it all (no locks on the data path);
/// other threads reach it with `loop.execute`.
public final class RemoteDialerServer {
    public let loop: EventLoop
    public let options: ServerOptions
    public let sessions = SessionManager()
    /// Where this server listens, as reports show it (set by whoever binds the listener).
    public var listenAddress = ""
    let authorizer: Authorizer
    let metrics = ServerMetrics()
    var logger = Logger(label: "remotedialer.server")
    /// Configured peers by id: their tokens authenticate incoming peer sessions.
    private var peerTokens: [String: String] = [:]
    private var peerLinks: [String: PeerLink] = [:]
    /// Peers found in DNS (`PeerDiscovery`) share one token and may send any peer id.
    var discoveredPeerToken: String?
    let traffic = ClientTraffic()
    private lazy var sessionObserver = SessionMetricsObserver(metrics: metrics, traffic: traffic)
    /// Where each open session came from and since when, for the status reports.
    private(set) var sessionOrigins: [ObjectIdentifier: SessionOrigin] = [:]
    private var trafficSampleTimer: TimerID?
    /// Bandwidth limits: bytes per second each way for every client, and per client id.
    private var defaultClientRate: Int?
    private var clientRates: [String: Int] = [:]
    private var bandwidths: [String: ClientBandwidth] = [:]
    private var closing = false
    private var drainInProgress: ServerDrain?
    private var bufferCheckTimer: TimerID?
    /// Sessions closed because the server-wide buffer cap was crossed.
    public private(set) var sessionsClosedForMemory = 0

    public init(loop: EventLoop, options: ServerOptions = ServerOptions(), authorizer: @escaping Authorizer = TunnelHeaders.clientIDAuthorizer) {
        self.loop = loop
        self.options = options
        self.authorizer = authorizer
        if options.tunnel.traceMessages { logger.logLevel = .debug }
        sessions.onSessionAdded.append { [weak self] key, sessionKey in
            self?.announceToPeers(RemoteClient(clientKey: key, sessionKey: sessionKey), added: true)
        }
        sessions.onSessionRemoved.append { [weak self] key, sessionKey in
            self?.announceToPeers(RemoteClient(clientKey: key, sessionKey: sessionKey), added: false)
        }
    }

    // MARK: The connect path

    /// Serves a tunnel upgrade request: peer headers, else the application authorizer, whose
    /// answer may come later (the requester's head timeout bounds the wait).
    public func handleConnect(_ exchange: HTTPServerExchange) {
        loop.assertInLoop()
        guard !closing else { return exchange.respond(.serviceUnavailable, body: "server shutting down") }
        guard !isDraining else { return exchange.respond(.serviceUnavailable, body: "server draining\n") }
        let head = exchange.head
        // As Go: authentication first (so a stranger learns nothing else), then the handshake.
        if let id = head.headers[TunnelHeaders.peerID], let token = head.headers[TunnelHeaders.peerToken], !id.isEmpty, !token.isEmpty,
           let expected = peerTokens[id] ?? discoveredPeerToken, Secret.equals(token, expected) {
            return admit(exchange, clientKey: id, peer: true)
        }
        let request = TunnelUpgradeRequest(head: head, remoteAddress: exchange.remoteAddress,
                                           peerCertificate: (exchange.connectionStream as? TLSStream)?.peerCertificate)
        let pending = LoopBound((server: self, exchange: exchange), loop: loop)
        let loop = self.loop
        authorizer(request) { decision in
            let resume = { @Sendable in
                let (server, exchange) = pending.value
                // Timed out or hung up while the authorizer thought: nobody to answer.
                guard !exchange.ended else { return }
                switch decision {
                case .refuse(let status, let body): exchange.respond(status, body: body)
                case .accept(let clientKey): server.admit(exchange, clientKey: clientKey, peer: false)
                }
            }
            if loop.inEventLoop { resume() } else { loop.execute(resume) }
        }
    }

    private func admit(_ exchange: HTTPServerExchange, clientKey: String, peer: Bool) {
        guard !closing else { return exchange.respond(.serviceUnavailable, body: "server shutting down") }
        let response: HTTPResponseHead
        switch WebSocketHandshake.validate(request: exchange.head) {
        case .failure(let refusal): return exchange.respond(refusal.status, body: refusal.body)
        case .success(let accepted): response = accepted
        }
        guard sessions.sessionCount(clientKey: clientKey, peer: peer) < options.maxSessionsPerClient else {
            return exchange.respond(HTTPStatus(429), body: "too many sessions for client \(clientKey) (limit \(options.maxSessionsPerClient))\n")
        }
        guard let stream = exchange.upgrade(response) else { return }
        let socket = WebSocketConnection(stream: stream, role: .server, options: options.webSocket)
        // Only peer servers may tell us which clients they reach; only clients have bandwidth limits.
        var tunnelOptions = options.tunnel
        let transport: any TunnelTransport
        if peer {
            transport = WebSocketTransport(socket: socket)
        } else {
            tunnelOptions.maxAnnouncedClients = 0
            transport = ThrottledTransport(WebSocketTransport(socket: socket), bandwidth: bandwidth(for: clientKey))
        }
        let session = TunnelSession(transport: transport, role: .server, clientKey: clientKey,
                                    options: tunnelOptions, logger: logger)
        session.observer = sessionObserver
        let sessionKey = session.sessionKey
        let origin = SessionOrigin(remoteAddress: exchange.remoteAddress.map { "\($0)" } ?? "", connectedAt: Int(time(nil)))
        sessionOrigins[ObjectIdentifier(session)] = origin
        // Fields for structured logs (-log-format json).
        let fields: Logger.Metadata = [peer ? "peer" : "client": "\(clientKey)", "session": "\(sessionKey)", "remoteAddress": "\(origin.remoteAddress)"]
        session.onClose = { [weak self, weak session] error in
            guard let self, let session else { return }
            sessionOrigins[ObjectIdentifier(session)] = nil
            logger.info("session \(clientKey)/\(sessionKey) ended\(error.map { ": \($0)" } ?? "")", metadata: fields)
            sessions.remove(session, peer: peer)
            if !peer && !sessions.hasSession(clientKey: clientKey) { bandwidths[clientKey] = nil }
            metrics.sessionRemoved(clientKey: clientKey, peer: peer)
        }
        startPeriodicChecks()
        logger.info("\(peer ? "peer" : "client") session \(clientKey)/\(session.sessionKey) connected", metadata: fields)
        sessions.add(session, peer: peer)
        metrics.sessionAdded(clientKey: clientKey, peer: peer)
        session.start()
    }

    // MARK: Bandwidth

    /// Limits every client to `defaultRate` bytes a second each way, and the ids in `perClient`
    /// to theirs (nil, or absent: unlimited). Applies at once to connected clients too.
    public func setBandwidthLimits(defaultRate: Int?, perClient: [String: Int]) {
        loop.assertInLoop()
        defaultClientRate = defaultRate
        clientRates = perClient
        for (clientKey, bandwidth) in bandwidths { bandwidth.setRate(rate(for: clientKey)) }
    }

    /// Bytes per second each way client `clientKey` may move; nil: unlimited.
    public func rate(for clientKey: String) -> Int? { clientRates[clientKey] ?? defaultClientRate }

    private func bandwidth(for clientKey: String) -> ClientBandwidth {
        if let bandwidth = bandwidths[clientKey] { return bandwidth }
        let bandwidth = ClientBandwidth(loop: loop, rate: rate(for: clientKey))
        bandwidths[clientKey] = bandwidth
        return bandwidth
    }

    // MARK: Memory

    /// The buffer cap's measurements, and the per-client traffic samples (once a second).
    private func startPeriodicChecks() {
        guard bufferCheckTimer == nil else { return }
        let interval = options.bufferCheckInterval
        bufferCheckTimer = loop.scheduleTimer(after: interval, repeating: interval) { [weak self] in self?.enforceBufferCap() }
        trafficSampleTimer = loop.scheduleTimer(after: .seconds(1), repeating: .seconds(1)) { [weak self] in
            guard let self else { return }
            traffic.sample(connected: Set(sessions.clientKeys))
        }
    }

    /// Redis's client-output-buffer-limit, server-wide: when all sessions together hold more
    /// than the cap, close the largest holders first until the total is back under it.
    func enforceBufferCap() {
        let all = sessions.everySession.map { ($0, $0.bufferedBytes) }
        var total = all.reduce(0) { $0 + $1.1 }
        guard total > options.maxBufferedBytes else { return }
        for (session, bytes) in all.sorted(by: { $0.1 > $1.1 }) where total > options.maxBufferedBytes {
            logger.warning("closing session \(session.clientKey)/\(session.sessionKey): holds \(bytes) bytes; all sessions hold \(total), cap \(options.maxBufferedBytes)")
            sessionsClosedForMemory += 1
            session.close(error: TunnelError.bufferCapExceeded(limit: options.maxBufferedBytes))
            total -= bytes
        }
    }

    // MARK: Dialing

    /// A connection to `address`, dialled by client `clientKey` (directly or through a peer).
    public func dial(clientKey: String, proto: String = "tcp", address: String) throws(DialError) -> TunnelConnection {
        loop.assertInLoop()
        return try sessions.dial(clientKey: clientKey, proto: proto, address: address)
    }

    public func hasSession(clientKey: String) -> Bool { sessions.hasSession(clientKey: clientKey) }
    /// A dial through `clientKey` has a session to go through (ours or a peer's).
    public func canReach(clientKey: String) -> Bool { sessions.canReach(clientKey: clientKey) }

    /// Closes the client sessions (not peers) whose key `revoked` picks, e.g. after a token was
    /// removed from the server's list; their connections end with "tunnel disconnect".
    public func closeClientSessions(where revoked: (String) -> Bool) {
        loop.assertInLoop()
        for session in sessions.clients.values.joined() where revoked(session.clientKey) {
            logger.info("closing session \(session.clientKey)/\(session.sessionKey): credential revoked")
            session.close(error: TunnelError.sessionClosed)
        }
    }
    public func listClients() -> [String] { sessions.clientKeys }

    /// Closes every session of client `clientKey` (the admin API's DELETE); it reconnects
    /// unless its credential was revoked. Returns how many were closed.
    @discardableResult
    public func disconnectClient(_ clientKey: String) -> Int {
        loop.assertInLoop()
        let closing = sessions.clients[clientKey] ?? []
        for session in closing {
            logger.info("closing session \(clientKey)/\(session.sessionKey): disconnected by an operator",
                        metadata: ["client": "\(clientKey)", "session": "\(session.sessionKey)"])
            session.close(error: TunnelError.sessionClosed)
        }
        return closing.count
    }

    // MARK: Peers

    /// Links to peer `id` at `url` (its connect path); both sides must list each other with the
    /// same token.
    public func addPeer(id: String, token: String, url: String) throws(DialError) {
        loop.assertInLoop()
        let parsed = try WebSocketURL(url)
        peerTokens[id] = token
        peerLinks[id]?.stop()
        let link = PeerLink(server: self, peerID: id, token: token, url: parsed)
        peerLinks[id] = link
        link.start()
    }

    /// The ids of the peers this server links to.
    public var peerIDs: [String] { peerLinks.keys.sorted() }

    public func removePeer(id: String) {
        loop.assertInLoop()
        peerTokens[id] = nil
        peerLinks.removeValue(forKey: id)?.stop()
    }

    /// The configured peers, by id.
    var peerLinksByID: [String: PeerLink] { peerLinks }

    private func announceToPeers(_ client: RemoteClient, added: Bool) {
        for link in peerLinks.values { link.announce(client, added: added) }
    }

    /// Every session we hold, for a new peer link to announce.
    var announceableSessions: [(String, Int64)] { sessions.allSessions }

    // MARK: Drain and shutdown

    /// True from `drain` on: `/healthz` says so, new sessions and new proxied requests get 503.
    public var isDraining: Bool { drainInProgress != nil }

    /// Tunnelled connections open on all sessions and peer links (proxied requests, and peers'
    /// requests to our clients, which are open on both a link and a client session).
    public var openTunnelledConnections: Int {
        sessions.everySession.reduce(0) { $0 + $1.connectionCount } + peerLinks.values.reduce(0) { $0 + $1.connectionCount }
    }

    /// Starts a graceful drain: new sessions and new `/client/...` requests are refused (503);
    /// tunnelled connections continue until none is left (nor any work `alsoWaitFor` reports,
    /// e.g. responses still flushing to requesters) or `timeout` passes; then `shutdown()` ends
    /// what remains with Error "EOF" and `completion` runs. A second call does nothing.
    public func drain(timeout: Duration, alsoWaitFor otherWork: @escaping () -> Bool = { false }, completion: @escaping () -> Void) {
        loop.assertInLoop()
        guard !closing, drainInProgress == nil else { return }
        logger.info("draining: \(openTunnelledConnections) tunnelled connections open, at most \(timeout)")
        drainInProgress = ServerDrain(loop: loop, timeout: timeout, isBusy: { [weak self] in
            guard let self else { return false }
            return openTunnelledConnections > 0 || otherWork()
        }, finish: { [weak self] in
            guard let self else { return }
            let left = openTunnelledConnections
            logger.info("drain over\(left > 0 ? ": ending \(left) tunnelled connections" : "")")
            shutdown()
            completion()
        })
    }

    /// Ends a drain at once (an operator's second SIGTERM): `shutdown()`, then its completion.
    public func finishDrain() {
        loop.assertInLoop()
        drainInProgress?.finishNow()
    }

    /// Refuses new sessions, ends every connection with Error "EOF", closes sessions (peers
    /// hear each one removed while the links are still up), then the links.
    public func shutdown() {
        loop.assertInLoop()
        closing = true
        drainInProgress?.cancel()
        for timer in [bufferCheckTimer, trafficSampleTimer].compactMap({ $0 }) { loop.cancelTimer(timer) }
        bufferCheckTimer = nil
        trafficSampleTimer = nil
        for session in sessions.everySession {
            session.closeGracefully()
        }
        for link in peerLinks.values { link.stop() }
        peerLinks.removeAll()
    }
}
