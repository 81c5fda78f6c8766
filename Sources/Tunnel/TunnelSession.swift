import Logging
import Reactor

/// One end of a tunnel: the connections multiplexed over one WebSocket, in either role, owned by
/// one loop (no locks: the connection table is touched only on that thread).
///
/// The server role is the usual dialer and the client role the usual acceptor of Connects, but
/// the state machine is the same; `connectAuthorizer` decides whether Connects are honoured.
public final class TunnelSession: TunnelTransportDelegate {
    public enum Role: Sendable, CustomStringConvertible {
        case server, client
        public var description: String { self == .server ? "server" : "client" }
    }

    public let loop: EventLoop
    public let role: Role
    public let clientKey: String
    /// Random 63-bit key that tells apart several sessions of one client key.
    public let sessionKey: Int64
    public let options: TunnelOptions
    let transport: any TunnelTransport
    /// nil refuses every Connect (with Error "connect not allowed"; the session stays up).
    public var connectAuthorizer: ConnectAuthorizer?
    /// Dials the remote's Connects; nil: TCP (`TCPDialer` with this session's options), made
    /// on the first Connect, since most sessions (a server's client sessions) never dial one.
    public var dialer: LocalDialer?
    /// Client keys the remote announced with AddClient (peer routing), with their session keys.
    public private(set) var remoteClients: [String: Set<Int64>] = [:]
    public var onRemoteClientsChanged: ((_ client: RemoteClient, _ added: Bool) -> Void)?
    /// Runs once when the session ends, with why (nil: closed locally without error).
    public var onClose: (((any Error)?) -> Void)?
    public private(set) var isOpen = true
    public weak var observer: (any TunnelSessionObserver)?
    let logger: Logger

    var connections: [Int64: TunnelConnection] = [:]
    /// The connection whose Data went out last (see `transportWritabilityDidChange`).
    private var lastDataSender: Int64 = 0
    /// Unknown ids already answered (one Error each; a flood gets no more).
    private var answeredUnknownIDs = Set<Int64>()
    /// Announcements from a remote that is not a peer, or beyond the cap: ignored, counted.
    public private(set) var ignoredAnnouncements = 0
    /// Data for ids we do not know (answered or not).
    public private(set) var unknownIDMessages = 0
    private var refusedConnectLog = LogThrottle()
    private var unknownIDLog = LogThrottle()
    private var announcementLog = LogThrottle()
    private var nextConnID: Int64 = 1
    private var nextMessageID = Int64.random(in: 1..<(Int64.max / 2))
    private var inbound = InboundMessage.idle
    private var timers: [TimerID] = []
    private var started = false

    public init(transport: any TunnelTransport, role: Role, clientKey: String,
                sessionKey: Int64 = Int64.random(in: 1...Int64.max), options: TunnelOptions = TunnelOptions(),
                connectAuthorizer: ConnectAuthorizer? = nil, dialer: LocalDialer? = nil,
                logger: Logger = Logger(label: "remotedialer.session")) {
        self.loop = transport.loop
        self.transport = transport
        self.role = role
        self.clientKey = clientKey
        self.sessionKey = sessionKey
        self.options = options
        self.connectAuthorizer = connectAuthorizer
        self.dialer = dialer
        self.logger = logger
    }

    /// Starts reading messages and the liveness timers (ping and SyncConnections for the client role).
    public func start() {
        loop.assertInLoop()
        precondition(!started, "TunnelSession started twice")
        started = true
        transport.start(delegate: self)
        startLiveness()
    }

    /// This session's field on its log lines, built per line (only for levels that are on):
    /// set on a per-session copy of the logger it would cost every idle session ~0.6 KiB.
    private var logFields: Logger.Metadata { ["session": "\(role) \(clientKey)/\(sessionKey)"] }

    public var connectionCount: Int { connections.count }
    /// Bytes held by the WebSocket and every connection's rings, for the server's memory cap.
    public var bufferedBytes: Int { connections.values.reduce(transport.bufferedBytes) { $0 + $1.bufferedBytes } }
    public var activeConnectionIDs: [Int64] { connections.keys.sorted() }
    /// The open connections, oldest id first (for status reports).
    public var openConnections: [TunnelConnection] { connections.values.sorted { $0.id < $1.id } }
    var transportIsWritable: Bool { transport.isWritable }

    /// True if the remote announced it can reach `clientKey` (a peer session).
    public func canReach(clientKey key: String) -> Bool { !(remoteClients[key]?.isEmpty ?? true) }

    // MARK: Dialing

