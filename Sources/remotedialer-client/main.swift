import ProgramSupport
import Glibc
import Logging
import Reactor
import RemoteDialer
import TLS
import Tunnel

/// The bundled tunnel client; flags as the Go demo's (PROTOCOL.md §5), plus TLS and an allow list.
struct ClientCommand: Command {
    var connect = "ws://localhost:8123/connect"
    var id = "foo"
    var debug = false
    var logFormat = LogFormat.text
    var ca: String?
    var insecure = false
    var allow: String?
    var token: String?
    var cert: String?
    var key: String?

    static var flags: FlagSet<ClientCommand> {
        var flags = FlagSet<ClientCommand>(commandName: "remotedialer-client",
            abstract: "Reverse-tunnel client: connects out to the server and dials what the server asks for.")
        flags.option("connect", \.connect, help: "Server connect URL")
        flags.option("id", \.id, help: "Client id (X-Tunnel-ID)")
        flags.flag("debug", \.debug, help: "Trace every tunnel message")
        flags.option("log-format", \.logFormat, help: "Log lines as text or json (one object a line: time, level, message and fields)")
        flags.option("ca", \.ca, help: "CA file to verify a wss:// server")
        flags.flag("insecure", \.insecure, help: "Skip TLS verification (labs only)")
        flags.option("allow", \.allow, help: "Comma-separated proto/address patterns the server may dial (* wildcards), e.g. tcp/127.0.0.1:*; default: everything")
        flags.option("token", \.token, help: "Client token sent as X-API-Tunnel-Token (prefer the REMOTEDIALER_TOKEN environment variable: flags show in ps)")
        flags.option("cert", \.cert, help: "Client certificate chain (PEM) for a server that asks for one (mTLS)")
        flags.option("key", \.key, help: "Private key (PEM) of -cert")
        return flags
    }

    func run() throws {
        settleMemoryAllocator()
        bootstrapLogging(debug: debug, format: logFormat)
        let logger = Logger(label: "remotedialer-client")
        let url = try WebSocketURL(connect)
        var tlsConfiguration = TLSConfiguration.client()
        tlsConfiguration.caFile = ca
        tlsConfiguration.insecureSkipVerify = insecure
        if (cert == nil) != (key == nil) { throw UsageError("-cert and -key go together") }
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
