import ArgumentParser
import ProgramSupport
import Glibc
import Logging
import Reactor
import RemoteDialer
import TLS
import Tunnel

/// The bundled tunnel client; flags as the Go demo's (PROTOCOL.md §5), plus TLS and an allow list.
struct ClientCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remotedialer-client",
        abstract: "Reverse-tunnel client: connects out to the server and dials what the server asks for.")

    @Option(name: .goStyle("connect"), help: "Server connect URL")
    var connect = "ws://localhost:8123/connect"
    @Option(name: .goStyle("id"), help: "Client id (X-Tunnel-ID)")
    var id = "foo"
    @Flag(name: .goStyle("debug"), help: "Trace every tunnel message")
    var debug = false
    @Option(name: .goStyle("log-format"), help: "Log lines as text or json (one object a line: time, level, message and fields)")
    var logFormat = LogFormat.text
    @Option(name: .goStyle("ca"), help: "CA file to verify a wss:// server")
    var ca: String?
    @Flag(name: .goStyle("insecure"), help: "Skip TLS verification (labs only)")
    var insecure = false
    @Option(name: .goStyle("allow"),
            help: "Comma-separated proto/address patterns the server may dial (* wildcards), e.g. tcp/127.0.0.1:*; default: everything")
    var allow: String?
    @Option(name: .goStyle("token"), help: "Client token sent as X-API-Tunnel-Token (prefer the REMOTEDIALER_TOKEN environment variable: flags show in ps)")
    var token: String?
    @Option(name: .goStyle("cert"), help: "Client certificate chain (PEM) for a server that asks for one (mTLS)")
    var cert: String?
    @Option(name: .goStyle("key"), help: "Private key (PEM) of -cert")
    var key: String?

    func run() throws {
        settleMemoryAllocator()
        bootstrapLogging(debug: debug, format: logFormat)
        let logger = Logger(label: "remotedialer-client")
        let url = try WebSocketURL(connect)
        var tlsConfiguration = TLSConfiguration.client()
        tlsConfiguration.caFile = ca
        tlsConfiguration.insecureSkipVerify = insecure
        if (cert == nil) != (key == nil) { throw ValidationError("-cert and -key go together") }
        tlsConfiguration.certificateChainFile = cert
        tlsConfiguration.privateKeyFile = key
        if insecure { logger.warning("-insecure: the server's certificate is NOT verified") }
        let tls = try TLSContext(tlsConfiguration)
        let allowList = try allow.map { try AllowList($0) }
        if allowList == nil { logger.warning("no -allow given: the server may dial any address through this client") }

        let signals = SignalSource.block([SIGINT, SIGTERM])
        let loop = try EventLoop(name: "client")
        var options = ClientOptions()
        options.tunnel.traceMessages = debug
        options.tls = tls
        var headers = [(TunnelHeaders.clientID, id)]
        if let token = token ?? environmentVariable("REMOTEDIALER_TOKEN"), !token.isEmpty {
            headers.append((TunnelHeaders.clientToken, token))
        }
        let client = RemoteDialerClient(loop: loop, url: url, headers: headers, options: options,
                                        connectAuthorizer: { proto, address in
            let allowed = allowList?.allows(proto: proto, address: address) ?? true
            if !allowed { logger.warning("refused connect to \(proto)/\(address): not in -allow") }
            return allowed
        })
        try loop.run {
            _ = try loop.watchSignals(signals) { signal in
                logger.info("signal \(signal): shutting down")
                client.stop()
                loop.scheduleTimer(after: .milliseconds(200)) { loop.stop() }
            }
            client.start()
        }
    }
}

ClientCommand.main()
