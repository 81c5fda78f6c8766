import Testing
@testable import RemoteDialer

/// The SOCKS5 negotiation as a pure machine: fed a byte at a time or all at once, and every
/// refusal RFC 1928 names.
struct SOCKS5HandshakeTests {
    static let greeting: [UInt8] = [5, 2, 0, 2]
    static let credentials: [UInt8] = [1, 3] + Array("foo".utf8) + [4] + Array("pass".utf8)
    static func request(command: UInt8 = 1, _ address: [UInt8], port: UInt16 = 443) -> [UInt8] {
        [5, command, 0] + address + [UInt8(port >> 8), UInt8(port & 0xFF)]
    }

    /// Runs the machine over `pieces` fed in turn, as a connection would: returns every step.
    func run(_ pieces: [[UInt8]]) -> [SOCKS5Handshake.Step] {
        var handshake = SOCKS5Handshake()
        var buffered: [UInt8] = []
        var steps: [SOCKS5Handshake.Step] = []
        for piece in pieces {
            buffered += piece
            stepping: while true {
                let step = handshake.step(buffered.prefix(SOCKS5Handshake.maxMessageBytes))
                switch step {
                case .needMore: break stepping
                case .reply(_, let consumed), .credentials(_, _, let consumed), .connect(_, let consumed): buffered.removeFirst(consumed)
                case .refuse: steps.append(step); return steps
                }
                steps.append(step)
            }
        }
        return steps
    }

    @Test func aWholeNegotiationGivesTheSameStepsAtEveryCutPoint() {
        let bytes = Self.greeting + Self.credentials + Self.request([3, 9] + Array("localhost".utf8), port: 8125)
        let expected: [SOCKS5Handshake.Step] = [.reply([5, 2], consumed: 4), .credentials(user: "foo", password: "pass", consumed: 10),
                                                .connect(TargetAddress(host: "localhost", port: 8125)!, consumed: 16)]
        for pieces in cuttings(bytes) { #expect(run(pieces) == expected, "\(pieces.map(\.count))") }
        #expect(run(bytes.map { [$0] }) == expected)
    }

    @Test func ipv4AndIPv6AddressesBecomeTheirTextForms() {
        let v4 = run([Self.greeting + Self.credentials + Self.request([1, 10, 1, 2, 3], port: 22)])
        #expect(v4.last == .connect(TargetAddress(host: "10.1.2.3", port: 22)!, consumed: 10))
        #expect(TargetAddress(host: "10.1.2.3", port: 22)!.description == "10.1.2.3:22")
        let v6 = run([Self.greeting + Self.credentials + Self.request([4] + [UInt8](repeating: 0, count: 15) + [1], port: 5432)])
        #expect(v6.last == .connect(TargetAddress(host: "::1", port: 5432)!, consumed: 22))
        #expect(TargetAddress(host: "::1", port: 5432)!.description == "[::1]:5432")
    }

    @Test func refusalsUseTheReplyCodesOfRFC1928() {
        let authenticated = Self.greeting + Self.credentials
        // No username/password method offered: "no acceptable methods".
        #expect(run([[5, 1, 0]]) == [.refuse([5, 0xFF])])
        // Not SOCKS5 at all (a SOCKS4 request): closed without a word.
        #expect(run([[4, 1, 0, 80, 127, 0, 0, 1, 0]]) == [.refuse([])])
        #expect(run([[5, 1, 2, 9, 0]]).last == .refuse([1, 1]))
        // BIND and UDP ASSOCIATE: "command not supported".
        for command: UInt8 in [2, 3] {
            #expect(run([authenticated + Self.request(command: command, [1, 127, 0, 0, 1])]).last == .refuse(SOCKS5Handshake.reply(.commandNotSupported)))
        }
        #expect(run([authenticated + [5, 1, 0, 7, 0, 0]]).last == .refuse(SOCKS5Handshake.reply(.addressTypeNotSupported)))
        // An empty name, port 0, a name with a slash: not a target.
        for bad in [Self.request([3, 0]), Self.request([1, 127, 0, 0, 1], port: 0), Self.request([3, 3] + Array("a/b".utf8))] {
            #expect(run([authenticated + bad]).last == .refuse(SOCKS5Handshake.reply(.generalFailure)))
        }
    }
}
