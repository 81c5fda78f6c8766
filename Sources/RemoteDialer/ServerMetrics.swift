import CoreMetrics
import Tunnel

/// The Go library's counters (PROTOCOL.md §7) through swift-metrics; whichever backend the
/// program bootstraps (Prometheus in the bundled server) exports them.
///
/// Unlike Go's, a client's series do not outlive it: anyone who may connect picks client ids,
/// and every id (and every address a client dials) would otherwise stay in the registry for the
/// life of the process — the soak's churned clients grew the server by about 3 KiB each. A
/// client key's series are destroyed when its last session on any loop ends, and the addresses
/// counted per client are capped (`ServerOptions.maxMetricTargetsPerClient`; past it, `addr="other"`).
/// Loop-confined: one per server (per loop).
final class ServerMetrics {
    /// The series of one client key (or peer id) with a session on this loop; handles are
    /// resolved once, as the byte counters are hit per Data message. The byte series appear with
    /// the first byte, as Go's do: an idle session costs no byte counters.
    final class ClientSeries {
        let clientKey: String
        private var transmitCounter: Counter?
        private var receiveCounter: Counter?
        fileprivate var sessions = 0
        /// Client sessions and peer sessions added and removed (two fields, not a dictionary
        /// keyed by `peer`: a one-entry dictionary costs ~0.1 KiB a client).
        private var clientSessionCounters: AddRemoveSeries?
        private var peerSessionCounters: AddRemoveSeries?
        private var targetCounters: [String: AddRemoveSeries] = [:]
        private let maxTargets: Int

        fileprivate init(clientKey: String, maxTargets: Int) {
            self.clientKey = clientKey
            self.maxTargets = maxTargets
        }

        var transmit: Counter {
            if let transmitCounter { return transmitCounter }
            let counter = Counter(label: "session_server_total_transmit_bytes", dimensions: [("clientkey", clientKey)])
            transmitCounter = counter
            return counter
        }

        var receive: Counter {
            if let receiveCounter { return receiveCounter }
            let counter = Counter(label: "session_server_total_receive_bytes", dimensions: [("clientkey", clientKey)])
            receiveCounter = counter
            return counter
        }

        fileprivate func sessionCounters(peer: Bool) -> AddRemoveSeries {
            if let counters = peer ? peerSessionCounters : clientSessionCounters { return counters }
            let counters = AddRemoveSeries(added: "session_server_total_add_websocket_session",
                                           removed: "session_server_total_remove_websocket_session",
                                           dimensions: [("clientkey", clientKey), ("peer", peer ? "true" : "false")])
            if peer { peerSessionCounters = counters } else { clientSessionCounters = counters }
            return counters
        }

        fileprivate func targetCounters(_ target: ConnectTarget) -> AddRemoveSeries {
            let key = "\(target.proto) \(target.address)"
            if let counters = targetCounters[key] { return counters }
            // Past the cap, new addresses share one entry per proto (a key without a space, so
            // never an address's).
            let overflow = targetCounters.count >= maxTargets
            let entry = overflow ? target.proto : key
            if let counters = targetCounters[entry] { return counters }
            let counters = AddRemoveSeries(added: "session_server_total_add_connections",
                                           removed: "session_server_total_remove_connections",
                                           dimensions: [("clientkey", clientKey), ("proto", target.proto),
                                                        ("addr", overflow ? "other" : target.address)])
            targetCounters[entry] = counters
            return counters
        }

        fileprivate func destroy() {
            transmitCounter?.destroy()
            receiveCounter?.destroy()
            clientSessionCounters?.destroy()
            peerSessionCounters?.destroy()
            for counters in targetCounters.values { counters.destroy() }
        }
    }

    /// `session_server_total_add_<what>` and `…_remove_<what>` with the same dimensions; the
    /// remove series appears with the first removal, as Go's does.
    final class AddRemoveSeries {
        let added: Counter
        private var removedCounter: Counter?
        private let removedLabel: String
        private let dimensions: [(String, String)]

        /// The labels are string literals, so every client's series share their text (built
        /// from a `what` per series, they cost each session's series 80 bytes of heap).
        fileprivate init(added addedLabel: String, removed removedLabel: String, dimensions: [(String, String)]) {
            self.removedLabel = removedLabel
            self.dimensions = dimensions
            added = Counter(label: addedLabel, dimensions: dimensions)
        }

        var removed: Counter {
            if let removedCounter { return removedCounter }
            let counter = Counter(label: removedLabel, dimensions: dimensions)
            removedCounter = counter
            return counter
        }

        fileprivate func destroy() {
            added.destroy()
            removedCounter?.destroy()
        }
    }

    private var clients: [String: ClientSeries] = [:]
    private let maxTargetsPerClient: Int

    init(maxTargetsPerClient: Int) {
        self.maxTargetsPerClient = maxTargetsPerClient
    }

    /// A session of `clientKey` started on this loop; its series, to hand to the session's observer.
    func sessionAdded(clientKey: String, peer: Bool) -> ClientSeries {
        let series = clients[clientKey] ?? ClientSeries(clientKey: clientKey, maxTargets: maxTargetsPerClient)
        clients[clientKey] = series
        series.sessions += 1
        series.sessionCounters(peer: peer).added.increment()
        return series
    }

    /// A session of `clientKey` ended on this loop. `lastAnywhere`: the key has no session left
    /// on any loop, so its series leave the registry. (A session of the same key admitted on
    /// another loop in the microseconds between that check and the destroy would count into
    /// unregistered series until it ends: metrics lost, nothing else.)
    func sessionRemoved(clientKey: String, peer: Bool, lastAnywhere: Bool) {
        guard let series = clients[clientKey] else { return }
        series.sessionCounters(peer: peer).removed.increment()
        series.sessions -= 1
        guard series.sessions == 0 else { return }
        clients[clientKey] = nil
        if lastAnywhere { series.destroy() }
    }

    func peer(_ event: String, peerID: String) {
        Counter(label: "session_server_total_peer_ws_\(event)", dimensions: [("peer", peerID)]).increment()
    }
}

/// Routes one session's events to its client's series and traffic totals. Data messages are the
/// hot path: both are resolved once per session, not per message.
final class SessionMetricsObserver: TunnelSessionObserver {
    let series: ServerMetrics.ClientSeries
    let traffic: ClientTraffic
    private var totals: ClientTraffic.Entry

    init(series: ServerMetrics.ClientSeries, traffic: ClientTraffic) {
        self.series = series
        self.traffic = traffic
        totals = traffic.entry(series.clientKey)
    }

    /// The client's traffic entry, looked up again if a sample dropped it meanwhile.
    private var currentTotals: ClientTraffic.Entry {
        if totals.forgotten { totals = traffic.entry(series.clientKey) }
        return totals
    }

    func session(_ session: TunnelSession, didAddConnection target: ConnectTarget) {
        series.targetCounters(target).added.increment()
    }
    func session(_ session: TunnelSession, didRemoveConnection target: ConnectTarget) {
        series.targetCounters(target).removed.increment()
    }
    func session(_ session: TunnelSession, didSendDataBytes count: Int) {
        series.transmit.increment(by: count)
        currentTotals.totals.toClient += count
    }
    func session(_ session: TunnelSession, didReceiveDataBytes count: Int) {
        series.receive.increment(by: count)
        currentTotals.totals.fromClient += count
    }
}
