import ArgumentParser
import ProgramSupport
import Glibc
import HTTP
import Logging
import Metrics
import Prometheus
import Reactor
import RemoteDialer
import TLS

/// The bundled tunnel server; flags as the Go demo's (PROTOCOL.md §5), plus TLS and metrics.
struct ServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remotedialer-server",
        abstract: "Reverse-tunnel server: clients connect to /connect; /client/{id}/{scheme}/{host}/{path} goes through them.")

    @Option(name: .goStyle("listen"), help: "Listen address")
    var listen = ":8123"
    @Option(name: .goStyle("id"), help: "Peer id of this server (HA)")
    var id = ""
    @Option(name: .goStyle("token"), help: "Peer token (HA)")
    var token = ""
    @Option(name: .goStyle("peers"), help: "Peers: id:token:url,id:token:url")
    var peers = ""
    @Flag(name: .goStyle("debug"), help: "Trace every tunnel message")
    var debug = false
    @Option(name: .goStyle("cert"), help: "TLS certificate chain (PEM) to serve HTTPS")
    var cert: String?
    @Option(name: .goStyle("key"), help: "TLS private key (PEM)")
    var key: String?
    @Option(name: .goStyle("peer-ca"), help: "CA file to verify wss:// peers (default: system roots)")
    var peerCA: String?
    @Flag(name: .goStyle("peer-insecure"), help: "Skip TLS verification of peers (labs only)")
    var peerInsecure = false
    @Option(name: .goStyle("upstream-ca"), help: "CA file to verify https targets of /client/... (default: system roots)")
    var upstreamCA: String?

    // Limits and timeouts (README: "Limits and timeouts").
    @Option(name: .goStyle("head-timeout"), help: "Time to receive a request head (and answer an upgrade); then 408")
    var headTimeout = FlagDuration(argument: "10s")!
    @Option(name: .goStyle("keepalive-timeout"), help: "Idle time allowed between requests on a kept-alive connection")
    var keepAliveTimeout = FlagDuration(argument: "60s")!
    @Option(name: .goStyle("body-timeout"), help: "Time a request body may send nothing, or a response sit untaken")
    var bodyTimeout = FlagDuration(argument: "60s")!
    @Option(name: .goStyle("max-proxy-timeout"), help: "Largest ?timeout= a /client/... request may ask for")
    var maxProxyTimeout = FlagDuration(argument: "10m")!
    @Option(name: .goStyle("max-connections"), help: "Concurrent HTTP connections (default: from the fd limit); at the limit accepting pauses")
    var maxConnections: Int?
    @Option(name: .goStyle("max-sessions-per-client"), help: "Sessions one client id may hold; more get 429")
    var maxSessionsPerClient = 64
    @Option(name: .goStyle("max-connections-per-session"), help: "Tunnelled connections one session may hold")
    var maxConnectionsPerSession = 65_536
    @Option(name: .goStyle("max-peer-clients"), help: "Client keys one peer may announce")
    var maxPeerClients = 100_000
    @Option(name: .goStyle("max-write-queue"), help: "Bytes queued for one peer that does not read; past it the connection (and its session) is closed")
    var maxWriteQueue = FlagBytes(argument: "16M")!
    @Option(name: .goStyle("max-buffered"), help: "Bytes buffered by all sessions together; past it the largest are closed first")
    var maxBuffered = FlagBytes(argument: "1G")!

    func run() throws {
        bootstrapLogging(debug: debug)
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let logger = Logger(label: "remotedialer-server")
        if (cert == nil) != (key == nil) { throw ValidationError("-cert and -key go together") }
        let serving = try cert.map { try TLSContext(.server(certificateChainFile: $0, privateKeyFile: key!)) }
        var peerConfiguration = TLSConfiguration.client()
        peerConfiguration.caFile = peerCA
        peerConfiguration.insecureSkipVerify = peerInsecure
        if peerInsecure { logger.warning("-peer-insecure: peer certificates are NOT verified") }
        let peerTLS = try TLSContext(peerConfiguration)
        var upstreamConfiguration = TLSConfiguration.client()
        upstreamConfiguration.caFile = upstreamCA
        let upstreamTLS = try TLSContext(upstreamConfiguration)
        let address = try SocketAddress(listen)
        let peerList = try PeerSpec.parse(peers)

        // Signals become loop events: block them before any thread starts.
        let signals = SignalSource.block([SIGINT, SIGTERM])
        let loop = try EventLoop(name: "server")
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
        var timeouts = HTTPTimeouts()
        timeouts.head = headTimeout.duration
        timeouts.keepAliveIdle = keepAliveTimeout.duration
        timeouts.bodyIdle = bodyTimeout.duration
        var listenOptions = ListenOptions()
        listenOptions.connection.writeQueueLimit = maxWriteQueue.bytes
        if let maxConnections, maxConnections < 1 { throw ValidationError("-max-connections must be positive") }
        let server = RemoteDialerServer(loop: loop, options: options)
        let clientRoute = ClientRoute(server: server)
        var router = HTTPRouter()
        router.add("/connect") { server.handleConnect($0) }
        router.add(prefix: ClientRoute.prefix) { clientRoute.handle($0) }
        router.add("/healthz") { $0.respond(.ok, body: "ok\n") }
        router.add("/metrics") { exchange in
            var bytes: [UInt8] = []
            registry.emit(into: &bytes)
            exchange.respond(.ok, headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"], body: String(decoding: bytes, as: UTF8.self))
        }
        let http = HTTPServer(loop: loop, timeouts: timeouts, maxConnections: maxConnections ?? HTTPServer.defaultMaxConnections) { [router] in router.route($0) }
        if let serving {
            http.wrapAccepted = { (connection: Connection) -> (any ByteStream)? in
                do { return try TLSStream(wrapping: connection, context: serving, role: .server) } catch {
                    logger.error("TLS: \(error)")
                    return nil
                }
            }
        }
        try loop.run {
            let bound = try http.listen(on: address, options: listenOptions)
            logger.info("listening on \(bound)\(serving == nil ? "" : " (TLS)") (at most \(http.maxConnections) connections)")
            for peer in peerList { try server.addPeer(id: peer.id, token: peer.token, url: peer.url) }
            _ = try loop.watchSignals(signals) { signal in
                logger.info("signal \(signal): shutting down")
                http.close()
                server.shutdown()
                // Let the Error EOF and Close frames flush.
                loop.scheduleTimer(after: .milliseconds(200)) { loop.stop() }
            }
        }
    }
}

/// `id:token:url` items of `-peers`; the url itself contains colons.
struct PeerSpec {
    let id: String
    let token: String
    let url: String

    static func parse(_ text: String) throws -> [PeerSpec] {
        try text.split(separator: ",").filter { !$0.isEmpty }.map { item in
            let parts = item.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { throw ValidationError("bad peer \(item): want id:token:url") }
            return PeerSpec(id: String(parts[0]), token: String(parts[1]), url: String(parts[2]))
        }
    }
}

ServerCommand.main()
