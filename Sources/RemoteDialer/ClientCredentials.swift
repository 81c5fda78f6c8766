import HTTP
import Logging
import Reactor
import Tunnel

/// The bundled server's authorizer: clients prove who they are with a token from a file
/// (`X-API-Tunnel-Token`, as Rancher's agents send it) along with `X-Tunnel-ID`, or with a
/// client certificate verified by the TLS layer (its CN or a DNS name is the id; an
/// `X-Tunnel-ID` must agree), or both. The token list can be replaced while running (SIGHUP);
/// refusals are logged rate-limited with the remote address, never with the token.
public final class ClientCredentials: @unchecked Sendable {  // mutable state behind `lock`
    private let lock = Lock()
    private var tokens: CredentialsFile?
    private let requireCertificate: Bool
    private var refusalLog = LogThrottle()
    private let logger: Logger

    /// `tokens` nil: no token asked for; `requireCertificate`: the id comes from the client
    /// certificate (the server's TLS must require one, `TLSConfiguration.clientCAFile`).
    public init(tokens: CredentialsFile?, requireCertificate: Bool = false, logger: Logger = Logger(label: "remotedialer.auth")) {
        precondition(tokens != nil || requireCertificate, "ClientCredentials needs tokens, a certificate, or both")
        self.tokens = tokens
        self.requireCertificate = requireCertificate
        self.logger = logger
    }

    /// Installs a new token list; returns the client ids that lost their token.
    @discardableResult
    public func replace(with new: CredentialsFile) -> Set<String> {
        lock.withLock {
            let removed = Set(tokens?.names ?? []).subtracting(new.names)
            tokens = new
            return removed
        }
    }

    /// True if `clientID` has a token (or no tokens are asked for).
    public func isListed(_ clientID: String) -> Bool { lock.withLock { tokens?.contains(clientID) ?? true } }

    public var authorizer: Authorizer {
        { [self] request, answer in answer(decide(request)) }
    }

    func decide(_ request: TunnelUpgradeRequest) -> AuthorizationDecision {
        var clientID = request.head.headers[TunnelHeaders.clientID] ?? ""
        if requireCertificate {
            guard let certificate = request.peerCertificate else { return refuse(request, clientID, "client certificate required") }
            let names = [certificate.subjectCommonName].compactMap { $0 } + certificate.dnsNames
            if clientID.isEmpty {
                clientID = names.first ?? ""
            } else if !names.contains(clientID) {
                return refuse(request, clientID, "\(TunnelHeaders.clientID) does not match the client certificate")
            }
        }
        guard !clientID.isEmpty else { return refuse(request, clientID, "missing \(TunnelHeaders.clientID)") }
        guard let tokens = lock.withLock({ tokens }) else { return .accept(clientKey: clientID) }
        guard let token = request.head.headers[TunnelHeaders.clientToken], !token.isEmpty else {
            return refuse(request, clientID, "missing \(TunnelHeaders.clientToken)")
        }
        guard tokens.verify(name: clientID, token: token) else { return refuse(request, clientID, "wrong token or unknown client") }
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
