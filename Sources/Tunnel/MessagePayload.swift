/// How much of each small payload a receiver reads (Go reads through io.LimitReader: the rest is
/// ignored, not an error).
public enum PayloadLimit {
    public static let connect = 266
    public static let error = 100
    public static let client = 100
}

/// Collects a small payload from pieces, keeping at most `limit` bytes.
public struct BoundedPayload {
    public let limit: Int
    public private(set) var bytes: [UInt8] = []
    /// Bytes seen past the limit (ignored, counted for the overflow check of SyncConnections).
    public private(set) var discarded = 0

    public init(limit: Int) { self.limit = limit }

    public mutating func append(_ piece: UnsafeRawBufferPointer) {
        let room = max(0, limit - bytes.count)
        bytes.append(contentsOf: piece.prefix(room))
        discarded += piece.count - min(room, piece.count)
    }

    public var text: String { String(decoding: bytes, as: UTF8.self) }
}

/// A Connect payload: `proto/address`, split at the first `/`. A peer server dials through a
/// client with proto `<clientKey>::<proto>`.
public struct ConnectTarget: Equatable, Sendable, CustomStringConvertible {
    public var proto: String
    public var address: String

    public init(proto: String, address: String) {
        self.proto = proto
        self.address = address
    }

    public init(payload: [UInt8]) throws(TunnelDecodingError) {
        guard let slash = payload.firstIndex(of: UInt8(ascii: "/")) else { throw .connectAddress }
        proto = String(decoding: payload[..<slash], as: UTF8.self)
        address = String(decoding: payload[(slash + 1)...], as: UTF8.self)
    }

    /// For `foo::tcp`: ("foo", "tcp"); nil for a plain proto.
    public var peerRoute: (clientKey: String, proto: String)? {
        let bytes = Array(proto.utf8)
        guard bytes.count >= 2, let colon = (0..<(bytes.count - 1)).first(where: { bytes[$0] == 58 && bytes[$0 + 1] == 58 }) else { return nil }
        return (String(decoding: bytes[..<colon], as: UTF8.self), String(decoding: bytes[(colon + 2)...], as: UTF8.self))
    }

    public var payload: [UInt8] { Array("\(proto)/\(address)".utf8) }
    public var description: String { "\(proto)/\(address)" }
}

/// An AddClient/RemoveClient payload: `clientKey/sessionKey`.
public struct RemoteClient: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var clientKey: String
    public var sessionKey: Int64

    public init(clientKey: String, sessionKey: Int64) {
        self.clientKey = clientKey
        self.sessionKey = sessionKey
    }

    /// Parsed like Go's `strings.Split(s, "/")` + `strconv.Atoi`, with its error texts.
    public init(payload: [UInt8]) throws(TunnelDecodingError) {
        let text = String(decoding: payload, as: UTF8.self)
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw .invalidRemoteSession(text, reason: "not / separated") }
        let number = String(parts[1])
        guard let key = Int64(number) else {
            let digits = number.first == "-" || number.first == "+" ? number.dropFirst() : Substring(number)
            let wellFormed = !digits.isEmpty && digits.allSatisfy { $0 >= "0" && $0 <= "9" }
            let reason = wellFormed ? "value out of range" : "invalid syntax"
            throw .invalidRemoteSession(text, reason: "strconv.Atoi: parsing \"\(number)\": \(reason)")
        }
        clientKey = String(parts[0])
        sessionKey = key
    }

    public var payload: [UInt8] { Array("\(clientKey)/\(sessionKey)".utf8) }
    public var description: String { "\(clientKey)/\(sessionKey)" }
}

/// The SyncConnections payload: connection ids as unsigned 64-bit little-endian values.
public enum SyncConnections {
    public static func decode(_ payload: [UInt8]) throws(TunnelDecodingError) -> [Int64] {
        guard payload.count % 8 == 0 else { throw .syncConnectionsFormat }
        return payload.withUnsafeBytes { raw in
            stride(from: 0, to: raw.count, by: 8).map { Int64(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: $0, as: UInt64.self))) }
        }
    }

    public static func encode(_ ids: [Int64]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 8)
        for id in ids {
            withUnsafeBytes(of: UInt64(bitPattern: id).littleEndian) { bytes.append(contentsOf: $0) }
        }
        return bytes
    }
}
