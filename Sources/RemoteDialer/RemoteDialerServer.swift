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
    /// Target addresses counted apart per client in the connection metrics; past it they share
    /// `addr="other"` (each address is a series kept while the client is connected).
    public var maxMetricTargetsPerClient = 64
    /// `/client/...` upstream keep-alive (`http` targets): idle tunnelled connections kept per
    /// target (client key, host; each bound to its session) for the next request to the same
    /// target, per loop. 0 turns pooling off: every request dials a new connection and sends
    /// `Connection: close`, as before pooling. Requests for one client are served on its
    /// session's loop, so this bounds how many concurrent requesters to one target keep their
    /// connections between requests: at 32, 64 keep-alive requesters had about a fifth of their
    /// requests dial anew.
    public var upstreamIdlePerTarget = 128
    /// Idle upstream connections kept on one loop for all targets together; at the cap, the
    /// oldest idle one is closed to make room.
    public var upstreamIdleTotal = 1024
    /// How long an upstream connection may wait idle before it is closed: shorter than the usual
    /// server keep-alive timeouts (60 s and more), so we close first and a reused connection is
    /// rarely one the target is closing at that moment.
    public var upstreamIdleTimeout: Duration = .seconds(30)
    public init() {}
}

/// The tunnel server on one loop: authenticates WebSocket upgrades, keeps the sessions it
/// accepted by client key, dials through them, and links to peer servers. Its loop owns it all
/// (no locks on the data path); other threads reach it with `loop.execute`. On several loops
/// (`RemoteDialerServerGroup`) there is one per loop, sharing only a `SessionDirectory`: a dial
/// for a session on another loop is served there (`route(clientKey:)`).
public final class RemoteDialerServer {
    public let loop: EventLoop
    public let options: ServerOptions
    /// The sessions this loop accepted.
    public let sessions = SessionManager()
    /// Where every session of the group is (shared by its loops; this server's own when alone).
    public let directory: SessionDirectory
    /// This server's loop in its group (0 when alone).
    public let loopIndex: Int
    /// The group's servers by loop index; nil when alone.
    let members: ServerMembers?
    /// Serves requests whose socket moved here from another loop (`movedToSessionLoop`).
    public var httpServer: HTTPServer?
    /// Requesters whose socket this loop handed to the loop of their client's session.
    public private(set) var requestsMoved = 0
    /// Where this server listens, as reports show it (set by whoever binds the listener).
    public var listenAddress = ""
    let authorizer: Authorizer
    let metrics: ServerMetrics
    var logger = Logger(label: "remotedialer.server")
    /// Configured peers by id: their tokens authenticate incoming peer sessions.
    private var peerTokens: [String: String] = [:]
    private var peerLinks: [String: PeerLink] = [:]
    /// Peers found in DNS (`PeerDiscovery`) share one token and may send any peer id.
    private(set) var discoveredPeerToken: String?
    /// Client keys each peer session announced, as entered in the directory.
    private var peerRoutes: [ObjectIdentifier: Set<String>] = [:]
    let traffic = ClientTraffic()
    /// Where each open session came from and since when, for the status reports.
    private(set) var sessionOrigins: [ObjectIdentifier: SessionOrigin] = [:]
    private var sessionObservers: [ObjectIdentifier: SessionMetricsObserver] = [:]
    private var trafficSampleTimer: TimerID?
    /// Bandwidth limits: bytes per second each way for every client, and per client id.
    private var defaultClientRate: Int?
    private var clientRates: [String: Int] = [:]
    private var bandwidths: [String: ClientBandwidth] = [:]
    private var closing = false
    private var drainInProgress: ServerDrain?
    private var bufferCheckTimer: TimerID?
    /// Ends this loop's silent sessions (one timer for all of them, not one each).
    private var idleCheckTimer: TimerID?
    /// Sessions closed because the server-wide buffer cap was crossed.
    public private(set) var sessionsClosedForMemory = 0
    /// Kept-alive upstream connections of the `/client/...` route.
    let upstreamPool: UpstreamPool
    /// Idle upstream connections this loop holds for `/client/...` requests to come.
    public var idleUpstreamConnections: Int { upstreamPool.count }
    /// `/client/...` requests that reused an idle upstream connection instead of dialling.
    public var upstreamConnectionsReused: Int { upstreamPool.reused }

    public convenience init(loop: EventLoop, options: ServerOptions = ServerOptions(), authorizer: @escaping Authorizer = TunnelHeaders.clientIDAuthorizer) {
        self.init(loop: loop, index: 0, directory: SessionDirectory(), members: nil, options: options, authorizer: authorizer)
    }

