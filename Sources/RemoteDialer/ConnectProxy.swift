import HTTP
import Reactor
import Tunnel

/// `CONNECT host:port` on the server's own listener: `Proxy-Authorization: Basic
/// base64(CLIENT-ID:TOKEN)` names the client that dials `host:port` (the proxy route's token
/// and scope rules, `ProxyAccess`); the answer is 200 and the requester's stream is spliced
/// with the tunnelled connection, back-pressure both ways. 407 without credentials (or with an
/// unknown token), 403 out of scope, 502 with the dial error when no session leads to the
/// client or the client refuses (within `dialWait`, see `DialOutcomeWatch`).
public struct ConnectProxy {
    let server: RemoteDialerServer
    public let access: ProxyAccess
    /// How long to wait for the client's refusal before answering 200.
    public let dialWait: Duration
    static let challenge: HTTPHeaders = ["Proxy-Authenticate": "Basic realm=\"remotedialer\""]

    public init(server: RemoteDialerServer, access: ProxyAccess, dialWait: Duration = .milliseconds(250)) {
        self.server = server
        self.access = access
        self.dialWait = dialWait
    }

    public func handle(_ exchange: HTTPServerExchange) {
        guard let target = TargetAddress(authority: exchange.head.target) else {
            return exchange.respond(.badRequest, body: "CONNECT wants host:port, got \"\(exchange.head.target.prefix(64))\"\n")
        }
        guard let credential = exchange.head.headers["Proxy-Authorization"].flatMap(Self.basicCredentials), !credential.user.isEmpty else {
            return exchange.respond(.proxyAuthenticationRequired, headers: Self.challenge,
                                    body: "proxy authentication required: Proxy-Authorization: Basic base64(CLIENT-ID:TOKEN)\n")
        }
        let clientKey = credential.user
        switch access.verdict(token: credential.password, remoteAddress: exchange.remoteAddress, clientKey: clientKey) {
        case .allowed: break
        case .missingToken, .unknownToken:
            return exchange.respond(.proxyAuthenticationRequired, headers: Self.challenge, body: "proxy authentication required: unknown token\n")
        case .outOfScope(let user):
            return exchange.respond(.forbidden, body: "forbidden: \(user) may not reach client \(clientKey)\n")
        case .addressNotAllowed:
            return exchange.respond(.forbidden, body: "forbidden: \(exchange.remoteAddress.map { $0.host } ?? "this address") may not use CONNECT\n")
        }
        if server.movedToSessionLoop(exchange, clientKey: clientKey) { return }
        let connection: TunnelConnection
        do { connection = try server.dial(clientKey: clientKey, address: target.description) } catch {
            return exchange.respond(.badGateway, body: "\(error)\n")
        }
        // The requester hung up while we waited: the watch hears the close and nothing answers.
        exchange.onAbort = { _ in connection.close() }
        DialOutcomeWatch(connection, wait: dialWait) { outcome in
            switch outcome {
            case .refused(let error):
                exchange.respond(.badGateway, body: "\(error)\n")
            case .open:
                guard let requester = exchange.upgrade(HTTPResponseHead(status: .ok)) else { return connection.close() }
                _ = StreamRelay(requester, connection)
            }
        }
    }

    /// `Basic base64(user:password)`.
    static func basicCredentials(_ header: String) -> (user: String, password: String)? {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic" else { return nil }
        return ProxyAccess.basicCredentials(String(parts[1]))
    }
}
