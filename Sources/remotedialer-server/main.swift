import Dispatch
import ProgramSupport
import Glibc
import HTTP
import Logging
import CoreMetrics
import Prometheus
import Reactor
import RemoteDialer
import TLS

/// The bundled tunnel server; flags as the Go demo's (PROTOCOL.md §5), plus TLS and metrics.
struct ServerCommand: Command {
    var listen = ":8123"
    var id = ""
    var token = ""
    var peers = ""
    var peersFile: String?
    var peersDNS: String?
    var peersDNSInterval = FlagDuration(argument: "30s")!
    var peersDNSTLS = false
    var debug = false
    var logFormat = LogFormat.text
    var cert: String?
    var key: String?
    var peerCA: String?
    var peerInsecure = false
    var upstreamCA: String?

    // Who may do what (README: "Running it for real").
    var clientTokens: String?
    var clientCA: String?
    var proxyTokens: String?
    var proxyAllowFrom = "127.0.0.1/32,::1/128"
    var socks: String?
    var forward: [String] = []
    var dialWait = FlagDuration(argument: "250ms")!
    var metricsAllowFrom: String?
    var adminTokens: String?
    var adminAllowFrom = "127.0.0.1/32,::1/128"

    // Limits and timeouts (README: "Limits and timeouts").
    var headTimeout = FlagDuration(argument: "10s")!
    var keepAliveTimeout = FlagDuration(argument: "60s")!
    var bodyTimeout = FlagDuration(argument: "60s")!
    var maxProxyTimeout = FlagDuration(argument: "10m")!
    var maxConnections: Int?
    var maxSessionsPerClient = 64
    var maxConnectionsPerSession = 65_536
    var maxPeerClients = 100_000
    var maxWriteQueue = FlagBytes(argument: "16M")!
    var maxBuffered = FlagBytes(argument: "1G")!
    var clientRate: FlagBytes?
    var loops = ReactorGroup.coreCount
    var accept = AcceptDistribution.reusePort
    var drainTimeout = FlagDuration(argument: "30s")!
    var upstreamIdlePerTarget = 128
    var upstreamIdleTotal = 1024
    var upstreamIdleTimeout = FlagDuration(argument: "30s")!

