import Testing
@testable import RemoteDialer

/// The per-client traffic history behind the status page's sparklines.
@Suite struct ClientTrafficTests {
    @Test func anIdleClientHoldsNoHistoryAndAMinuteOfIdlenessEmptiesIt() {
        let traffic = ClientTraffic()
        let entry = traffic.entry("idle")
        for _ in 0..<5 { traffic.sample(connected: ["idle"]) }
        #expect(entry.totals.history.isEmpty, "zeros before any traffic are left out")

        entry.totals.fromClient += 1000
        traffic.sample(connected: ["idle"])
        traffic.sample(connected: ["idle"])
        #expect(entry.totals.history == [1000, 0])
        #expect(entry.totals.rateFromClient == 0)

        for _ in 0..<(ClientTraffic.historyLength - 2) { traffic.sample(connected: ["idle"]) }
        #expect(entry.totals.history.count == ClientTraffic.historyLength)
        #expect(entry.totals.history.first == 1000, "the busy second is still in the window")
        traffic.sample(connected: ["idle"])
        #expect(entry.totals.history.isEmpty, "a whole window of zeros is dropped")
        #expect(entry.totals.history.capacity == 0, "and its storage with it")

        entry.totals.toClient += 7
        traffic.sample(connected: ["idle"])
        #expect(entry.totals.history == [7])
    }
}
