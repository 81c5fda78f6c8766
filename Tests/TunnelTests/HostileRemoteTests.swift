import Reactor
import Testing
import WebSocket
@testable import Tunnel

/// What a remote that breaks the rules can make a session do: every reply and every stored
/// entry it can provoke is bounded (issue 11, items 4, 5, 6, 8). Each test observes on the
/// session's loop and asserts on its own thread.
struct HostileRemoteTests {
    /// A server session over a recording transport, fed by `feed`; returns what `observe` saw.
    private func session<Observed>(_ name: String, options: TunnelOptions = TunnelOptions(),
                                   feed: @escaping (RecordingTransport, TunnelSession) -> Observed) throws -> Observed {
        try onLoop(name) { loop in
            let transport = RecordingTransport(loop: loop)
            let session = TunnelSession(transport: transport, role: .server, clientKey: "foo", options: options)
            transport.start(delegate: session)
            return feed(transport, session)
        }
    }

    private static func errorReplies(_ transport: RecordingTransport) -> [TunnelMessage] {
        transport.sentMessages.filter { $0.header.type == .error }
    }

    @Test func dataForUnknownIDsIsAnsweredOncePerID() throws {
        let (replies, sessionKey, unknown, open) = try session("unknown-ids") { transport, session in
            for round in 0..<3 {
                for connID in Int64(10)..<20 {
                    transport.deliver(TunnelMessage.data(id: Int64(round * 100) + connID, connID: connID, [1, 2, 3]).encoded)
                }
            }
            return (Self.errorReplies(transport), session.sessionKey, session.unknownIDMessages, session.isOpen)
        }
        #expect(replies.map(\.header.connID) == Array(10..<20), "one Error per unknown id, not one per message")
        #expect(String(decoding: replies.first?.payload ?? [], as: UTF8.self) == "connection not found foo/\(sessionKey)/10")
        #expect(unknown == 30)
        #expect(open)
    }

    @Test func noErrorRepliesWhileTheWebSocketIsBackedUp() throws {
        let (whileBackedUp, after) = try session("unknown-ids-backed-up") { transport, _ in
            transport.isWritable = false
            for connID in Int64(1)...1000 { transport.deliver(TunnelMessage.data(id: connID, connID: connID, [0]).encoded) }
            let whileBackedUp = Self.errorReplies(transport).count
            transport.isWritable = true
            transport.deliver(TunnelMessage.data(id: 5000, connID: 5000, [0]).encoded)
            return (whileBackedUp, Self.errorReplies(transport).map(\.header.connID))
        }
        #expect(whileBackedUp == 0, "a remote that does not read must not grow our queue with answers")
        #expect(after == [5000])
    }

    @Test func rememberedUnknownIDsAreBounded() throws {
        var options = TunnelOptions()
        options.maxUnknownIDsRemembered = 8
        let (distinct, repeated) = try session("unknown-ids-bounded", options: options) { transport, _ in
            for connID in Int64(1)...100 { transport.deliver(TunnelMessage.data(id: connID, connID: connID, [0]).encoded) }
            let distinct = Self.errorReplies(transport).count
            transport.deliver(TunnelMessage.data(id: 101, connID: 100, [0]).encoded)
            return (distinct, Self.errorReplies(transport).count)
        }
        // Each distinct id still gets its one answer; the memory of answered ids stays small.
        #expect(distinct == 100)
        #expect(repeated == 100, "id 100 is among the last 8 remembered")
    }

    @Test func announcementsFromANonPeerAreIgnoredAndCounted() throws {
        var options = TunnelOptions()
        options.maxAnnouncedClients = 0
        let (stored, reachable, ignored, open) = try session("not-a-peer", options: options) { transport, session in
            for index in 0..<1000 {
                transport.deliver(TunnelMessage.addClient(id: Int64(index), RemoteClient(clientKey: "victim\(index)", sessionKey: 1)).encoded)
            }
            return (session.remoteClients.count, session.canReach(clientKey: "victim1"), session.ignoredAnnouncements, session.isOpen)
        }
        #expect(stored == 0 && !reachable)
        #expect(ignored == 1000)
        #expect(open)
    }

    @Test func aPeerMayAnnounceUpToTheCap() throws {
        var options = TunnelOptions()
        options.maxAnnouncedClients = 5
        let (atCap, ignored, k0, k7) = try session("peer-cap", options: options) { transport, session in
            for index in 0..<8 {
                transport.deliver(TunnelMessage.addClient(id: Int64(index), RemoteClient(clientKey: "k\(index)", sessionKey: 1)).encoded)
            }
            let atCap = session.remoteClients.keys.sorted()
            // A known key may gain another session key at the cap; removal frees a place.
            transport.deliver(TunnelMessage.addClient(id: 20, RemoteClient(clientKey: "k0", sessionKey: 2)).encoded)
            transport.deliver(TunnelMessage.removeClient(id: 21, RemoteClient(clientKey: "k4", sessionKey: 1)).encoded)
            transport.deliver(TunnelMessage.addClient(id: 22, RemoteClient(clientKey: "k7", sessionKey: 1)).encoded)
            return (atCap, session.ignoredAnnouncements, session.remoteClients["k0"], session.canReach(clientKey: "k7"))
        }
        #expect(atCap == ["k0", "k1", "k2", "k3", "k4"])
        #expect(ignored == 3)
        #expect(k0 == [1, 2])
        #expect(k7)
    }

    @Test func aClientKeyLongerThanTheMessageLimitEndsTheSession() throws {
        let (stored, open) = try session("long-key") { transport, session in
            let key = String(repeating: "k", count: PayloadLimit.client + 10)
            transport.deliver(TunnelMessage.addClient(id: 1, RemoteClient(clientKey: key, sessionKey: 1)).encoded)
            return (session.remoteClients.count, session.isOpen)
        }
        #expect(stored == 0, "never stored cut short")
        #expect(!open, "a malformed announcement ends the session, as in Go")
    }

    @Test func protocolErrorsCloseTheWebSocketWith1002And1003() {
        #expect(WebSocketTransport.closeCode(for: TunnelError.wrongMessageType) == .unsupportedData)
        #expect(WebSocketTransport.closeCode(for: TunnelError.decoding(.varintOverflow)) == .protocolError)
        #expect(WebSocketTransport.closeCode(for: TunnelError.idleTimeout) == .normalClosure)
        #expect(WebSocketTransport.closeCode(for: nil) == .normalClosure)
    }

    @Test func logThrottleAdmitsOneLinePerIntervalAndCountsTheRest() {
        var throttle = LogThrottle(interval: .seconds(1))
        let second: UInt64 = 1_000_000_000
        #expect(throttle.admit(now: 5 * second) == 0)
        for offset in 1...999 { #expect(throttle.admit(now: 5 * second + UInt64(offset) * 1_000_000) == nil) }
        #expect(throttle.admit(now: 6 * second) == 999)
        #expect(throttle.admit(now: 6 * second + 1) == nil)
        #expect(throttle.admit(now: 7 * second) == 1)
    }
}
