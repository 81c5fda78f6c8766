import HTTP
import Reactor
import Tunnel

/// What one loop's server holds, copied out for the admin API's documents, which cover every
/// loop of a group: each loop takes its snapshot on its own thread (`gather`), the requester's
/// loop merges them.
struct ServerSnapshot: Sendable {
    struct Session: Sendable {
        let clientKey: String
        let sessionKey: Int64
        let remoteAddress: String
        let connectedAt: Int
        let connectionCount: Int
        /// Filled only for the client a report details.
        let connections: [Connection]
    }

    struct Connection: Sendable {
        let id: Int64
        let target: String
        let bytesToClient: Int
        let bytesFromClient: Int
    }

    struct Peer: Sendable {
        let id: String
        let url: String
        let connected: Bool
        let inbound: Bool
        let announced: Set<String>
    }

    let listenAddress: String
    let draining: Bool
    /// Client sessions (not peers).
    let sessions: [Session]
    let traffic: [String: ClientTraffic.Totals]
    let peers: [Peer]
}

extension RemoteDialerServer {
    /// This loop's part of a report; `detail`: the client whose connections are listed.
    func snapshot(detail: String? = nil) -> ServerSnapshot {
        loop.assertInLoop()
        let clientSessions = sessions.clients.flatMap { key, list in
            list.map { session in
                let origin = sessionOrigins[ObjectIdentifier(session)]
                return ServerSnapshot.Session(
                    clientKey: key, sessionKey: session.sessionKey, remoteAddress: origin?.remoteAddress ?? "",
                    connectedAt: origin?.connectedAt ?? 0, connectionCount: session.connectionCount,
                    connections: key != detail ? [] : session.openConnections.map { connection in
                        ServerSnapshot.Connection(id: connection.id, target: "\(connection.target.proto)/\(connection.target.address)",
                                                  bytesToClient: connection.statistics.bytesSent,
                                                  bytesFromClient: connection.statistics.bytesReceived)
                    })
            }
        }
        let peers = peerLinksByID.map { id, link in
            // A peer announces every session it holds, our own link to it included: not news.
            let announced = Set((sessions.peers[id] ?? []).flatMap { $0.remoteClients.filter { !$0.value.isEmpty }.keys })
                .subtracting([options.peerID])
            return ServerSnapshot.Peer(id: id, url: "\(link.url)", connected: link.isConnected,
                                       inbound: !(sessions.peers[id]?.isEmpty ?? true), announced: announced)
        }
        return ServerSnapshot(listenAddress: listenAddress, draining: isDraining, sessions: clientSessions,
                              traffic: traffic.clients, peers: peers)
    }

    /// Takes `snapshot(detail:)` on every loop of the group, each on its own thread, and calls
    /// `combine` here with them all.
    func gatherSnapshots(detail: String? = nil, _ combine: @escaping ([ServerSnapshot]) -> Void) {
        loop.assertInLoop()
        guard let members, members.all.count > 1 else { return combine([snapshot(detail: detail)]) }
        let all = members.all
        let collected = LoopBound(SnapshotCollector(count: all.count, combine: combine), loop: loop)
        for (index, member) in all.enumerated() {
            member.loop.execute {
                let part = member.value.snapshot(detail: detail)
                collected.loop.execute { collected.value.add(part, at: index) }
            }
        }
    }
}

/// Collects one snapshot per loop on the requester's loop, then combines them once.
private final class SnapshotCollector {
    private var parts: [ServerSnapshot?]
    private var missing: Int
    private let combine: ([ServerSnapshot]) -> Void

    init(count: Int, combine: @escaping ([ServerSnapshot]) -> Void) {
        parts = Array(repeating: nil, count: count)
        missing = count
        self.combine = combine
    }

    func add(_ part: ServerSnapshot, at index: Int) {
        parts[index] = part
        missing -= 1
        if missing == 0 { combine(parts.compactMap { $0 }) }
    }
}

