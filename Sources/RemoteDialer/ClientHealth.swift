import HTTP

/// `GET /client/{id}/healthz[?name=N]` (the seed demo's per-client health): answers from the
/// session directory, dialling nothing, whether client `{id}` is reachable from this server,
/// directly or through a peer. 200 with the seed's line
/// `addrss:<listen address> receive name=<N> from client:<id>`, else 503 with the reason.
/// `ClientRoute` sends it here after the same access check as the proxy.
enum ClientHealth {
    /// The echoed `name` is the requester's: printable ASCII only, at most this long.
    static let maxNameLength = 100

    static func respond(_ exchange: HTTPServerExchange, clientKey: String, server: RemoteDialerServer) {
        guard server.canReach(clientKey: clientKey) else {
            return exchange.respond(.serviceUnavailable, body: "failed to find Session for client \(clientKey)\n")
        }
        let name = String(decoding: (exchange.head.queryParameter("name") ?? "").utf8.prefix(maxNameLength).filter { $0 >= 0x20 && $0 < 0x7F },
                          as: UTF8.self)
        exchange.respond(.ok, body: "addrss:\(server.listenAddress) receive name=\(name) from client:\(clientKey)\n")
    }
}
