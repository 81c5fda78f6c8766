import Digest
import HTTP
import Reactor
import Tunnel

/// Who may use the `/client/{id}/...` route. With proxy users (`-proxy-tokens`), a request
/// carries `Authorization: Bearer TOKEN` (or Basic with the token as password) and may reach
/// only the client ids its user's patterns name; without users, only requesters from the
/// allowed address ranges get in. Replaceable while running (SIGHUP).
public final class ProxyAccess: @unchecked Sendable {  // mutable state behind `lock`
    public enum Decision {
        /// Allowed; `consumedAuthorization` says the Authorization header was our credential
        /// and must not be forwarded to the target.
        case allowed(consumedAuthorization: Bool)
        case refused(status: HTTPStatus, headers: HTTPHeaders, body: String)
    }

    private let lock = Lock()
    private var users: CredentialsFile?
    private var allowFrom: AddressRanges

    /// `users` nil: address ranges only (default: loopback).
    public init(users: CredentialsFile? = nil, allowFrom: AddressRanges = .loopback) {
        self.users = users
        self.allowFrom = allowFrom
    }

    public func replaceUsers(with new: CredentialsFile) { lock.withLock { users = new } }

    /// What the access rules say about a requester, whatever the entry point (the `/client/`
    /// route, HTTP CONNECT, SOCKS5); each entry point answers it in its own protocol.
    public enum Verdict: Equatable {
        /// Allowed; `byToken` says a proxy token admitted it (so the credential was ours).
        case allowed(byToken: Bool)
        /// Proxy users are configured and no token came.
        case missingToken
        case unknownToken
        /// A valid token whose user's patterns do not name the client.
        case outOfScope(user: String)
        /// No proxy users, and the address is outside the allowed ranges.
        case addressNotAllowed
    }

    /// The rules applied to `token` (nil: none sent) from `remoteAddress`, to reach `clientKey`.
    public func verdict(token: String?, remoteAddress: SocketAddress?, clientKey: String) -> Verdict {
        let (users, allowFrom) = lock.withLock { (self.users, self.allowFrom) }
        guard let users else { return allowFrom.contains(remoteAddress) ? .allowed(byToken: false) : .addressNotAllowed }
        guard let token else { return .missingToken }
        guard let user = users.entry(withToken: token) else { return .unknownToken }
        let patterns = user.rest.split(separator: ",").map { Array($0.utf8)[...] }
        guard patterns.contains(where: { AllowList.matches($0, Array(clientKey.utf8)[...]) }) else { return .outOfScope(user: user.name) }
        return .allowed(byToken: true)
    }

    /// The `/client/{id}/...` route's answer: 401 with a Bearer challenge, or 403.
    public func decide(head: HTTPRequestHead, remoteAddress: SocketAddress?, clientKey: String) -> Decision {
        switch verdict(token: Self.token(from: head.headers["Authorization"]), remoteAddress: remoteAddress, clientKey: clientKey) {
        case .allowed(let byToken): .allowed(consumedAuthorization: byToken)
        case .missingToken:
            .refused(status: .unauthorized, headers: ["WWW-Authenticate": "Bearer realm=\"remotedialer\""],
                     body: "unauthorized: send Authorization: Bearer TOKEN\n")
        case .unknownToken:
            .refused(status: .unauthorized, headers: ["WWW-Authenticate": "Bearer realm=\"remotedialer\", error=\"invalid_token\""],
                     body: "unauthorized: unknown token\n")
        case .outOfScope(let user): .refused(status: .forbidden, headers: HTTPHeaders(), body: "forbidden: \(user) may not reach client \(clientKey)\n")
        case .addressNotAllowed:
            .refused(status: .forbidden, headers: HTTPHeaders(), body: "forbidden: \(remoteAddress.map { $0.host } ?? "this address") may not use /client/\n")
        }
    }

    /// `Bearer TOKEN`, or `Basic base64(anything:TOKEN)`.
    static func token(from header: String?) -> String? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2 else { return nil }
        switch parts[0].lowercased() {
        case "bearer": return String(parts[1]).trimmingSpaces()
        case "basic": return basicCredentials(String(parts[1]))?.password
        default: return nil
        }
    }

    /// `base64(user:password)`, the value of a Basic credential after its scheme.
    static func basicCredentials(_ encoded: String) -> (user: String, password: String)? {
        guard let decoded = Digest.base64Decode(encoded.trimmingSpaces()),
              let colon = decoded.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        return (String(decoding: decoded[..<colon], as: UTF8.self), String(decoding: decoded[(colon + 1)...], as: UTF8.self))
    }
}
