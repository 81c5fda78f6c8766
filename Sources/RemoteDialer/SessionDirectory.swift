import Reactor

/// Which loop holds the sessions of each client key, for a server on several loops: the only
/// structure its loops share. Each loop writes its own sessions (and what its peer sessions
/// announced) as they come and go; a dial reads it once to find the loop to serve on. One
/// lock around a few dictionary operations per session event or dial, never per byte: measured
/// against the data path it does not show (README, "Every core").
public final class SessionDirectory: Sendable {
    /// A key's loops are an array with a loop's index once per session: a key has a few
    /// sessions, and a one-entry dictionary costs twice the memory of a one-entry array.
    private struct Entries {
        /// Client key → the loop of each client session of that key.
        var clients: [String: [Int]] = [:]
        /// Client key → the loop of each peer session that announced the key.
        var peerRoutes: [String: [Int]] = [:]
        /// Spreads dials of a key with sessions on several loops.
        var nextPick = 0
    }

    private let lock = Lock()
    private nonisolated(unsafe) var entries = Entries()  // guarded by `lock`

    public init() {}

    /// Each loop's server records its sessions (and its peer sessions' announcements) here as
    /// they come and go.
    public func addClient(_ clientKey: String, loop: Int) {
        lock.withLock { entries.clients[clientKey, default: []].append(loop) }
    }

    /// Adds a client session unless the key already has `maximum` on all loops together; the
    /// check and the add are one step, so sessions admitted at once on two loops cannot both
    /// pass a cap with one place left.
    public func addClient(_ clientKey: String, loop: Int, maximum: Int) -> Bool {
        lock.withLock {
            guard (entries.clients[clientKey]?.count ?? 0) < maximum else { return false }
            entries.clients[clientKey, default: []].append(loop)
            return true
        }
    }

    public func removeClient(_ clientKey: String, loop: Int) {
        lock.withLock { Self.decrement(&entries.clients, clientKey, loop) }
    }

    public func addPeerRoute(_ clientKey: String, loop: Int) {
        lock.withLock { entries.peerRoutes[clientKey, default: []].append(loop) }
    }

    public func removePeerRoute(_ clientKey: String, loop: Int) {
        lock.withLock { Self.decrement(&entries.peerRoutes, clientKey, loop) }
    }

    private static func decrement(_ table: inout [String: [Int]], _ key: String, _ loop: Int) {
        guard let index = table[key]?.firstIndex(of: loop) else { return }
        table[key]!.remove(at: index)
        if table[key]!.isEmpty { table[key] = nil }
    }

    /// The loop to dial `clientKey` from: `local` when it has a client session of the key, else
    /// another loop with one (spread over them), else a loop whose peer session reaches it
    /// (`local` first). Nil: nobody reaches the key.
    public func loopIndex(forClient clientKey: String, local: Int) -> Int? {
        lock.withLock {
            if let loops = entries.clients[clientKey], !loops.isEmpty {
                if loops.contains(local) { return local }
                entries.nextPick &+= 1
                let candidates = Set(loops).sorted()
                return candidates[entries.nextPick % candidates.count]
            }
            guard let routes = entries.peerRoutes[clientKey], !routes.isEmpty else { return nil }
            return routes.contains(local) ? local : routes.min()
        }
    }

    /// Client sessions of `clientKey` on every loop.
    public func sessionCount(clientKey: String) -> Int {
        lock.withLock { entries.clients[clientKey]?.count ?? 0 }
    }

    public func hasSession(clientKey: String) -> Bool { sessionCount(clientKey: clientKey) > 0 }

    /// A session (ours on any loop, or a peer's that announced it) reaches `clientKey`.
    public func canReach(clientKey: String) -> Bool {
        lock.withLock { entries.clients[clientKey] != nil || entries.peerRoutes[clientKey] != nil }
    }

    /// Every client key with a session here, sorted.
    public var clientKeys: [String] { lock.withLock { entries.clients.keys.sorted() } }

    /// Loops holding a session of `clientKey`, sorted (for tests and reports).
    public func loops(ofClient clientKey: String) -> [Int] {
        lock.withLock { Set(entries.clients[clientKey] ?? []).sorted() }
    }
}
