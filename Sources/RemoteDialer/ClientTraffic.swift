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
        /// Bytes per second both ways, one entry a second, oldest first.
        var history: [Int] = []
    }

    private(set) var clients: [String: Totals] = [:]

    func sent(clientKey: String, bytes: Int) { clients[clientKey, default: Totals()].toClient += bytes }
    func received(clientKey: String, bytes: Int) { clients[clientKey, default: Totals()].fromClient += bytes }

    /// Once a second: rates from the growth since the last sample; clients not in `connected`
    /// are forgotten.
    func sample(connected: Set<String>) {
        for key in clients.keys where !connected.contains(key) { clients[key] = nil }
        for key in clients.keys {
            clients[key]!.sampleSecond()
        }
    }
}

extension ClientTraffic.Totals {
    mutating func sampleSecond() {
        rateToClient = toClient - sampledToClient
        rateFromClient = fromClient - sampledFromClient
        sampledToClient = toClient
        sampledFromClient = fromClient
        history.append(rateToClient + rateFromClient)
        if history.count > ClientTraffic.historyLength { history.removeFirst(history.count - ClientTraffic.historyLength) }
    }
}