    /// Opens a connection to `address` dialled by the remote, like Go's serverConnect: the id is
    /// registered and Connect sent at once; a failed remote dial arrives later as the
    /// connection's close error.
    public func dial(proto: String, address: String) throws(TunnelError) -> TunnelConnection {
        loop.assertInLoop()
        guard isOpen else { throw .tunnelDisconnect }
        guard connections.count < options.maxConnections else { throw .tooManyConnections(limit: options.maxConnections) }
        // Skip ids the remote's Connects already use: overwriting one would orphan a live connection.
        repeat { nextConnID += 1 } while connections[nextConnID] != nil
        let target = ConnectTarget(proto: proto, address: address)
        let connection = TunnelConnection(id: nextConnID, target: target, session: self)
        register(connection)
        send(.connect, connID: connection.id, Array("\(proto)/\(address)".utf8))
        return connection
    }

    // MARK: Ending

    /// Ends every connection cleanly (Error "EOF" to the remote), then the session.
    public func closeGracefully() {
        loop.assertInLoop()
        for connection in Array(connections.values) { connection.close() }
        close()
    }

    /// Ends the session: every connection ends with "tunnel disconnect".
    public func close(error: (any Error)? = nil) {
        loop.assertInLoop()
        transport.close(error: error)
        end(error: error)
    }

    /// Session-wide back-pressure: while the WebSocket cannot take more, no connection reads.
    /// When it can again, the connections resume in turn, starting after the one whose Data went
    /// out last: the first to resume is the first its loop reads (epoll reports sockets in the
    /// order they became ready), and often the only one before the queue fills again. Resumed in
    /// a fixed order, one connection was served to its end while the others waited (100
    /// downloads at once: the slowest at 9 MB/s, the fastest at 121).
    public func transportWritabilityDidChange(isWritable: Bool) {
        let all = Array(connections.values)
        let first = isWritable ? (all.firstIndex { $0.id == lastDataSender }).map { $0 + 1 } ?? 0 : 0
        for turn in all.indices { all[(first + turn) % all.count].outboundStateDidChange() }
    }

    public func transportDidClose(error: (any Error)?) {
        end(error: error ?? TunnelError.tunnelDisconnect)
    }

    private func end(error: (any Error)?) {
        guard isOpen else { return }
        isOpen = false
        // The rest of a message in progress (e.g. after its header failed to decode) is dropped:
        // an ended session acts on nothing more.
        inbound = .ignored
        if let error { logger.debug("session ended: \(error)", metadata: logFields) }
        for timer in timers { loop.cancelTimer(timer) }
        timers.removeAll()
        for connection in Array(connections.values) { connection.sessionDidEnd() }
        remoteClients.removeAll()
        let onClose = self.onClose
        self.onClose = nil
        onClose?(error)
    }

    private func register(_ connection: TunnelConnection) {
        connections[connection.id] = connection
        observer?.session(self, didAddConnection: connection.target)
    }

    func forget(_ connection: TunnelConnection) {
        guard connections[connection.id] === connection else { return }
        connections[connection.id] = nil
        observer?.session(self, didRemoveConnection: connection.target)
    }

    // MARK: Sending

