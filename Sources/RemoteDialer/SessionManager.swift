import Reactor
import Tunnel

/// The sessions of one server by client key, split into client and peer sessions (PROTOCOL.md
/// §4). Loop-confined to the server's loop.
public final class SessionManager {
    private(set) var clients: [String: [TunnelSession]] = [:]
    private(set) var peers: [String: [TunnelSession]] = [:]
    /// Round-robin position per client key: new dials spread over a key's sessions (the Go
    /// server always takes the first).
    private var nextIndex: [String: Int] = [:]
    /// Told about every session as it comes and goes (the peer links announce them).
    var onSessionAdded: [(String, Int64) -> Void] = []
    var onSessionRemoved: [(String, Int64) -> Void] = []

    init() {}

    public var clientKeys: [String] { clients.keys.sorted() }
    public func hasSession(clientKey: String) -> Bool { !(clients[clientKey]?.isEmpty ?? true) }
    public func sessionCount(clientKey: String, peer: Bool) -> Int { (peer ? peers : clients)[clientKey]?.count ?? 0 }
    var everySession: [TunnelSession] { Array(clients.values.joined()) + Array(peers.values.joined()) }
    public var clientSessionCount: Int { clients.values.reduce(0) { $0 + $1.count } }
    public var sessionCount: Int { clients.values.reduce(0) { $0 + $1.count } + peers.values.reduce(0) { $0 + $1.count } }

    /// Every (clientKey, sessionKey) this server holds, clients and peers.
    var allSessions: [(String, Int64)] {
        (clients.flatMap { key, list in list.map { (key, $0.sessionKey) } }) + (peers.flatMap { key, list in list.map { (key, $0.sessionKey) } })
    }

    func add(_ session: TunnelSession, peer: Bool) {
        if peer { peers[session.clientKey, default: []].append(session) } else { clients[session.clientKey, default: []].append(session) }
        for listener in onSessionAdded { listener(session.clientKey, session.sessionKey) }
    }

    func remove(_ session: TunnelSession, peer: Bool) {
        let key = session.clientKey
        if peer {
            peers[key]?.removeAll { $0 === session }
            if peers[key]?.isEmpty == true { peers[key] = nil }
        } else {
            clients[key]?.removeAll { $0 === session }
            if clients[key]?.isEmpty == true { clients[key] = nil; nextIndex[key] = nil }
        }
        for listener in onSessionRemoved { listener(key, session.sessionKey) }
    }

    /// Dials through a client session of `clientKey`, else through a peer that announced it.
    public func dial(clientKey: String, proto: String, address: String) throws(DialError) -> TunnelConnection {
        if let sessions = clients[clientKey], !sessions.isEmpty {
            let index = (nextIndex[clientKey] ?? 0) % sessions.count
            nextIndex[clientKey] = index + 1
            do { return try sessions[index].dial(proto: proto, address: address) } catch { throw DialError(.session(error), "\(error)") }
        }
        for session in peers.values.joined() where session.canReach(clientKey: clientKey) {
            do { return try session.dial(proto: "\(clientKey)::\(proto)", address: address) } catch { throw DialError(.session(error), "\(error)") }
        }
        throw DialError(.noSession, "failed to find Session for client \(clientKey)")
    }

    /// Dials through this server's own client sessions only (what a peer's forwarded Connect uses,
    /// so two peers never bounce a Connect between them).
    func dialLocal(clientKey: String, proto: String, address: String) throws(DialError) -> TunnelConnection {
        guard hasSession(clientKey: clientKey) else { throw DialError(.noSession, "failed to find Session for client \(clientKey)") }
        return try dial(clientKey: clientKey, proto: proto, address: address)
    }
}
