import HTTP
import Tunnel

/// The admin API's documents, read from the server's session directory and traffic counters:
/// clients (with totals), one client's sessions and connections, the peers.
extension RemoteDialerServer {
    /// `GET /api/clients`: every client id with its sessions, addresses, connections, bytes each
    /// way, current rates and the last minute of throughput, plus totals.
    public func clientsReport(version: String) -> JSONValue {
        loop.assertInLoop()
        let clients = sessions.clientKeys.map { clientSummary($0) }
        let totals = sessions.clientKeys.reduce(into: (sessions: 0, connections: 0)) { totals, key in
            let list = sessions.clients[key] ?? []
            totals.sessions += list.count
            totals.connections += list.reduce(0) { $0 + $1.connectionCount }
        }
        let bytes = sessions.clientKeys.compactMap { traffic.clients[$0] }
        return .object([
            ("version", .string(version)),
            ("listenAddress", .string(listenAddress)),
            ("draining", .bool(isDraining)),
            ("totals", .object([
                ("clients", .int(clients.count)),
                ("sessions", .int(totals.sessions)),
                ("connections", .int(totals.connections)),
                ("bytesToClients", .int(bytes.reduce(0) { $0 + $1.toClient })),
                ("bytesFromClients", .int(bytes.reduce(0) { $0 + $1.fromClient })),
                ("rateToClients", .int(bytes.reduce(0) { $0 + $1.rateToClient })),
                ("rateFromClients", .int(bytes.reduce(0) { $0 + $1.rateFromClient })),
            ])),
            ("clients", .array(clients)),
        ])
    }

    /// `GET /api/clients/{id}`: the summary plus each session and its open connections; nil if
    /// the client has no session here.
    public func clientReport(_ clientKey: String) -> JSONValue? {
        loop.assertInLoop()
        guard let list = sessions.clients[clientKey], !list.isEmpty, case .object(var members) = clientSummary(clientKey) else { return nil }
        members.append(("sessionList", .array(list.map { session in
            let origin = sessionOrigins[ObjectIdentifier(session)]
            return .object([
                ("sessionKey", .string(String(session.sessionKey))),
                ("remoteAddress", .string(origin?.remoteAddress ?? "")),
                ("connectedSince", .int(origin?.connectedAt ?? 0)),
                ("connections", .array(session.openConnections.map { connection in
                    .object([
                        ("id", .int(Int(connection.id))),
                        ("target", .string("\(connection.target.proto)/\(connection.target.address)")),
                        ("bytesToClient", .int(connection.statistics.bytesSent)),
                        ("bytesFromClient", .int(connection.statistics.bytesReceived)),
                    ])
                })),
            ])
        })))
        return .object(members)
    }

    /// `GET /api/peers`: each configured peer, its link state (ours to it; `inbound`: its to us)
    /// and the client ids it announced.
    public func peersReport() -> JSONValue {
        loop.assertInLoop()
        return .object([("peers", .array(peerLinksByID.keys.sorted().map { id in
            let link = peerLinksByID[id]!
            // A peer announces every session it holds, our own link to it included: not news.
            let announced = Set((sessions.peers[id] ?? []).flatMap { $0.remoteClients.filter { !$0.value.isEmpty }.keys })
                .subtracting([options.peerID])
            return .object([
                ("id", .string(id)),
                ("url", .string("\(link.url)")),
                ("state", .string(link.isConnected ? "connected" : "connecting")),
                ("inbound", .bool(!(sessions.peers[id]?.isEmpty ?? true))),
                ("announced", .array(announced.sorted().map { .string($0) })),
            ])
        }))])
    }

    private func clientSummary(_ clientKey: String) -> JSONValue {
        let list = sessions.clients[clientKey] ?? []
        let origins = list.compactMap { sessionOrigins[ObjectIdentifier($0)] }
        let totals = traffic.clients[clientKey] ?? ClientTraffic.Totals()
        return .object([
            ("id", .string(clientKey)),
            ("sessions", .int(list.count)),
            ("remoteAddresses", .array(Set(origins.map(\.remoteAddress)).sorted().map { .string($0) })),
            ("connectedSince", .int(origins.map(\.connectedAt).min() ?? 0)),
            ("connections", .int(list.reduce(0) { $0 + $1.connectionCount })),
            ("bytesToClient", .int(totals.toClient)),
            ("bytesFromClient", .int(totals.fromClient)),
            ("rateToClient", .int(totals.rateToClient)),
            ("rateFromClient", .int(totals.rateFromClient)),
            ("history", .array(totals.history.map { .int($0) })),
        ])
    }
}