    static var flags: FlagSet<ServerCommand> {
        var flags = FlagSet<ServerCommand>(commandName: "remotedialer-server",
            abstract: "Reverse-tunnel server: clients connect to /connect; /client/{id}/{scheme}/{host}/{path} goes through them.")
        flags.option("listen", \.listen, help: "Listen address")
        flags.option("id", \.id, help: "Peer id of this server (HA)")
        flags.option("token", \.token, help: "Peer token (HA)")
        flags.option("peers", \.peers, help: "Peers: id:token:url,id:token:url")
        flags.option("peers-file", \.peersFile, help: "Peers from a file, one id:token:url a line (reloaded on SIGHUP)")
        flags.option("peers-dns", \.peersDNS, help: "NAME:PORT: every address NAME resolves to (but ours) is a peer at ws://ADDR:PORT/connect, with -id/-token")
        flags.option("peers-dns-interval", \.peersDNSInterval, help: "How often -peers-dns is resolved again")
        flags.flag("peers-dns-tls", \.peersDNSTLS, help: "Link to -peers-dns peers with wss://")
        flags.flag("debug", \.debug, help: "Trace every tunnel message")
        flags.option("log-format", \.logFormat, help: "Log lines as text or json (one object a line: time, level, message and fields)")
        flags.option("cert", \.cert, help: "TLS certificate chain (PEM) to serve HTTPS")
        flags.option("key", \.key, help: "TLS private key (PEM)")
        flags.option("peer-ca", \.peerCA, help: "CA file to verify wss:// peers (default: system roots)")
        flags.flag("peer-insecure", \.peerInsecure, help: "Skip TLS verification of peers (labs only)")
        flags.option("upstream-ca", \.upstreamCA, help: "CA file to verify https targets of /client/... (default: system roots)")
        flags.option("client-tokens", \.clientTokens, help: "File of 'ID TOKEN' or 'ID sha256:HEX' lines: clients must send X-API-Tunnel-Token (reloaded on SIGHUP)")
        flags.option("client-ca", \.clientCA, help: "CA file: clients must present a certificate from it (mTLS, with -cert/-key); its CN or a DNS name is the client id")
        flags.option("proxy-tokens", \.proxyTokens, help: "File of 'NAME TOKEN CLIENT-PATTERNS' lines: /client/... needs Authorization: Bearer TOKEN (reloaded on SIGHUP)")
        flags.option("proxy-allow-from", \.proxyAllowFrom, help: "Without -proxy-tokens: address ranges that may use /client/... (0.0.0.0/0,::/0 is the Go demo's open route)")
        flags.option("socks", \.socks, help: "Also serve SOCKS5 on this address: username = client id, password = proxy token (CONNECT only)")
        flags.option("forward", \.forward, help: "LISTEN=CLIENT/tcp/HOST:PORT: a listener whose connections CLIENT dials to HOST:PORT (repeatable)")
        flags.option("dial-wait", \.dialWait, help: "HTTP CONNECT and SOCKS5: how long to wait for the client's refusal before answering success (the tunnel protocol has no Connect acknowledgement)")
        flags.option("metrics-allow-from", \.metricsAllowFrom, help: "Address ranges that may read /metrics (default: everyone)")
        flags.option("admin-tokens", \.adminTokens, help: "File of 'NAME TOKEN' lines: /api/ needs Authorization: Bearer TOKEN, which the /status page asks for (reloaded on SIGHUP)")
        flags.option("admin-allow-from", \.adminAllowFrom, help: "Without -admin-tokens: address ranges that may use /api/ and /status")
        flags.option("head-timeout", \.headTimeout, help: "Time to receive a request head (and answer an upgrade); then 408")
        flags.option("keepalive-timeout", \.keepAliveTimeout, help: "Idle time allowed between requests on a kept-alive connection")
        flags.option("body-timeout", \.bodyTimeout, help: "Time a request body may send nothing, or a response sit untaken")
        flags.option("max-proxy-timeout", \.maxProxyTimeout, help: "Largest ?timeout= a /client/... request may ask for")
        flags.option("max-connections", \.maxConnections, help: "Concurrent HTTP connections (default: from the fd limit); at the limit accepting pauses")
        flags.option("max-sessions-per-client", \.maxSessionsPerClient, help: "Sessions one client id may hold; more get 429")
        flags.option("max-connections-per-session", \.maxConnectionsPerSession, help: "Tunnelled connections one session may hold")
        flags.option("max-peer-clients", \.maxPeerClients, help: "Client keys one peer may announce")
        flags.option("max-write-queue", \.maxWriteQueue, help: "Bytes queued for one peer that does not read; past it the connection (and its session) is closed")
        flags.option("max-buffered", \.maxBuffered, help: "Bytes buffered by all sessions together; past it the largest are closed first")
        flags.option("client-rate", \.clientRate, help: "Bytes per second each client id may move, each way (e.g. 50M); -client-tokens may give a client its own as a third column")
        flags.option("loops", \.loops, help: "Event loops (threads) serving connections, one listener each on the same port; sessions stay on the loop that accepted them")
        flags.option("accept", \.accept, help: "How -loops share accepting: reuseport (a listener per loop, the kernel spreads connections) or handoff (loop 0 accepts and hands sockets out round-robin)")
        flags.option("upstream-idle-per-target", \.upstreamIdlePerTarget, help: "/client/... to http targets: idle upstream connections kept per client and host, per loop, for reuse (0: none; every request dials anew with Connection: close)")
        flags.option("upstream-idle-total", \.upstreamIdleTotal, help: "Idle upstream connections kept per loop for all targets together; at the cap the oldest is closed")
        flags.option("upstream-idle-timeout", \.upstreamIdleTimeout, help: "How long an idle upstream connection is kept before it is closed")
        flags.option("drain-timeout", \.drainTimeout, help: "On SIGTERM, how long in-flight transfers may continue (a second SIGTERM ends them at once)")
        return flags
    }

