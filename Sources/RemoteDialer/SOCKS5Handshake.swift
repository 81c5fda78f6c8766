import Glibc

/// The server side of a SOCKS5 negotiation (RFC 1928) with username/password authentication
/// (RFC 1929), as a pure state machine over the bytes received so far: no I/O, no loop.
/// Every message has a fixed upper size (at most `maxMessageBytes`), so a caller that offers
/// that many bytes always gets an answer other than `needMore`.
struct SOCKS5Handshake {
    enum Step: Equatable {
        /// An incomplete message: offer more bytes.
        case needMore
        /// Send `reply`, drop `consumed` bytes, and step again.
        case reply([UInt8], consumed: Int)
        /// The requester's credentials; the caller answers with `authenticationReply`.
        case credentials(user: String, password: String, consumed: Int)
        /// A CONNECT request; the caller answers with `reply(_:)` once it knows.
        case connect(TargetAddress, consumed: Int)
        /// Send `reply` (possibly nothing) and close.
        case refuse([UInt8])
    }

    /// RFC 1928 §6 reply codes.
    enum ReplyCode: UInt8 {
        case succeeded = 0, generalFailure, notAllowed, networkUnreachable, hostUnreachable, connectionRefused,
             ttlExpired, commandNotSupported, addressTypeNotSupported
    }

    private enum State { case greeting, credentials, request, finished }
    private var state = State.greeting

    /// The largest message: credentials, 1 + 1 + 255 + 1 + 255 bytes.
    static let maxMessageBytes = 513
    static let usernamePassword: UInt8 = 2

    /// A reply to a CONNECT; the bound address is not meaningful through a tunnel (0.0.0.0:0).
    static func reply(_ code: ReplyCode) -> [UInt8] { [5, code.rawValue, 0, 1, 0, 0, 0, 0, 0, 0] }
    static func authenticationReply(success: Bool) -> [UInt8] { [1, success ? 0 : 1] }

    mutating func step(_ input: ArraySlice<UInt8>) -> Step {
        let bytes = Array(input)
        switch state {
        case .greeting:
            guard bytes.count >= 2 else { return .needMore }
            guard bytes[0] == 5 else { return refuse([]) }  // not SOCKS5: nothing we could say
            let count = 2 + Int(bytes[1])
            guard bytes.count >= count else { return .needMore }
            // The username is the client id: a requester that cannot send one cannot be served.
            guard bytes[2..<count].contains(Self.usernamePassword) else { return refuse([5, 0xFF]) }
            state = .credentials
            return .reply([5, Self.usernamePassword], consumed: count)
        case .credentials:
            guard bytes.count >= 2 else { return .needMore }
            guard bytes[0] == 1 else { return refuse(Self.authenticationReply(success: false)) }
            let userEnd = 2 + Int(bytes[1])
            guard bytes.count >= userEnd + 1 else { return .needMore }
            let end = userEnd + 1 + Int(bytes[userEnd])
            guard bytes.count >= end else { return .needMore }
            state = .request
            return .credentials(user: String(decoding: bytes[2..<userEnd], as: UTF8.self),
                                password: String(decoding: bytes[(userEnd + 1)..<end], as: UTF8.self), consumed: end)
        case .request:
            guard bytes.count >= 5 else { return .needMore }
            guard bytes[0] == 5, bytes[2] == 0 else { return refuse(Self.reply(.generalFailure)) }
            let addressEnd: Int
            switch bytes[3] {
            case 1: addressEnd = 4 + 4
            case 3: addressEnd = 5 + Int(bytes[4])
            case 4: addressEnd = 4 + 16
            default: return refuse(Self.reply(.addressTypeNotSupported))
            }
            let end = addressEnd + 2
            guard bytes.count >= end else { return .needMore }
            // BIND and UDP ASSOCIATE cannot go through a tunnel of TCP connections.
            guard bytes[1] == 1 else { return refuse(Self.reply(.commandNotSupported)) }
            let port = UInt16(bytes[addressEnd]) << 8 | UInt16(bytes[addressEnd + 1])
            let host: String
            switch bytes[3] {
            case 3: host = String(decoding: bytes[5..<addressEnd], as: UTF8.self)
            default: host = Self.ipText(bytes[4..<addressEnd])
            }
            guard let target = TargetAddress(host: host, port: port) else { return refuse(Self.reply(.generalFailure)) }
            state = .finished
            return .connect(target, consumed: end)
        case .finished:
            return .needMore
        }
    }

    private mutating func refuse(_ reply: [UInt8]) -> Step {
        state = .finished
        return .refuse(reply)
    }

    /// An IPv4 (4 bytes) or IPv6 (16 bytes) address in its usual text form.
    static func ipText(_ address: ArraySlice<UInt8>) -> String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        Array(address).withUnsafeBytes { raw in
            _ = inet_ntop(address.count == 4 ? AF_INET : AF_INET6, raw.baseAddress, &text, socklen_t(text.count))
        }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
