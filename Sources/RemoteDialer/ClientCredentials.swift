import HTTP
import Logging
import Reactor
import Tunnel

/// The bundled server's authorizer: clients prove who they are with a token from a file
/// (`X-API-Tunnel-Token`, as Rancher's agents send it) along with `X-Tunnel-ID`. The token list
/// can be replaced while running (SIGHUP); refusals are logged rate-limited with the remote
/// address, never with the token.
public final class ClientCredentials: @unchecked Sendable {  // mutable state behind `lock`
    private let lock = Lock()
    private var tokens: CredentialsFile
    private var refusalLog = LogThrottle()
    private let logger: Logger

    public init(tokens: CredentialsFile, logger: Logger = Logger(label: "remotedialer.auth")) {
        self.tokens = tokens
        self.logger = logger
    }

    /// Installs a new token list; returns the client ids that lost their token.
    @discardableResult
    public func replace(with new: CredentialsFile) -> Set<String> {
        lock.withLock {
            let removed = Set(tokens.names).subtracting(new.names)
            tokens = new
            return removed
        }
    }

    public func isListed(_ clientID: String) -> Bool { lock.withLock { tokens.contains(clientID) } }

    public var authorizer: Authorizer {
        { [self] request, answer in answer(decide(request)) }
    }

    func decide(_ request: TunnelUpgradeRequest) -> AuthorizationDecision {
        let clientID = request.head.headers[TunnelHeaders.clientID] ?? ""
        guard !clientID.isEmpty else { return refuse(request, clientID, "missing \(TunnelHeaders.clientID)") }
        guard let token = request.head.headers[TunnelHeaders.clientToken], !token.isEmpty else {
            return refuse(request, clientID, "missing \(TunnelHeaders.clientToken)")
        }
        guard lock.withLock({ tokens.verify(name: clientID, token: token) }) else {
            return refuse(request, clientID, "wrong token or unknown client")
        }
        return .accept(clientKey: clientID)
    }

    private func refuse(_ request: TunnelUpgradeRequest, _ clientID: String, _ reason: String) -> AuthorizationDecision {
        if let suppressed = lock.withLock({ refusalLog.admit(now: MonotonicClock.now()) }) {
            let from = request.remoteAddress.map { "\($0)" } ?? "?"
            logger.warning("refused client \(clientID.prefix(64).debugDescription) from \(from): \(reason)\(suppressed > 0 ? " (\(suppressed) more refusals suppressed)" : "")")
        }
        return .refuse(status: .unauthorized, body: "failed authentication: \(reason)\n")
    }
}
