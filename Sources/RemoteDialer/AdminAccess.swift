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

    /// A Host header naming an IP address or localhost (with or without a port); none at all
    /// (HTTP/1.0) is let through.
    static func namesThisMachine(host: String?) -> Bool {
        guard let host, !host.isEmpty else { return true }
        let name: Substring
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            name = host[host.index(after: host.startIndex)..<close]
        } else if let colon = host.lastIndex(of: ":"), host.firstIndex(of: ":") == colon {
            name = host[..<colon]
        } else {
            name = Substring(host)
        }
        return name.lowercased() == "localhost" || AddressRanges.bytes(of: String(name)) != nil
    }

    /// Nil if allowed, else the refusal to send.
    public func refusal(head: HTTPRequestHead, remoteAddress: SocketAddress?) -> (status: HTTPStatus, headers: HTTPHeaders, body: String)? {
        guard let users = lock.withLock({ self.users }) else {
            guard allowFrom.contains(remoteAddress) else {
                return (.forbidden, HTTPHeaders(), "forbidden: \(remoteAddress.map { $0.host } ?? "this address") may not use the admin API\n")
            }
            // Without tokens the address is the credential, and a web page whose name was made
            // to resolve to 127.0.0.1 (DNS rebinding) comes from loopback too: its Host header
            // is its own name, so only addresses and localhost are accepted.
            guard Self.namesThisMachine(host: head.headers["Host"]) else {
                return (.forbidden, HTTPHeaders(), "forbidden: the admin API answers requests for an address or localhost only\n")
            }
            return nil
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