    func run() throws {
        settleMemoryAllocator()
        bootstrapLogging(debug: debug, format: logFormat)
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let logger = Logger(label: "remotedialer-server")
        if (cert == nil) != (key == nil) { throw UsageError("-cert and -key go together") }
        if clientCA != nil && cert == nil { throw UsageError("-client-ca needs -cert and -key") }
        let serving = try cert.map { chain in
            var configuration = TLSConfiguration.server(certificateChainFile: chain, privateKeyFile: key!, clientCAFile: clientCA)
            // Proxy users and peers come without client certificates; tunnel clients are
            // refused without one by the authorizer (401), and a bad one fails the handshake.
            configuration.clientCertificateOptional = true
            return try TLSContext(configuration)
        }
        var peerConfiguration = TLSConfiguration.client()
        peerConfiguration.caFile = peerCA
        peerConfiguration.insecureSkipVerify = peerInsecure
        if peerInsecure { logger.warning("-peer-insecure: peer certificates are NOT verified") }
        let peerTLS = try TLSContext(peerConfiguration)
        var upstreamConfiguration = TLSConfiguration.client()
        upstreamConfiguration.caFile = upstreamCA
        let upstreamTLS = try TLSContext(upstreamConfiguration)
        let address = try SocketAddress(listen)
        let peerList = try PeerSpec.parse(peers) + (peersFile.map { try PeerSpec.parse(file: $0) } ?? [])
        let peerSet = PeerSet()

        // Signals become loop events: block them before any thread starts.
        let signals = SignalSource.block([SIGINT, SIGTERM, SIGHUP])
        var options = ServerOptions()
        options.tunnel.traceMessages = debug
        options.peerID = id
        options.peerToken = token
        options.peerTLS = peerTLS
        options.upstreamTLS = upstreamTLS
        options.maxProxyTimeout = maxProxyTimeout.duration
        options.maxSessionsPerClient = maxSessionsPerClient
        options.maxBufferedBytes = maxBuffered.bytes
        options.tunnel.maxConnections = maxConnectionsPerSession
        options.tunnel.maxAnnouncedClients = maxPeerClients
        guard upstreamIdlePerTarget >= 0, upstreamIdleTotal >= 0 else { throw UsageError("-upstream-idle-per-target and -upstream-idle-total must not be negative") }
        options.upstreamIdlePerTarget = upstreamIdlePerTarget
        options.upstreamIdleTotal = upstreamIdleTotal
        options.upstreamIdleTimeout = upstreamIdleTimeout.duration
        var timeouts = HTTPTimeouts()
        timeouts.head = headTimeout.duration
        timeouts.keepAliveIdle = keepAliveTimeout.duration
        timeouts.bodyIdle = bodyTimeout.duration
        var listenOptions = ListenOptions()
        listenOptions.connection.writeQueueLimit = maxWriteQueue.bytes
        if let maxConnections, maxConnections < 1 { throw UsageError("-max-connections must be positive") }
        let clientTokenFile = try clientTokens.map { try Self.credentials($0, needsRest: false, allowsRest: true) }
        let credentials = clientTokens == nil && clientCA == nil ? nil
            : ClientCredentials(tokens: clientTokenFile, requireCertificate: clientCA != nil)
        let perClientRates = try clientTokenFile.map { try Self.clientRates($0, path: clientTokens!) } ?? [:]
        if credentials == nil { logger.warning("clients are not authenticated: anyone can register as any client id (use -client-tokens)") }
        let access = ProxyAccess(users: try proxyTokens.map { try Self.credentials($0, needsRest: true) }, allowFrom: try AddressRanges(proxyAllowFrom))
        let metricsAllowed = try metricsAllowFrom.map { try AddressRanges($0) }
        let adminAccess = AdminAccess(users: try adminTokens.map { try Self.credentials($0, needsRest: false) }, allowFrom: try AddressRanges(adminAllowFrom))
        let reactor = try ReactorGroup(loopCount: loops, name: "server")
        let group = RemoteDialerServerGroup(reactor: reactor, options: options, authorizer: credentials?.authorizer ?? TunnelHeaders.clientIDAuthorizer)
        if loops > 1 && accept == .reusePort { listenOptions.reusePort = true }  // one listener per loop, the kernel spreads connections
        let socksAddress = try socks.map { try SocketAddress($0) }
        let forwardSpecs = try forward.map { text in
            do { return try PortForward.Spec(parsing: text) } catch { throw UsageError("\(error)") }
        }
        let dnsPeers = try peersDNS.map { text in
            guard !id.isEmpty, !token.isEmpty else { throw UsageError("-peers-dns needs -id and -token") }
            guard let (name, port) = try? SocketAddress.splitHostPort(text), !name.isEmpty, port != 0 else { throw UsageError("-peers-dns wants NAME:PORT") }
            return (name, port)
        }
        let routes = Routes(access: access, adminAccess: adminAccess, metricsAllowed: metricsAllowed, registry: registry,
                            dialWait: dialWait.duration, timeouts: timeouts,
                            connectionLimit: ConnectionLimit(maximum: maxConnections ?? HTTPServer.defaultMaxConnections),
                            serving: serving, logger: logger)
        // Every loop serves HTTP on the same port; the first binds it (port 0 picks one).
        var bound = address
        var https: [LoopBound<HTTPServer>] = []
        for member in group.servers {
            let http = try member.loop.runBlocking { () throws in
                let http = routes.httpServer(for: member.value)
                if accept == .reusePort || member.loop === reactor.loops[0] { bound = try http.listen(on: bound, options: listenOptions) }
                member.value.listenAddress = "\(bound)"
                return LoopBound(http, loop: member.loop)
            }
            https.append(http)
        }
        if accept == .handOff && loops > 1 { Self.handOffAccepted(from: https, loops: reactor.loops) }
        let stopped = DispatchSemaphore(value: 0)
        let control = group.servers[0]
        try control.loop.runBlocking { () throws in
            let server = control.value, loop = control.loop
            logger.info("listening on \(bound)\(serving == nil ? "" : " (TLS)") on \(loops) loop\(loops == 1 ? "" : "s") (at most \(routes.connectionLimit.maximum) connections)")
            let socksServer = SOCKS5Server(server: server, access: access, dialWait: dialWait.duration, handshakeTimeout: headTimeout.duration)
            let socksListener = try socksAddress.map { try socksServer.listen(on: $0, options: listenOptions, limit: routes.connectionLimit) }
            if let socksListener { logger.info("SOCKS5 listening on \(socksListener.address)") }
            let forwardListeners = try forwardSpecs.map { spec in
                let listener = try PortForward(spec: spec, server: server).listen(options: listenOptions, limit: routes.connectionLimit)
                logger.info("forwarding \(listener.address) to \(spec.clientKey)/tcp/\(spec.target)")
                return listener
            }
            let discovery = dnsPeers.map { name, port in
                PeerDiscovery(server: server, name: name, port: port, token: token, tls: peersDNSTLS, interval: peersDNSInterval.duration,
                              ownAddresses: PeerDiscovery.ownAddresses(listeningOn: address))
            }
            try peerSet.apply(peerList, to: server)
            discovery?.start()
            server.setBandwidthLimits(defaultRate: clientRate?.bytes, perClient: perClientRates)
            let exit = {
                for http in https { http.loop.execute { http.value.close() } }
                socksListener?.close()
                for listener in forwardListeners { listener.close() }
                discovery?.stop()
                loop.scheduleTimer(after: .milliseconds(200)) { stopped.signal() }
            }
            // Each loop drains its own sessions; the process exits once all have.
            var draining = 0
            _ = try loop.watchSignals(signals) { signal in
                if signal == SIGHUP {
                    return reload(credentials: credentials, access: access, admin: adminAccess, peers: peerSet, server: server, logger: logger)
                }
                switch signal {
                case SIGTERM where draining > 0:
                    logger.info("second SIGTERM: ending the drain now")
                    for member in group.servers { member.loop.execute { member.value.finishDrain() } }
                case SIGTERM:
                    logger.info("SIGTERM: draining (at most \(drainTimeout))")
                    draining = https.count
                    let finished = LoopBound({ draining -= 1; if draining == 0 { exit() } }, loop: loop)
                    for (member, http) in zip(group.servers, https) {
                        member.loop.execute {
                            http.value.stopKeepingAlive()
                            member.value.drain(timeout: drainTimeout.duration, alsoWaitFor: { http.value.servingConnections > 0 },
                                               completion: { finished.loop.execute { finished.value() } })
                        }
                    }
                default:
                    logger.info("signal \(signal): shutting down")
                    for member in group.servers { member.loop.execute { member.value.shutdown() } }
                    exit()
                }
            }
        }
        stopped.wait()
        reactor.shutdown()
    }
}

