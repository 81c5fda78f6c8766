import HTTP

/// The admin API under `/api/`, behind `AdminAccess`:
/// `GET /api/clients`, `GET /api/clients/{id}`, `DELETE /api/clients/{id}` (closes that client's
/// sessions; it reconnects unless its token was revoked), `GET /api/peers`.
public struct AdminRoute {
    public static let prefix = "/api/"
    static let clientsPath = "/api/clients"

    let server: RemoteDialerServer
    let access: AdminAccess
    /// This build's version, shown in reports.
    let version: String

    public init(server: RemoteDialerServer, access: AdminAccess, version: String) {
        self.server = server
        self.access = access
        self.version = version
    }

    /// Answers `exchange` with its refusal and returns false if the requester may not administer.
    public func admits(_ exchange: HTTPServerExchange) -> Bool {
        guard let refusal = access.refusal(head: exchange.head, remoteAddress: exchange.remoteAddress) else { return true }
        exchange.respond(refusal.status, headers: refusal.headers, body: refusal.body)
        return false
    }

    public func handle(_ exchange: HTTPServerExchange) {
        guard admits(exchange) else { return }
        let path = exchange.head.path
        let method = exchange.head.method
        let reading = method == "GET" || method == "HEAD"
        if path == Self.clientsPath || path == "/api/peers" {
            guard reading else { return notAllowed(exchange, allow: "GET, HEAD") }
            let clients = path == Self.clientsPath
            return server.gatherSnapshots { parts in
                respond(exchange, clients ? ServerStatusReport.clients(parts, version: version) : ServerStatusReport.peers(parts))
            }
        }
        guard path.hasPrefix(Self.clientsPath + "/"), case let clientKey = String(path.dropFirst(Self.clientsPath.count + 1)),
              !clientKey.isEmpty, !clientKey.contains("/") else {
            return respond(exchange, .object([("error", .string("no such API"))]), status: .notFound)
        }
        let unknown = JSONValue.object([("error", .string("no session for client \(clientKey)"))])
        switch method {
        case "GET", "HEAD":
            server.gatherSnapshots(detail: clientKey) { parts in
                guard let report = ServerStatusReport.client(clientKey, parts) else { return respond(exchange, unknown, status: .notFound) }
                respond(exchange, report)
            }
        case "DELETE":
            let closed = server.disconnectClient(clientKey)
            guard closed > 0 else { return respond(exchange, unknown, status: .notFound) }
            respond(exchange, .object([("id", .string(clientKey)), ("closedSessions", .int(closed))]))
        default:
            notAllowed(exchange, allow: "DELETE, GET, HEAD")
        }
    }

    private func respond(_ exchange: HTTPServerExchange, _ document: JSONValue, status: HTTPStatus = .ok) {
        exchange.respond(status, headers: ["Content-Type": "application/json", "Cache-Control": "no-store"], body: document.serialized + "\n")
    }

    private func notAllowed(_ exchange: HTTPServerExchange, allow: String) {
        exchange.respond(.methodNotAllowed, headers: ["Allow": allow], body: "method not allowed\n")
    }
}
