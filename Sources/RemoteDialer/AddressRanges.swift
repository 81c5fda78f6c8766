import Glibc
import Reactor
import Tunnel

/// CIDR ranges such as `127.0.0.1/32,::1/128` (`-proxy-allow-from`, `-metrics-allow-from`).
/// An IPv4 peer seen as a v4-mapped IPv6 address (`::ffff:a.b.c.d`) matches IPv4 ranges.
public struct AddressRanges: Sendable, CustomStringConvertible {
    struct Range: Sendable {
        let bytes: [UInt8]
        let prefixLength: Int
    }

    let ranges: [Range]
    public let description: String

    public static let loopback = try! AddressRanges("127.0.0.1/32,::1/128")

    public init(_ text: String) throws(ConfigurationError) {
        var ranges: [Range] = []
        for item in text.split(separator: ",").map({ String($0).trimmingSpaces() }) where !item.isEmpty {
            let parts = item.split(separator: "/", maxSplits: 1)
            guard let bytes = Self.bytes(of: String(parts[0])) else { throw ConfigurationError("bad address range \(item): want ADDRESS/BITS") }
            let bits = parts.count == 2 ? Int(parts[1]) : bytes.count * 8
            guard let bits, bits >= 0, bits <= bytes.count * 8 else { throw ConfigurationError("bad prefix length in \(item)") }
            ranges.append(Range(bytes: bytes, prefixLength: bits))
        }
        self.ranges = ranges
        description = text
    }

    public func contains(_ address: SocketAddress?) -> Bool {
        guard var bytes = address?.ipBytes else { return false }
        if bytes.count == 16 && bytes[..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
            bytes = Array(bytes[12...])
        }
        return ranges.contains { range in
            guard range.bytes.count == bytes.count else { return false }
            var remaining = range.prefixLength
            for index in bytes.indices where remaining > 0 {
                let mask: UInt8 = remaining >= 8 ? 0xFF : ~(0xFF >> UInt8(remaining))
                if bytes[index] & mask != range.bytes[index] & mask { return false }
                remaining -= 8
            }
            return true
        }
    }

    static func bytes(of host: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}
