import Reactor

/// Which loop holds the sessions of each client key, for a server on several loops: the only
/// structure its loops share. Each loop writes its own sessions (and what its peer sessions
/// announced) as they come and go; a dial reads it once to find the loop to serve on. One
/// lock around a few dictionary operations per session event or dial, never per byte: measured
/// against the data path it does not show (README, "Every core").
public final class SessionDirectory: Sendable {
    private struct Entries {
        /// Client key → loop index → client sessions of that key on that loop.
        var clients: [String: [Int: Int]] = [:]
        /// Client key → loop index → peer sessions on that loop that announced the key.
        var peerRoutes: [String: [Int: Int]] = [:]
        /// Spreads dials of a key with sessions on several loops.
        var nextPick = 0
    }

    private let lock = Lock()
    private nonisolated(unsafe) var entries = Entries()  // guarded by `lock`

    public init() {}

    /// Each loop's server records its sessions (and its peer sessions' announcements) here as
    /// they come and go.
    public func addClient(_ clientKey: String, loop: Int) {
        lock.withLock { entries.clients[clientKey, default: [:]][loop, default: 0] += 1 }
    }

    /// Adds a client session unless the key already has `maximum` on all loops together; the
    /// check and the add are one step, so sessions admitted at once on two loops cannot both
    /// pass a cap with one place left.
    public func addClient(_ clientKey: String, loop: Int, maximum: Int) -> Bool {
        lock.withLock {
            guard (entries.clients[clientKey]?.values.reduce(0, +) ?? 0) < maximum else { return false }
            entries.clients[clientKey, default: [:]][loop, default: 0] += 1
            return true
        }
    }

    public func removeClient(_ clientKey: String, loop: Int) {
        lock.withLock { Self.decrement(&entries.clients, clientKey, loop) }
    }

    public func addPeerRoute(_ clientKey: String, loop: Int) {
        lock.withLock { entries.peerRoutes[clientKey, default: [:]][loop, default: 0] += 1 }
    }

    public func removePeerRoute(_ clientKey: String, loop: Int) {
        lock.withLock { Self.decrement(&entries.peerRoutes, clientKey, loop) }
    }

    private static func decrement(_ table: inout [String: [Int: Int]], _ key: String, _ loop: Int) {
        guard let count = table[key]?[loop] else { return }
        if count > 1 { table[key]![loop] = count - 1; return }
        table[key]![loop] = nil
        if table[key]!.isEmpty { table[key] = nil }
    }

    /// The loop to dial `clientKey` from: `local` when it has a client session of the key, else
    /// another loop with one (spread over them), else a loop whose peer session reaches it
    /// (`local` first). Nil: nobody reaches the key.
    public func loopIndex(forClient clientKey: String, local: Int) -> Int? {
        lock.withLock {
            if let loops = entries.clients[clientKey], !loops.isEmpty {
                if loops[local] != nil { return local }
                entries.nextPick &+= 1
                let candidates = loops.keys.sorted()
                return candidates[entries.nextPick % candidates.count]
            }
            guard let routes = entries.peerRoutes[clientKey], !routes.isEmpty else { return nil }
            return routes[local] != nil ? local : routes.keys.min()
        }
    }

    /// Client sessions of `clientKey` on every loop.
    public func sessionCount(clientKey: String) -> Int {
        lock.withLock { entries.clients[clientKey]?.values.reduce(0, +) ?? 0 }
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
        lock.withLock { entries.clients[clientKey]?.keys.sorted() ?? [] }
    }
}