    init(loop: EventLoop, index: Int, directory: SessionDirectory, members: ServerMembers?, options: ServerOptions, authorizer: @escaping Authorizer) {
        self.loop = loop
        self.loopIndex = index
        self.directory = directory
        self.members = members
        self.options = options
        self.authorizer = authorizer
        self.metrics = ServerMetrics(maxTargetsPerClient: options.maxMetricTargetsPerClient)
        upstreamPool = UpstreamPool(loop: loop, maxIdlePerTarget: options.upstreamIdlePerTarget,
                                    maxIdleTotal: options.upstreamIdleTotal, idleTimeout: options.upstreamIdleTimeout)
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
                                           peerCertificate: (exchange.stream as? TLSStream)?.peerCertificate)
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
        // A client's cap counts its sessions on every loop: checked and taken in one step in the
        // directory, so connects racing on two loops cannot both pass it.
        let admitted = peer ? sessions.sessionCount(clientKey: clientKey, peer: true) < options.maxSessionsPerClient
                            : directory.addClient(clientKey, loop: loopIndex, maximum: options.maxSessionsPerClient)
        guard admitted else {
            return exchange.respond(HTTPStatus(429), body: "too many sessions for client \(clientKey) (limit \(options.maxSessionsPerClient))\n")
        }
        guard let stream = exchange.upgrade(response) else {
            if !peer { directory.removeClient(clientKey, loop: loopIndex) }
            return
        }
        let socket = WebSocketConnection(stream: stream, role: .server, options: options.webSocket)
        // Only peer servers may tell us which clients they reach; only clients have bandwidth limits.
        var tunnelOptions = options.tunnel
        tunnelOptions.ownerChecksIdle = true  // `idleCheckTimer`
        let transport: any TunnelTransport
        if peer {
            transport = WebSocketTransport(socket: socket)
        } else {
            tunnelOptions.maxAnnouncedClients = 0
            transport = ThrottledTransport(WebSocketTransport(socket: socket), bandwidth: bandwidth(for: clientKey))
        }
        let session = TunnelSession(transport: transport, role: .server, clientKey: clientKey,
                                    options: tunnelOptions, logger: logger)
        let sessionKey = session.sessionKey
        let origin = SessionOrigin(remoteAddress: exchange.remoteAddress.map { "\($0)" } ?? "", connectedAt: Int(time(nil)))
        sessionOrigins[ObjectIdentifier(session)] = origin
        if peer {
            session.onRemoteClientsChanged = { [weak self, weak session] client, _ in
                guard let self, let session else { return }
                updatePeerRoute(session, client.clientKey)
            }
        }
        session.onClose = { [weak self, weak session] error in
            guard let self, let session else { return }
            sessionOrigins[ObjectIdentifier(session)] = nil
            sessionObservers[ObjectIdentifier(session)] = nil
            if peer {
                for key in peerRoutes.removeValue(forKey: ObjectIdentifier(session)) ?? [] { directory.removePeerRoute(key, loop: loopIndex) }
            } else {
                directory.removeClient(clientKey, loop: loopIndex)
            }
            logger.info("session \(clientKey)/\(sessionKey) ended\(error.map { ": \($0)" } ?? "")",
                        metadata: sessionFields(clientKey, sessionKey, peer: peer, remoteAddress: origin.remoteAddress))
            sessions.remove(session, peer: peer)
            if !peer && !sessions.hasSession(clientKey: clientKey) { bandwidths[clientKey] = nil }
            // Peer ids are configured, so bounded: their series stay.
            metrics.sessionRemoved(clientKey: clientKey, peer: peer, lastAnywhere: !peer && !directory.hasSession(clientKey: clientKey))
        }
        startPeriodicChecks()
        logger.info("\(peer ? "peer" : "client") session \(clientKey)/\(session.sessionKey) connected",
                    metadata: sessionFields(clientKey, sessionKey, peer: peer, remoteAddress: origin.remoteAddress))
        sessions.add(session, peer: peer)
        let observer = SessionMetricsObserver(series: metrics.sessionAdded(clientKey: clientKey, peer: peer), traffic: traffic)
        sessionObservers[ObjectIdentifier(session)] = observer  // `session.observer` is weak
        session.observer = observer
        session.start()
    }

    /// A session's fields for structured logs (-log-format json), built per line: kept with
    /// each session they would cost every idle one ~0.6 KiB.
    private func sessionFields(_ clientKey: String, _ sessionKey: Int64, peer: Bool, remoteAddress: String) -> Logger.Metadata {
        [peer ? "peer" : "client": "\(clientKey)", "session": "\(sessionKey)", "remoteAddress": "\(remoteAddress)", "loop": "\(loopIndex)"]
    }

    // MARK: Bandwidth

    /// Limits every client to `defaultRate` bytes a second each way, and the ids in `perClient`
    /// to theirs (nil, or absent: unlimited). Applies at once to connected clients too.
    public func setBandwidthLimits(defaultRate: Int?, perClient: [String: Int]) {
        loop.assertInLoop()
        everywhere { $0.setBandwidthLimitsHere(defaultRate: defaultRate, perClient: perClient) }
    }

    private func setBandwidthLimitsHere(defaultRate: Int?, perClient: [String: Int]) {
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

    /// The buffer cap's measurements, the per-client traffic samples (once a second) and the
    /// sessions' idle check.
    private func startPeriodicChecks() {
        guard bufferCheckTimer == nil else { return }
        let interval = options.bufferCheckInterval
        bufferCheckTimer = loop.scheduleTimer(after: interval, repeating: interval) { [weak self] in self?.enforceBufferCap() }
        trafficSampleTimer = loop.scheduleTimer(after: .seconds(1), repeating: .seconds(1)) { [weak self] in
            guard let self else { return }
            traffic.sample(connected: Set(sessions.clientKeys))
        }
        let idleCheck = options.tunnel.idleCheckInterval
        idleCheckTimer = loop.scheduleTimer(after: idleCheck, repeating: idleCheck) { [weak self] in
            // A copy: a session that ends leaves the table at once.
            for session in self?.sessions.everySession ?? [] { session.closeIfIdle() }
        }
    }

    /// Redis's client-output-buffer-limit, server-wide: when all sessions together hold more
    /// than the cap, close the largest holders first until the total is back under it. On a
    /// group each loop keeps its equal share of the cap (no cross-thread sums on a timer).
    func enforceBufferCap() {
        let cap = options.maxBufferedBytes / (members?.all.count ?? 1)
        let all = sessions.everySession.map { ($0, $0.bufferedBytes) }
        var total = all.reduce(0) { $0 + $1.1 }
        guard total > cap else { return }
        for (session, bytes) in all.sorted(by: { $0.1 > $1.1 }) where total > cap {
            logger.warning("closing session \(session.clientKey)/\(session.sessionKey): holds \(bytes) bytes; this loop's sessions hold \(total), cap \(cap)")
            sessionsClosedForMemory += 1
            session.close(error: TunnelError.bufferCapExceeded(limit: cap))
            total -= bytes
        }
    }

    /// Keeps the directory's peer routes in step with what `session` announced for `clientKey`.
    private func updatePeerRoute(_ session: TunnelSession, _ clientKey: String) {
        let reaches = session.canReach(clientKey: clientKey)
        let id = ObjectIdentifier(session)
        guard reaches != (peerRoutes[id]?.contains(clientKey) ?? false) else { return }
        if reaches {
            peerRoutes[id, default: []].insert(clientKey)
            directory.addPeerRoute(clientKey, loop: loopIndex)
        } else {
            peerRoutes[id]?.remove(clientKey)
            directory.removePeerRoute(clientKey, loop: loopIndex)
        }
    }

    // MARK: Dialing

    /// A connection to `address`, dialled by client `clientKey` through a session on this loop
    /// (the client's own, or a peer's that announced it). On a group, `route(clientKey:)` first
    /// says which loop's server to dial from.
    public func dial(clientKey: String, proto: String = "tcp", address: String) throws(DialError) -> TunnelConnection {
        loop.assertInLoop()
        return try sessions.dial(clientKey: clientKey, proto: proto, address: address)
    }

    /// Where a dial through `clientKey` is served.
    public enum Route {
        /// A session on this loop reaches it (or nothing does: the dial here reports why).
        case here
        /// The session is on another loop: serve the request there, moving its socket.
        case elsewhere(LoopBound<RemoteDialerServer>)
    }

    /// Which loop's server should dial `clientKey`: this one when one of its sessions reaches
    /// the key, else the loop the directory names.
    public func route(clientKey: String) -> Route {
        loop.assertInLoop()
        if sessions.hasSession(clientKey: clientKey) { return .here }
        guard let members, let index = directory.loopIndex(forClient: clientKey, local: loopIndex), index != loopIndex else { return .here }
        return .elsewhere(members[index])
    }

    /// From loop code, with the requester's socket: dials `clientKey` on the loop that holds
    /// its session, moving `requester` there first (unread bytes included) so that the whole
    /// transfer runs on that loop's thread; `completion` runs there with the result and the
    /// requester as it is now. A requester that cannot move (bytes still queued to it) is
    /// dialled from here and fails if no session here reaches the key.
    public func dial(clientKey: String, proto: String = "tcp", address: String, moving requester: Connection,
                     completion: @escaping @Sendable (Result<TunnelConnection, DialError>, Connection) -> Void) {
        loop.assertInLoop()
        if case .elsewhere(let server) = route(clientKey: clientKey),
           requester.migrate(to: server.loop, then: { moved in
               completion(Result { () throws(DialError) in try server.value.dial(clientKey: clientKey, proto: proto, address: address) }, moved)
           }) {
            requestsMoved += 1
            return
        }
        completion(Result { () throws(DialError) in try dial(clientKey: clientKey, proto: proto, address: address) }, requester)
    }

    /// When `clientKey`'s session is on another loop, moves the request there, socket and all,
    /// to be routed again by that loop's `httpServer`, so the whole transfer stays on that loop's
    /// thread; true if it moved. A request moves once: where it lands, it is served.
    func movedToSessionLoop(_ exchange: HTTPServerExchange, clientKey: String) -> Bool {
        guard !exchange.wasMoved, case .elsewhere(let sibling) = route(clientKey: clientKey) else { return false }
        let moved = exchange.move(to: sibling.loop) { stream, head in
            guard let httpServer = sibling.value.httpServer else { return stream.close() }
            httpServer.adopt(stream, head: head)
        }
        if moved { requestsMoved += 1 }
        return moved
    }

    public func hasSession(clientKey: String) -> Bool { directory.hasSession(clientKey: clientKey) }
    /// A dial through `clientKey` has a session to go through (ours or a peer's, on any loop).
    public func canReach(clientKey: String) -> Bool { directory.canReach(clientKey: clientKey) }

    /// Closes the client sessions (not peers) whose key `revoked` picks, e.g. after a token was
    /// removed from the server's list; their connections end with "tunnel disconnect".
    public func closeClientSessions(where revoked: @escaping @Sendable (String) -> Bool) {
        loop.assertInLoop()
        everywhere { $0.closeClientSessionsHere(where: revoked) }
    }

    private func closeClientSessionsHere(where revoked: (String) -> Bool) {
        for session in sessions.clients.values.joined() where revoked(session.clientKey) {
            logger.info("closing session \(session.clientKey)/\(session.sessionKey): credential revoked")
            session.close(error: TunnelError.sessionClosed)
        }
    }
    public func listClients() -> [String] { directory.clientKeys }

    /// Closes every session of client `clientKey` (the admin API's DELETE); it reconnects
    /// unless its credential was revoked. Returns how many were closed.
    @discardableResult
    public func disconnectClient(_ clientKey: String) -> Int {
        loop.assertInLoop()
        let count = directory.sessionCount(clientKey: clientKey)
        everywhere { server in
            for session in server.sessions.clients[clientKey] ?? [] {
                server.logger.info("closing session \(clientKey)/\(session.sessionKey): disconnected by an operator",
                                   metadata: ["client": "\(clientKey)", "session": "\(session.sessionKey)"])
                session.close(error: TunnelError.sessionClosed)
            }
        }
        return count
    }

    /// Runs `body` with this server now, and with every other server of the group on its loop
    /// (settings and operator actions apply to the whole group).
    func everywhere(_ body: @escaping @Sendable (RemoteDialerServer) -> Void) {
        body(self)
        for member in members?.all ?? [] where member.loop !== loop {
            member.loop.execute { body(member.value) }
        }
    }

    // MARK: Peers

    /// Links to peer `id` at `url` (its connect path); both sides must list each other with the
    /// same token.
    /// On a group every loop links to the peer and announces its own sessions over its link, so
    /// the peer sends each forwarded Connect to the loop that holds the client's session.
    public func addPeer(id: String, token: String, url: String) throws(ConfigurationError) {
        loop.assertInLoop()
        let parsed = try WebSocketURL(url)
        everywhere { $0.addPeerHere(id: id, token: token, url: parsed) }
    }

    private func addPeerHere(id: String, token: String, url parsed: WebSocketURL) {
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
        everywhere { $0.removePeerHere(id: id) }
    }

    /// Peers found in DNS share `token` (every loop of a group admits them).
    func setDiscoveredPeerToken(_ token: String?) {
        everywhere { $0.discoveredPeerToken = token }
    }

    private func removePeerHere(id: String) {
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
        // Idle upstream connections carry nothing: they would only hold the drain up.
        upstreamPool.closeAll()
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
        for timer in [bufferCheckTimer, trafficSampleTimer, idleCheckTimer].compactMap({ $0 }) { loop.cancelTimer(timer) }
        bufferCheckTimer = nil
        trafficSampleTimer = nil
        idleCheckTimer = nil
        upstreamPool.closeAll()
        for session in sessions.everySession {
            session.closeGracefully()
        }
        for link in peerLinks.values { link.stop() }
        peerLinks.removeAll()
    }
}