    func sendData(connID: Int64, _ bytes: UnsafeRawBufferPointer) {
        lastDataSender = connID
        observer?.session(self, didSendDataBytes: bytes.count)
        var offset = 0
        repeat {
            let count = min(options.maxDataPayload, bytes.count - offset)
            send(.data, connID: connID, UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)]))
            offset += count
        } while offset < bytes.count
    }

    func sendError(connID: Int64, _ text: String) {
        send(.error, connID: connID, Array(text.utf8))
    }

    func sendControl(_ type: MessageType, connID: Int64) {
        send(type, connID: connID, [])
    }

    /// Announces (or withdraws) a client key this side can reach, for peer routing.
    public func announce(_ client: RemoteClient, added: Bool) {
        loop.assertInLoop()
        send(added ? .addClient : .removeClient, connID: 0, client.payload)
    }

    func sendSyncConnections() {
        send(.syncConnections, connID: 0, SyncConnections.encode(activeConnectionIDs))
    }

    private func send(_ type: MessageType, connID: Int64, _ payload: [UInt8]) {
        payload.withUnsafeBytes { send(type, connID: connID, $0) }
    }

    private func send(_ type: MessageType, connID: Int64, _ payload: UnsafeRawBufferPointer) {
        guard isOpen else { return }
        let header = MessageHeader(id: nextMessageID, connID: connID, type: type)
        nextMessageID &+= 1
        if options.traceMessages { trace("send", header, Array(payload.prefix(128))) }
        // A refused send means the channel is closed: the session hears that from the channel.
        _ = header.withEncodedBytes { transport.sendMessage($0, payload) }
    }

    // MARK: Receiving

    public func transportDidBeginMessage(isBinary: Bool) {
        // A closing WebSocket still delivers what the remote sent before it saw our Close: an
        // ended session must not act on it (a Connect would dial into a dead session).
        guard isOpen else { inbound = .ignored; return }
        guard isBinary else { return close(error: TunnelError.wrongMessageType) }
        inbound = .header(MessageHeaderDecoder())
    }

    public func transportDidReceivePiece(_ piece: UnsafeRawBufferPointer) {
        switch inbound {
        case .idle, .ignored:
            break
        case .header(var decoder):
            let found: (header: MessageHeader, used: Int)?
            do { found = try decoder.feed(piece) } catch {
                return close(error: TunnelError.decoding(error))
            }
            guard let (header, used) = found else { inbound = .header(decoder); return }
            begin(header)
            if used < piece.count { transportDidReceivePiece(UnsafeRawBufferPointer(rebasing: piece[used...])) }
        case .data(let connection):
            observer?.session(self, didReceiveDataBytes: piece.count)
            connection?.receive(piece)
        case .bounded(let header, var payload):
            inbound = .idle  // drop the copy held by the enum while appending
            payload.append(piece)
            inbound = .bounded(header, payload)
        }
    }

    public func transportDidEndMessage() {
        let finished = inbound
        inbound = .idle
        switch finished {
        case .header(let decoder):
            close(error: TunnelError.decoding(decoder.endOfInputError))
        case .bounded(let header, let payload):
            if options.traceMessages { trace("recv", header, payload.bytes) }
            handle(header, payload)
        case .idle, .data, .ignored:
            break
        }
    }

    /// A header is complete: route the rest of the message.
    private func begin(_ header: MessageHeader) {
        switch header.type {
        case .data:
            if options.traceMessages { trace("recv", header, nil) }
            let connection = connections[header.connID]
            if connection == nil { answerUnknown(connID: header.connID) }
            inbound = .data(connection)
        case .connect:
            inbound = .bounded(header, BoundedPayload(limit: PayloadLimit.connect))
        case .error:
            inbound = .bounded(header, BoundedPayload(limit: PayloadLimit.error))
        case .addClient, .removeClient:
            inbound = .bounded(header, BoundedPayload(limit: PayloadLimit.client))
        case .syncConnections:
            inbound = .bounded(header, BoundedPayload(limit: 8 * options.maxConnections))
        case .pause:
            if options.traceMessages { trace("recv", header, nil) }
            connections[header.connID]?.receivePause()
            inbound = .ignored
        case .resume:
            if options.traceMessages { trace("recv", header, nil) }
            connections[header.connID]?.receiveResume()
            inbound = .ignored
        default:
            if options.traceMessages { trace("recv (ignored)", header, nil) }
            inbound = .ignored
        }
    }

    private func handle(_ header: MessageHeader, _ payload: BoundedPayload) {
        do throws(TunnelDecodingError) {
            switch header.type {
            case .connect:
                accept(connID: header.connID, try ConnectTarget(payload: payload.bytes))
            case .error:
                connections[header.connID]?.receiveRemoteClose(payload.text)
            case .addClient, .removeClient:
                let client = try RemoteClient(payload: payload.bytes)
                let added = header.type == .addClient
                guard !added || remoteClients[client.clientKey] != nil || remoteClients.count < options.maxAnnouncedClients else {
                    return ignoreAnnouncement(client)
                }
                if added {
                    remoteClients[client.clientKey, default: []].insert(client.sessionKey)
                } else {
                    remoteClients[client.clientKey]?.remove(client.sessionKey)
                    if remoteClients[client.clientKey]?.isEmpty == true { remoteClients[client.clientKey] = nil }
                }
                onRemoteClientsChanged?(client, added)
            case .syncConnections:
                if payload.discarded > 0 { throw .syncConnectionsTooLarge(limit: payload.limit) }
                closeStaleConnections(keeping: Set(try SyncConnections.decode(payload.bytes)))
            default:
                break
            }
        } catch {
            // Go ends the session on these (serveMessage returns the error).
            close(error: TunnelError.decoding(error))
        }
    }

    /// Data for an id we do not have: one Error per id, and none while the WebSocket is backed
    /// up, so a remote that sends but never reads cannot grow our queue with answers.
    private func answerUnknown(connID: Int64) {
        unknownIDMessages += 1
        if let suppressed = unknownIDLog.admit(now: MonotonicClock.now()) {
            logger.debug("data for unknown connection \(connID)\(Self.suppressedNote(suppressed))", metadata: logFields)
        }
        guard transport.isWritable, !answeredUnknownIDs.contains(connID) else { return }
        if answeredUnknownIDs.count >= options.maxUnknownIDsRemembered { answeredUnknownIDs.removeAll(keepingCapacity: true) }
        answeredUnknownIDs.insert(connID)
        sendError(connID: connID, TunnelError.connectionNotFound(clientKey: clientKey, sessionKey: sessionKey, connID: connID).description)
    }

    private func ignoreAnnouncement(_ client: RemoteClient) {
        ignoredAnnouncements += 1
        if let suppressed = announcementLog.admit(now: MonotonicClock.now()) {
            let why = options.maxAnnouncedClients == 0 ? "not a peer" : "over the limit of \(options.maxAnnouncedClients) keys"
            logger.warning("ignored announcement of \(client.clientKey): \(why)\(Self.suppressedNote(suppressed))", metadata: logFields)
        }
    }

    static func suppressedNote(_ count: Int) -> String { count > 0 ? " (\(count) more suppressed)" : "" }

    /// The remote asks us to dial `target` for `connID`.
    private func accept(connID: Int64, _ target: ConnectTarget) {
        guard let authorizer = connectAuthorizer, authorizer(target.proto, target.address) else {
            // Go's client ends the whole session here; refusing just this id is kinder and
            // compatible on the wire.
            if let suppressed = refusedConnectLog.admit(now: MonotonicClock.now()) {
                logger.info("refused connect \(target) for connection \(connID)\(Self.suppressedNote(suppressed))", metadata: logFields)
            }
            return sendError(connID: connID, TunnelError.connectNotAllowed.description)
        }
        guard connections.count < options.maxConnections else {
            return sendError(connID: connID, TunnelError.tooManyConnections(limit: options.maxConnections).description)
        }
        connections[connID]?.sessionDidEnd()  // an id reused by the remote replaces the old one
        let connection = TunnelConnection(id: connID, target: target, session: self)
        register(connection)
        connectDialer()(target, loop) { [weak self] result in
            guard let self else { return }
            switch result {
            case .success(let stream):
                if connection.isOpen { connection.pipe(to: stream) } else { stream.close() }
            case .failure(let error):
                logger.debug("dial \(target) failed: \(error)", metadata: logFields)
                connection.fail(error, notifyRemote: true)
            }
        }
    }

    /// `dialer`, or the default made now and kept. Only a newly made dialer is stored: the
    /// earlier `dialer = dialer ?? TCPDialer.make(…)` on every Connect put the closure through
    /// the generic `??`, which hands a function back wrapped in reabstraction thunks (heap
    /// contexts); stored back, the dialer grew a layer per Connect and every dial ran through
    /// all of them (3 frames deeper per Connect in a debug build; under the soak the client
    /// program's RSS grew ~1 KiB per proxied request and its requests a second fell ~5×).
    private func connectDialer() -> LocalDialer {
        if let dialer { return dialer }
        let made = TCPDialer.make(options: options)
        dialer = made
        return made
    }

    private func trace(_ direction: String, _ header: MessageHeader, _ payload: [UInt8]?) {
        let shown: String
        switch header.type {
        case .connect, .error, .addClient, .removeClient:
            shown = " " + String(decoding: payload ?? [], as: UTF8.self)
        default:
            shown = ""
        }
        logger.debug("\(direction) \(header)\(shown)", metadata: logFields)
    }
}

