import HTTP

/// What an application authorizer decides about a tunnel upgrade request (PROTOCOL.md §1):
/// an error answers 400 with its text, not authorized answers 401 "failed authentication".
public struct Authorization: Sendable {
    public var clientKey: String
    public var authorized: Bool
    public var error: String?

    public init(clientKey: String, authorized: Bool, error: String? = nil) {
        self.clientKey = clientKey
        self.authorized = authorized
        self.error = error
    }
}

public typealias Authorizer = @Sendable (HTTPRequestHead) -> Authorization

public enum TunnelHeaders {
    /// The bundled client's key header.
    public static let clientID = "X-Tunnel-ID"
    /// Peer servers' id and token headers.
    public static let peerID = "X-API-Tunnel-ID"
    public static let peerToken = "X-API-Tunnel-Token"

    /// The bundled server's authorizer: the key is `X-Tunnel-ID`, authorized iff non-empty.
    public static let clientIDAuthorizer: Authorizer = { head in
        let key = head.headers[clientID] ?? ""
        return Authorization(clientKey: key, authorized: !key.isEmpty)
    }
}
