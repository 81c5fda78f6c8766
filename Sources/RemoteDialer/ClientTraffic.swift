/// Bytes each way per client key (Data payloads through its sessions), and once a second the
/// rate of the last second, kept for the last minute (the status page's sparklines).
/// Loop-confined to the server's loop.
final class ClientTraffic {
    static let historyLength = 60

    struct Totals: Sendable {
        /// Data bytes this server sent to the client (requests, uploads).
        var toClient = 0
        /// Data bytes the client sent this server (responses, downloads).
        var fromClient = 0
        /// Totals at the last sample, for the rates.
        var sampledToClient = 0
        var sampledFromClient = 0
        /// Bytes per second over the last sampled second.
        var rateToClient = 0
        var rateFromClient = 0
        /// Bytes per second both ways, one entry a second, oldest first; the seconds before the
        /// first entry moved nothing. Empty while the client has been idle for the whole window,
        /// as most connected clients are: an idle client then holds no array (1,000 idle sessions
        /// held ~0.5 MiB of zeros after a minute).
        var history: [Int] = []
        /// Samples in a row that moved nothing.
        var idleSeconds = 0
    }

    /// One client's totals, held by its sessions' observers so a Data message costs no lookup.
    final class Entry {
        var totals = Totals()
        /// Dropped by `sample`: a holder that still counts must look its client up again.
        fileprivate(set) var forgotten = false
    }

    private var entries: [String: Entry] = [:]

    var clients: [String: Totals] { entries.mapValues(\.totals) }

    /// The entry that counts `clientKey`'s bytes, created on first use.
    func entry(_ clientKey: String) -> Entry {
        if let entry = entries[clientKey] { return entry }
        let entry = Entry()
        entries[clientKey] = entry
        return entry
    }

    /// Once a second: rates from the growth since the last sample; clients not in `connected`
    /// are forgotten.
    func sample(connected: Set<String>) {
        for (key, entry) in entries where !connected.contains(key) {
            entry.forgotten = true
            entries[key] = nil
        }
        for entry in entries.values { entry.totals.sampleSecond() }
    }
}

extension ClientTraffic.Totals {
    mutating func sampleSecond() {
        rateToClient = toClient - sampledToClient
        rateFromClient = fromClient - sampledFromClient
        sampledToClient = toClient
        sampledFromClient = fromClient
        let rate = rateToClient + rateFromClient
        idleSeconds = rate == 0 ? idleSeconds + 1 : 0
        if idleSeconds >= ClientTraffic.historyLength {
            if !history.isEmpty { history = [] }
            return
        }
        if history.isEmpty && rate == 0 { return }
        history.append(rate)
        if history.count > ClientTraffic.historyLength { history.removeFirst(history.count - ClientTraffic.historyLength) }
    }
}