/// What every loop's HTTP server routes, built once per loop around that loop's tunnel server.
struct Routes: Sendable {
    let access: ProxyAccess
    let adminAccess: AdminAccess
    let metricsAllowed: AddressRanges?
    let registry: PrometheusCollectorRegistry
    let dialWait: Duration
    let timeouts: HTTPTimeouts
    /// One cap for all loops together.
    let connectionLimit: ConnectionLimit
    let serving: TLSContext?
    let logger: Logger

    func httpServer(for server: RemoteDialerServer) -> HTTPServer {
        let clientRoute = ClientRoute(server: server, access: access)
        let connectProxy = ConnectProxy(server: server, access: access, dialWait: dialWait)
        let adminRoute = AdminRoute(server: server, access: adminAccess, version: ServerCommand.version)
        let (adminAccess, metricsAllowed, registry) = (adminAccess, metricsAllowed, registry)
        var router = HTTPRouter()
        router.add("/connect") { server.handleConnect($0) }
        router.add(prefix: ClientRoute.prefix) { clientRoute.handle($0) }
        router.add(prefix: AdminRoute.prefix) { adminRoute.handle($0) }
        router.add(StatusPage.path, method: "GET") { if adminAccess.requiresToken || adminRoute.admits($0) { StatusPage.respond($0) } }
        router.add("/healthz") { exchange in
            if server.isDraining { return exchange.respond(.serviceUnavailable, body: "draining\n") }
            exchange.respond(.ok, body: "ok\n")
        }
        router.add("/metrics") { exchange in
            if let metricsAllowed, !metricsAllowed.contains(exchange.remoteAddress) { return exchange.respond(.forbidden, body: "forbidden\n") }
            var bytes: [UInt8] = []
            registry.emit(into: &bytes)
            exchange.respond(.ok, headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"], body: String(decoding: bytes, as: UTF8.self))
        }
        let http = HTTPServer(loop: server.loop, timeouts: timeouts, sharing: connectionLimit) { [router] exchange in
            exchange.head.method == "CONNECT" ? connectProxy.handle(exchange) : router.route(exchange)
        }
        if let serving {
            let logger = logger
            http.wrapAccepted = { (connection: Connection) -> (any ByteStream)? in
                do { return try TLSStream(wrapping: connection, context: serving, role: .server) } catch {
                    logger.error("TLS: \(error)")
                    return nil
                }
            }
        }
        server.httpServer = http
        return http
    }
}

extension ServerCommand {
    /// This build, as the status page and the admin API show it.
    static let version = "remotedialer-swift 0.17.0"

