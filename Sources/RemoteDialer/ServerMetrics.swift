import Metrics
import Tunnel

/// The Go library's counters (PROTOCOL.md §7) through swift-metrics; whichever backend the
/// program bootstraps (Prometheus in the bundled server) exports them.
final class ServerMetrics {
    struct ByteCounters {
        let transmit: Counter
        let receive: Counter
    }

    private var byteCounters: [String: ByteCounters] = [:]

    private struct ConnectionLabels: Hashable {
        let clientKey: String
        let proto: String
        let address: String
    }

    /// Connection counters are hit per proxied request, and making one looks it up in the
    /// registry (label validation, hashing): each is made once. Bounded, since requesters pick
    /// the addresses: past the bound the cache starts over (the registry keeps the counts).
    private var addCounters: [ConnectionLabels: Counter] = [:]
    private var removeCounters: [ConnectionLabels: Counter] = [:]
    static let maxCachedConnectionCounters = 1024

    func sessionAdded(clientKey: String, peer: Bool) {
        Counter(label: "session_server_total_add_websocket_session", dimensions: [("clientkey", clientKey), ("peer", peer ? "true" : "false")]).increment()
    }

    func sessionRemoved(clientKey: String, peer: Bool) {
        Counter(label: "session_server_total_remove_websocket_session", dimensions: [("clientkey", clientKey), ("peer", peer ? "true" : "false")]).increment()
    }

    func connectionAdded(clientKey: String, target: ConnectTarget) {
        Self.counter(&addCounters, "session_server_total_add_connections", clientKey, target).increment()
    }

    func connectionRemoved(clientKey: String, target: ConnectTarget) {
        Self.counter(&removeCounters, "session_server_total_remove_connections", clientKey, target).increment()
    }

    private static func counter(_ cache: inout [ConnectionLabels: Counter], _ label: String, _ clientKey: String, _ target: ConnectTarget) -> Counter {
        let labels = ConnectionLabels(clientKey: clientKey, proto: target.proto, address: target.address)
        if let counter = cache[labels] { return counter }
        if cache.count >= maxCachedConnectionCounters { cache.removeAll() }
        let counter = Counter(label: label, dimensions: [("clientkey", clientKey), ("proto", target.proto), ("addr", target.address)])
        cache[labels] = counter
        return counter
    }

    func peer(_ event: String, peerID: String) {
        Counter(label: "session_server_total_peer_ws_\(event)", dimensions: [("peer", peerID)]).increment()
    }

    /// Byte counters are hit per message: created once per client key.
    func byteCounters(_ clientKey: String) -> ByteCounters {
        if let counters = byteCounters[clientKey] { return counters }
        let counters = ByteCounters(
            transmit: Counter(label: "session_server_total_transmit_bytes", dimensions: [("clientkey", clientKey)]),
            receive: Counter(label: "session_server_total_receive_bytes", dimensions: [("clientkey", clientKey)]))
        byteCounters[clientKey] = counters
        return counters
    }
}

/// Routes one session's events to the server's counters and its client's traffic. Data
/// messages are the hot path: their counters are resolved once per session, not per message.
final class SessionMetricsObserver: TunnelSessionObserver {
    let metrics: ServerMetrics
    let traffic: ClientTraffic
    private let clientKey: String
    private let bytes: ServerMetrics.ByteCounters
    private var totals: ClientTraffic.Entry

    init(clientKey: String, metrics: ServerMetrics, traffic: ClientTraffic) {
        self.clientKey = clientKey
        self.metrics = metrics
        self.traffic = traffic
        bytes = metrics.byteCounters(clientKey)
        totals = traffic.entry(clientKey)
    }

    /// The client's traffic entry, looked up again if a sample dropped it meanwhile.
    private var currentTotals: ClientTraffic.Entry {
        if totals.forgotten { totals = traffic.entry(clientKey) }
        return totals
    }

    func session(_ session: TunnelSession, didAddConnection target: ConnectTarget) {
        metrics.connectionAdded(clientKey: session.clientKey, target: target)
    }
    func session(_ session: TunnelSession, didRemoveConnection target: ConnectTarget) {
        metrics.connectionRemoved(clientKey: session.clientKey, target: target)
    }
    func session(_ session: TunnelSession, didSendDataBytes count: Int) {
        bytes.transmit.increment(by: count)
        currentTotals.totals.toClient += count
    }
    func session(_ session: TunnelSession, didReceiveDataBytes count: Int) {
        bytes.receive.increment(by: count)
        currentTotals.totals.fromClient += count
    }
}