/// The admin API's documents from the loops' snapshots: clients (with totals), one client's
/// sessions and connections, the peers.
enum ServerStatusReport {
    /// `GET /api/clients`: every client id with its sessions, addresses, connections, bytes each
    /// way, current rates and the last minute of throughput, plus totals.
    static func clients(_ parts: [ServerSnapshot], version: String) -> JSONValue {
        let sessions = Dictionary(grouping: parts.flatMap(\.sessions), by: \.clientKey)
        let traffic = mergedTraffic(parts)
        let keys = sessions.keys.sorted()
        let bytes = keys.compactMap { traffic[$0] }
        return .object([
            ("version", .string(version)),
            ("listenAddress", .string(parts.first?.listenAddress ?? "")),
            ("draining", .bool(parts.contains { $0.draining })),
            ("totals", .object([
                ("clients", .int(keys.count)),
                ("sessions", .int(sessions.values.reduce(0) { $0 + $1.count })),
                ("connections", .int(sessions.values.joined().reduce(0) { $0 + $1.connectionCount })),
                ("bytesToClients", .int(bytes.reduce(0) { $0 + $1.toClient })),
                ("bytesFromClients", .int(bytes.reduce(0) { $0 + $1.fromClient })),
                ("rateToClients", .int(bytes.reduce(0) { $0 + $1.rateToClient })),
                ("rateFromClients", .int(bytes.reduce(0) { $0 + $1.rateFromClient })),
            ])),
            ("clients", .array(keys.map { summary($0, sessions[$0] ?? [], traffic[$0]) })),
        ])
    }

    /// `GET /api/clients/{id}`: the summary plus each session and its open connections; nil if
    /// the client has no session here.
    static func client(_ clientKey: String, _ parts: [ServerSnapshot]) -> JSONValue? {
        let list = parts.flatMap(\.sessions).filter { $0.clientKey == clientKey }
        guard !list.isEmpty, case .object(var members) = summary(clientKey, list, mergedTraffic(parts)[clientKey]) else { return nil }
        members.append(("sessionList", .array(list.map { session in
            .object([
                ("sessionKey", .string(String(session.sessionKey))),
                ("remoteAddress", .string(session.remoteAddress)),
                ("connectedSince", .int(session.connectedAt)),
                ("connections", .array(session.connections.map { connection in
                    .object([
                        ("id", .int(Int(connection.id))),
                        ("target", .string(connection.target)),
                        ("bytesToClient", .int(connection.bytesToClient)),
                        ("bytesFromClient", .int(connection.bytesFromClient)),
                    ])
                })),
            ])
        })))
        return .object(members)
    }

    /// `GET /api/peers`: each configured peer, its link state (ours to it, from every loop;
    /// `inbound`: its to us) and the client ids it announced.
    static func peers(_ parts: [ServerSnapshot]) -> JSONValue {
        let byID = Dictionary(grouping: parts.flatMap(\.peers), by: \.id)
        return .object([("peers", .array(byID.keys.sorted().map { id in
            let links = byID[id]!
            return .object([
                ("id", .string(id)),
                ("url", .string(links[0].url)),
                ("state", .string(links.allSatisfy(\.connected) ? "connected" : "connecting")),
                ("inbound", .bool(links.contains(where: \.inbound))),
                ("announced", .array(links.reduce(into: Set<String>()) { $0.formUnion($1.announced) }.sorted().map { .string($0) })),
            ])
        }))])
    }

    private static func summary(_ clientKey: String, _ list: [ServerSnapshot.Session], _ totals: ClientTraffic.Totals?) -> JSONValue {
        let totals = totals ?? ClientTraffic.Totals()
        return .object([
            ("id", .string(clientKey)),
            ("sessions", .int(list.count)),
            ("remoteAddresses", .array(Set(list.map(\.remoteAddress)).sorted().map { .string($0) })),
            ("connectedSince", .int(list.map(\.connectedAt).min() ?? 0)),
            ("connections", .int(list.reduce(0) { $0 + $1.connectionCount })),
            ("bytesToClient", .int(totals.toClient)),
            ("bytesFromClient", .int(totals.fromClient)),
            ("rateToClient", .int(totals.rateToClient)),
            ("rateFromClient", .int(totals.rateFromClient)),
            ("history", .array(totals.history.map { .int($0) })),
        ])
    }

    /// A client with sessions on several loops: its counters added up, histories aligned on
    /// the latest second.
    private static func mergedTraffic(_ parts: [ServerSnapshot]) -> [String: ClientTraffic.Totals] {
        parts.reduce(into: [:]) { merged, part in
            for (key, totals) in part.traffic {
                guard var sum = merged[key] else { merged[key] = totals; continue }
                sum.toClient += totals.toClient
                sum.fromClient += totals.fromClient
                sum.rateToClient += totals.rateToClient
                sum.rateFromClient += totals.rateFromClient
                let length = max(sum.history.count, totals.history.count)
                let a = Array(repeating: 0, count: length - sum.history.count) + sum.history
                let b = Array(repeating: 0, count: length - totals.history.count) + totals.history
                sum.history = zip(a, b).map { $0 + $1 }
                merged[key] = sum
            }
        }
    }
}