extension TunnelSession {
    // MARK: Liveness

    private func startLiveness() {
        if role == .client {
            timers.append(loop.scheduleTimer(after: options.pingInterval, repeating: options.pingInterval) { [weak self] in
                self?.transport.sendPing()
            })
            timers.append(loop.scheduleTimer(after: options.syncInterval, repeating: options.syncInterval) { [weak self] in
                self?.sendSyncConnections()
            })
        }
        guard !options.ownerChecksIdle else { return }
        let check = options.idleCheckInterval
        timers.append(loop.scheduleTimer(after: check, repeating: check) { [weak self] in self?.closeIfIdle() })
    }

    /// Ends the session if nothing (not even a ping or pong) arrived for `idleTimeout`. Called
    /// every `idleCheckInterval`, by the session's own timer or by its owner (`ownerChecksIdle`).
    public func closeIfIdle() {
        loop.assertInLoop()
        guard isOpen else { return }
        let idle = MonotonicClock.now() &- transport.lastReceivedAt
        if idle > options.idleTimeout.nanosecondsClamped { close(error: TunnelError.idleTimeout) }
    }

    /// SyncConnections: close (without telling the remote) connections it no longer has. Ones
    /// opened in the last few seconds may have crossed the list on the wire and are kept.
    private func closeStaleConnections(keeping live: Set<Int64>) {
        let stale = connections.values.filter { !live.contains($0.id) && $0.age >= options.syncGrace.nanosecondsClamped }
        for connection in stale {
            logger.debug("closing stale connection \(connection.id)", metadata: logFields)
            connection.fail(TunnelError.staleConnection, notifyRemote: false)
        }
    }
}
