import Reactor
import Testing
@testable import Tunnel

/// Dead-peer detection: the client pings every `pingInterval`; either side ends a session that
/// heard nothing for `idleTimeout`.
@Suite(.serialized)
struct LivenessTests {
    @Test func clientPingsKeepAnOtherwiseSilentSessionAlivePastTheServersIdleTimeout() throws {
        var clientOptions = TunnelOptions()
        clientOptions.pingInterval = .milliseconds(100)
        var serverOptions = TunnelOptions()
        serverOptions.idleTimeout = .milliseconds(600)
        let fixture = try TunnelFixture(serverOptions: serverOptions, clientOptions: clientOptions)
        defer { fixture.shutdown() }
        // No connection, no data: only pings reach the server. Watch it for three idle timeouts.
        var heardAt = Set<UInt64>()
        let ended = waitUntil(seconds: 1.8) {
            let (open, lastReceivedAt) = fixture.serverLoop.runBlocking {
                (fixture.serverSession.isOpen, fixture.serverSession.transport.lastReceivedAt)
            }
            heardAt.insert(lastReceivedAt)
            return !open
        }
        #expect(!ended, "the server's session ended: no ping kept it alive")
        #expect(heardAt.count >= 10, "the server heard from the client only \(heardAt.count) times in 1.8 s")
    }

    @Test func aPeerThatFallsSilentEndsTheSessionAtTheIdleTimeout() throws {
        var clientOptions = TunnelOptions()
        clientOptions.pingInterval = .seconds(3600)
        var serverOptions = TunnelOptions()
        serverOptions.idleTimeout = .milliseconds(500)
        let clock = ContinuousClock()
        let start = clock.now
        let fixture = try TunnelFixture(serverOptions: serverOptions, clientOptions: clientOptions)
        defer { fixture.shutdown() }
        let ended = OneShot<String>()
        fixture.serverLoop.runBlocking {
            fixture.serverSession.onClose = { error in ended.set(error.map { "\($0)" } ?? "closed without error") }
        }
        let reason = try #require(ended.wait(seconds: 10), "the silent session was never ended")
        #expect(reason == TunnelError.idleTimeout.description)
        #expect(clock.now - start >= serverOptions.idleTimeout)
    }
}
