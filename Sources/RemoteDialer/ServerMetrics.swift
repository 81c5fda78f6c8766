import Metrics
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
    /// resolved once, as the byte counters are hit per Data message. Each series is made on its
    /// first increment, as Go's appear (`CounterVec.With(…)` at the first Inc/Add): an idle
    /// client session keeps only its "add" counter, not four (~1.5 KiB of each idle client's
    /// session, measured with 2,000).
    final class ClientSeries {
        let clientKey: String
        fileprivate var sessions = 0
        private var transmit: Counter?
        private var receive: Counter?
        /// Sessions added and removed, for client sessions and for peer sessions (two fields,
        /// not a dictionary keyed by `peer`: a one-entry dictionary costs ~0.1 KiB).
        private var clientSessions: SessionCounters?
        private var peerSessions: SessionCounters?
        private var targetCounters: [String: (added: Counter, removed: Counter)] = [:]
        private let maxTargets: Int

        private struct SessionCounters {
            let added: Counter
            var removed: Counter?
        }

        fileprivate init(clientKey: String, maxTargets: Int) {
            self.clientKey = clientKey
            self.maxTargets = maxTargets
        }

        func countTransmitted(_ count: Int) {
            if transmit == nil { transmit = Counter(label: "session_server_total_transmit_bytes", dimensions: [("clientkey", clientKey)]) }
            transmit!.increment(by: count)
        }

        func countReceived(_ count: Int) {
            if receive == nil { receive = Counter(label: "session_server_total_receive_bytes", dimensions: [("clientkey", clientKey)]) }
            receive!.increment(by: count)
        }

        fileprivate func countSessionAdded(peer: Bool) {
            var counters = (peer ? peerSessions : clientSessions)
                ?? SessionCounters(added: Counter(label: "session_server_total_add_websocket_session", dimensions: sessionDimensions(peer: peer)))
            counters.added.increment()
            if peer { peerSessions = counters } else { clientSessions = counters }
        }

        fileprivate func countSessionRemoved(peer: Bool) {
            guard var counters = peer ? peerSessions : clientSessions else { return }  // never added here
            if counters.removed == nil {
                counters.removed = Counter(label: "session_server_total_remove_websocket_session", dimensions: sessionDimensions(peer: peer))
            }
            counters.removed!.increment()
            if peer { peerSessions = counters } else { clientSessions = counters }
        }

        private func sessionDimensions(peer: Bool) -> [(String, String)] {
            [("clientkey", clientKey), ("peer", peer ? "true" : "false")]
        }

        fileprivate func targetCounters(_ target: ConnectTarget) -> (added: Counter, removed: Counter) {
            let key = "\(target.proto) \(target.address)"
            if let counters = targetCounters[key] { return counters }
            // Past the cap, new addresses share one entry per proto (a key without a space, so
            // never an address's).
            let overflow = targetCounters.count >= maxTargets
            let entry = overflow ? target.proto : key
            if let counters = targetCounters[entry] { return counters }
            let dimensions = [("clientkey", clientKey), ("proto", target.proto), ("addr", overflow ? "other" : target.address)]
            let counters = (Counter(label: "session_server_total_add_connections", dimensions: dimensions),
                            Counter(label: "session_server_total_remove_connections", dimensions: dimensions))
            targetCounters[entry] = counters
            return counters
        }

        fileprivate func destroy() {
            transmit?.destroy()
            receive?.destroy()
            for counters in [clientSessions, peerSessions].compactMap({ $0 }) { counters.added.destroy(); counters.removed?.destroy() }
            for counters in targetCounters.values { counters.added.destroy(); counters.removed.destroy() }
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
        series.countSessionAdded(peer: peer)
        return series
    }

    /// A session of `clientKey` ended on this loop. `lastAnywhere`: the key has no session left
    /// on any loop, so its series leave the registry. (A session of the same key admitted on
    /// another loop in the microseconds between that check and the destroy would count into
    /// unregistered series until it ends: metrics lost, nothing else.)
    func sessionRemoved(clientKey: String, peer: Bool, lastAnywhere: Bool) {
        guard let series = clients[clientKey] else { return }
        series.countSessionRemoved(peer: peer)
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
        series.countTransmitted(count)
        currentTotals.totals.toClient += count
    }
    func session(_ session: TunnelSession, didReceiveDataBytes count: Int) {
        series.countReceived(count)
        currentTotals.totals.fromClient += count
    }
}
