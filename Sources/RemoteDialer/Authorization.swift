import HTTP
import Reactor
import TLS

/// What an authorizer sees of a tunnel upgrade: the request head and the connection it came on
/// (as Go's Authorizer sees the whole `*http.Request`, TLS state and remote address included).
public struct TunnelUpgradeRequest: Sendable {
    public let head: HTTPRequestHead
    public let remoteAddress: SocketAddress?
    /// The client certificate, verified against the server's client CA (mutual TLS); nil when
    /// the connection is not TLS or no client certificate is required.
    public let peerCertificate: TLSPeerCertificate?

    public init(head: HTTPRequestHead, remoteAddress: SocketAddress?, peerCertificate: TLSPeerCertificate? = nil) {
        self.head = head
        self.remoteAddress = remoteAddress
        self.peerCertificate = peerCertificate
    }
}

/// An authorizer's answer about one upgrade.
public enum AuthorizationDecision: Sendable, Equatable {
    /// Admit the session under this client key.
    case accept(clientKey: String)
    /// Answer with this status and body (PROTOCOL.md §1: 400 with the error text, 401 when
    /// not authorized).
    case refuse(status: HTTPStatus, body: String)

    public static let unauthorized = AuthorizationDecision.refuse(status: .unauthorized, body: "failed authentication")
}

/// Decides about one upgrade by calling `decide` exactly once, now or later, from any thread
/// (e.g. after asking an identity service). The upgrade waits for it, bounded by the server's
/// head timeout; a requester that leaves meanwhile is simply gone when the answer comes.
public typealias Authorizer = @Sendable (_ request: TunnelUpgradeRequest, _ decide: @escaping @Sendable (AuthorizationDecision) -> Void) -> Void

/// Builds an `Authorizer` from a function that answers at once.
public func synchronousAuthorizer(_ decide: @escaping @Sendable (TunnelUpgradeRequest) -> AuthorizationDecision) -> Authorizer {
    { request, answer in answer(decide(request)) }
}

public enum TunnelHeaders {
    /// The bundled client's key header.
    public static let clientID = "X-Tunnel-ID"
    /// Peer servers' id and token headers; the token header also carries a client's token.
    public static let peerID = "X-API-Tunnel-ID"
    public static let peerToken = "X-API-Tunnel-Token"
    public static let clientToken = "X-API-Tunnel-Token"

    /// The Go demo's authorizer: the key is `X-Tunnel-ID`, admitted iff non-empty. Anyone can
    /// register as any client id with it.
    public static let clientIDAuthorizer: Authorizer = synchronousAuthorizer { request in
        let key = request.head.headers[clientID] ?? ""
        return key.isEmpty ? .unauthorized : .accept(clientKey: key)
    }
}
