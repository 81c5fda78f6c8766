import Reactor
import Testing
import WebSocket
@testable import Tunnel

/// What a remote that breaks the rules can make a session do: every reply and every stored
/// entry it can provoke is bounded (issue 11, items 4, 5, 6, 8).
struct HostileRemoteTests {
    private func errorReplies(_ transport: RecordingTransport) -> [TunnelMessage] {
        transport.sentMessages.filter { $0.header.type == .error }
    }

    @Test func dataForUnknownIDsIsAnsweredOncePerID() throws {
        try onLoop("unknown-ids") { loop in
            let transport = RecordingTransport(loop: loop)
            let session = TunnelSession(transport: transport, role: .server, clientKey: "foo")
            transport.start(delegate: session)
            for round in 0..<3 {
                for connID in Int64(10)..<20 {
                    transport.deliver(TunnelMessage.data(id: Int64(round * 100) + connID, connID: connID, [1, 2, 3]).encoded)
                }
            }
            let replies = errorReplies(transport)
            #expect(replies.map(\.header.connID) == Array(10..<20), "one Error per unknown id, not one per message")
            #expect(String(decoding: replies[0].payload, as: UTF8.self) == "connection not found foo/\(session.sessionKey)/10")
            #expect(session.unknownIDMessages == 30)
            #expect(session.isOpen)
        }
    }

    @Test func noErrorRepliesWhileTheWebSocketIsBackedUp() throws {
        try onLoop("unknown-ids-backed-up") { loop in
            let transport = RecordingTransport(loop: loop)
            let session = TunnelSession(transport: transport, role: .server, clientKey: "foo")
            transport.start(delegate: session)
            transport.isWritable = false
            for connID in Int64(1)...1000 { transport.deliver(TunnelMessage.data(id: connID, connID: connID, [0]).encoded) }
            #expect(errorReplies(transport).isEmpty, "a remote that does not read must not grow our queue with answers")
            transport.isWritable = true
            transport.deliver(TunnelMessage.data(id: 5000, connID: 5000, [0]).encoded)
            #expect(errorReplies(transport).map(\.header.connID) == [5000])
        }
    }

    @Test func rememberedUnknownIDsAreBounded() throws {
        try onLoop("unknown-ids-bounded") { loop in
            let transport = RecordingTransport(loop: loop)
            var options = TunnelOptions()
            options.maxUnknownIDsRemembered = 8
            let session = TunnelSession(transport: transport, role: .server, clientKey: "foo", options: options)
            transport.start(delegate: session)
            for connID in Int64(1)...100 { transport.deliver(TunnelMessage.data(id: connID, connID: connID, [0]).encoded) }
            // Each distinct id still gets its one answer; the memory of answered ids stays small.
            #expect(errorReplies(transport).count == 100)
            transport.deliver(TunnelMessage.data(id: 101, connID: 100, [0]).encoded)
            #expect(errorReplies(transport).count == 100, "id 100 is among the last 8 remembered")
        }
    }

    @Test func announcementsFromANonPeerAreIgnoredAndCounted() throws {
        try onLoop("not-a-peer") { loop in
            let transport = RecordingTransport(loop: loop)
            var options = TunnelOptions()
            options.maxAnnouncedClients = 0
            let session = TunnelSession(transport: transport, role: .server, clientKey: "foo", options: options)
            transport.start(delegate: session)
            for index in 0..<1000 {
                transport.deliver(TunnelMessage.addClient(id: Int64(index), RemoteClient(clientKey: "victim\(index)", sessionKey: 1)).encoded)
            }
            #expect(session.remoteClients.isEmpty)
            #expect(!session.canReach(clientKey: "victim1"))
            #expect(session.ignoredAnnouncements == 1000)
            #expect(session.isOpen)
        }
    }

    @Test func aPeerMayAnnounceUpToTheCap() throws {
        try onLoop("peer-cap") { loop in
            let transport = RecordingTransport(loop: loop)
            var options = TunnelOptions()
            options.maxAnnouncedClients = 5
            let session = TunnelSession(transport: transport, role: .server, clientKey: "peer", options: options)
            transport.start(delegate: session)
            for index in 0..<8 {
                transport.deliver(TunnelMessage.addClient(id: Int64(index), RemoteClient(clientKey: "k\(index)", sessionKey: 1)).encoded)
            }
            #expect(session.remoteClients.keys.sorted() == ["k0", "k1", "k2", "k3", "k4"])
            #expect(session.ignoredAnnouncements == 3)
            // A known key may gain another session key at the cap; removal frees a place.
            transport.deliver(TunnelMessage.addClient(id: 20, RemoteClient(clientKey: "k0", sessionKey: 2)).encoded)
            #expect(session.remoteClients["k0"] == [1, 2])
            transport.deliver(TunnelMessage.removeClient(id: 21, RemoteClient(clientKey: "k4", sessionKey: 1)).encoded)
            transport.deliver(TunnelMessage.addClient(id: 22, RemoteClient(clientKey: "k7", sessionKey: 1)).encoded)
            #expect(session.canReach(clientKey: "k7"))
        }
    }

    @Test func aClientKeyLongerThanTheMessageLimitEndsTheSession() throws {
        try onLoop("long-key") { loop in
            let transport = RecordingTransport(loop: loop)
            let session = TunnelSession(transport: transport, role: .server, clientKey: "peer")
            transport.start(delegate: session)
            let key = String(repeating: "k", count: PayloadLimit.client + 10)
            transport.deliver(TunnelMessage.addClient(id: 1, RemoteClient(clientKey: key, sessionKey: 1)).encoded)
            #expect(session.remoteClients.isEmpty, "never stored cut short")
            #expect(!session.isOpen, "a malformed announcement ends the session, as in Go")
        }
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
