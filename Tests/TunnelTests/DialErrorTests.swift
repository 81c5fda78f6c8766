import Glibc
import Reactor
import Testing
import TestSupport
@testable import Tunnel

/// `DialError`: a kind code can act on, beside the Go dialer's text the remote receives.
@Suite(.serialized) struct DialErrorTests {
    private static func dial(_ proto: String, _ address: String) throws -> DialError? {
        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let outcome = OneShot<DialError?>()
        group.loops[0].execute {
            let dialer = TCPDialer.make(options: TunnelOptions())
            dialer(ConnectTarget(proto: proto, address: address), group.loops[0]) { result in
                switch result {
                case .success(let stream): stream.close(); outcome.set(nil)
                case .failure(let error): outcome.set(error as? DialError)
                }
            }
        }
        return try #require(outcome.wait(seconds: 30))
    }

    @Test func aRefusedConnectIsAConnectFailureWithItsErrno() throws {
        let error = try #require(try Self.dial("tcp", "127.0.0.1:1"))
        #expect(error.kind == .connect(SocketError(.system(ECONNREFUSED), operation: "connect")))
        #expect(error.description == "dial tcp 127.0.0.1:1: connect: connection refused")
    }

    @Test func anUndiallableTargetIsABadTarget() throws {
        for (proto, address, text) in [("udp", "127.0.0.1:1", "dial udp 127.0.0.1:1: unknown network udp"),
                                       ("tcp", "127.0.0.1", "dial tcp 127.0.0.1: address 127.0.0.1: missing port in address"),
                                       ("tcp", "127.0.0.1:99999", "dial tcp 127.0.0.1:99999: address 127.0.0.1:99999: invalid port")] {
            let error = try #require(try Self.dial(proto, address))
            #expect(error.kind == .badTarget, "\(proto) \(address)")
            #expect(error.description == text)
        }
    }
}