    static func credentials(_ path: String, needsRest: Bool, allowsRest: Bool = false) throws -> CredentialsFile {
        try CredentialsFile(parsing: readTextFile(path), file: path, needsRest: needsRest, allowsRest: allowsRest)
    }

    /// The optional third column of `-client-tokens`: that client's bandwidth limit (`20M`).
    static func clientRates(_ file: CredentialsFile, path: String) throws -> [String: Int] {
        var rates: [String: Int] = [:]
        for entry in file.entries where !entry.rest.isEmpty {
            guard let rate = FlagBytes(argument: entry.rest) else {
                throw UsageError("\(path): client \(entry.name): bad rate \"\(entry.rest.prefix(32))\": want bytes per second such as 20M")
            }
            rates[entry.name] = rate.bytes
        }
        return rates
    }

    /// SIGHUP: re-reads the credential files. A file that fails to parse is reported and the
    /// old list stays in force; a client whose token was removed loses its sessions.
    /// Loop 0 accepts every socket and hands each to the next loop's server, round-robin (the
    /// socket moves before anything is read from it).
    static func handOffAccepted(from https: [LoopBound<HTTPServer>], loops: [EventLoop]) {
        loops[0].runBlocking {
            var next = 0
            https[0].value.handOffAccepted = { connection in
                next = (next + 1) % https.count
                guard next != 0 else { return false }
                let target = https[next]
                return connection.migrate(to: target.loop) { moved in target.value.serveAccepted(moved) }
            }
        }
    }

