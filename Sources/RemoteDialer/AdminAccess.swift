import HTTP
import Reactor

/// Who may use the admin API and the status page. With admin users (`-admin-tokens`, `NAME
/// TOKEN` lines) a request carries `Authorization: Bearer TOKEN` (compared by digest in
/// constant time); without, only requesters from the allowed ranges (default: loopback) get in.
/// The users are replaceable while running (SIGHUP).
public final class AdminAccess: @unchecked Sendable {  // mutable state behind `lock`
    private let lock = Lock()
    private var users: CredentialsFile?
    private let allowFrom: AddressRanges

    public init(users: CredentialsFile? = nil, allowFrom: AddressRanges = .loopback) {
        self.users = users
        self.allowFrom = allowFrom
    }

    public func replaceUsers(with new: CredentialsFile) { lock.withLock { users = new } }

    /// True with admin users: requests are judged by token, not by address.
    public var requiresToken: Bool { lock.withLock { users != nil } }

    /// Nil if allowed, else the refusal to send.
    public func refusal(head: HTTPRequestHead, remoteAddress: SocketAddress?) -> (status: HTTPStatus, headers: HTTPHeaders, body: String)? {
        guard let users = lock.withLock({ self.users }) else {
            return allowFrom.contains(remoteAddress) ? nil
                : (.forbidden, HTTPHeaders(), "forbidden: \(remoteAddress.map { $0.host } ?? "this address") may not use the admin API\n")
        }
        let header = head.headers["Authorization"] ?? ""
        guard header.lowercased().hasPrefix("bearer "), let token = ProxyAccess.token(from: header) else {
            return (.unauthorized, ["WWW-Authenticate": "Bearer realm=\"remotedialer-admin\""], "unauthorized: send Authorization: Bearer TOKEN\n")
        }
        guard users.entry(withToken: token) != nil else {
            return (.unauthorized, ["WWW-Authenticate": "Bearer realm=\"remotedialer-admin\", error=\"invalid_token\""], "unauthorized: unknown token\n")
        }
        return nil
    }
}