    func reload(credentials: ClientCredentials?, access: ProxyAccess, admin: AdminAccess, peers peerSet: PeerSet, server: RemoteDialerServer, logger: Logger) {
        if let credentials {
            reloading(clientTokens, "client tokens", logger) { path in
                let file = try Self.credentials(path, needsRest: false, allowsRest: true)
                let rates = try Self.clientRates(file, path: path)
                let removed = credentials.replace(with: file)
                server.setBandwidthLimits(defaultRate: clientRate?.bytes, perClient: rates)
                server.closeClientSessions { !credentials.isListed($0) }
                return removed.isEmpty ? "" : "; revoked \(removed.sorted().joined(separator: ", "))"
            }
        }
        reloading(proxyTokens, "proxy tokens", logger) { access.replaceUsers(with: try Self.credentials($0, needsRest: true)); return "" }
        reloading(adminTokens, "admin tokens", logger) { admin.replaceUsers(with: try Self.credentials($0, needsRest: false)); return "" }
        reloading(peersFile, "peers", logger) { try peerSet.apply(try PeerSpec.parse(peers) + PeerSpec.parse(file: $0), to: server); return "" }
    }

    /// Re-reads one file with `install`, which returns a note for the log line; a file that
    /// fails to parse is reported and what was in force stays.
    private func reloading(_ path: String?, _ what: String, _ logger: Logger, _ install: (String) throws -> String) {
        guard let path else { return }
        do {
            let note = try install(path)
            logger.info("reloaded \(path)\(note)")
        } catch {
            logger.error("keeping the previous \(what): \(error)")
        }
    }
}

/// `id:token:url` items of `-peers`; the url itself contains colons.
struct PeerSpec: Equatable {
    let id: String
    let token: String
    let url: String

    static func parse(_ text: String) throws -> [PeerSpec] {
        try text.split(separator: ",").filter { !$0.isEmpty }.map { try item($0) }
    }

    static func item(_ item: Substring) throws -> PeerSpec {
        let parts = item.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw UsageError("bad peer \(item.split(separator: ":").first ?? ""): want id:token:url") }
        return PeerSpec(id: String(parts[0]), token: String(parts[1]), url: String(parts[2]))
    }

    /// `-peers-file`: one `id:token:url` a line, `#` comments; errors name the file and line.
    static func parse(file path: String) throws -> [PeerSpec] {
        var peers: [PeerSpec] = []
        for (index, raw) in try readTextFile(path).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = (raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? "").trimmingCharacters(in: " \t\r")
            guard !line.isEmpty else { continue }
            do { peers.append(try item(line)) } catch { throw UsageError("\(path):\(index + 1): \(error)") }
        }
        return peers
    }
}

/// The peers this server links to, so that a reload changes only what changed.
final class PeerSet {
    private var current: [String: PeerSpec] = [:]

    func apply(_ peers: [PeerSpec], to server: RemoteDialerServer) throws {
        for peer in peers { _ = try WebSocketURL(peer.url) }  // all valid, or nothing changes
        let wanted = Dictionary(peers.map { ($0.id, $0) }, uniquingKeysWith: { $1 })
        for id in current.keys where wanted[id] == nil { server.removePeer(id: id) }
        for (id, peer) in wanted where current[id] != peer { try server.addPeer(id: peer.id, token: peer.token, url: peer.url) }
        current = wanted
    }
}

extension AcceptDistribution: FlagValue {
    public static var flagTypeName: String { "reuseport|handoff" }
    public init?(argument: String) {
        switch argument {
        case "reuseport": self = .reusePort
        case "handoff": self = .handOff
        default: return nil
        }
    }
    public var description: String { self == .reusePort ? "reuseport" : "handoff" }
}

extension Substring {
    func trimmingCharacters(in set: String) -> Substring {
        var text = self
        while let first = text.first, set.contains(first) { text.removeFirst() }
        while let last = text.last, set.contains(last) { text.removeLast() }
        return text
    }
}

ServerCommand.main()
