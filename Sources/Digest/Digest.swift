import CDigest

/// Hashes, base64 and randomness (the WebSocket handshake needs SHA-1 + base64; client frame
/// masks need random keys; Basic credentials are base64), with no library beneath, so the WebSocket layer does not depend on
/// TLS. SHA-256 comes from libcrypto: the TLS module adds it (`Digest.sha256`).
public enum Digest {
    public static func sha1(_ bytes: some Collection<UInt8>) -> [UInt8] {
        hash(bytes, length: 20, cdigest_sha1)
    }

    public static func base64(_ bytes: some Collection<UInt8>) -> String {
        let input = Array(bytes)
        let capacity = 4 * ((input.count + 2) / 3) + 1
        return String(unsafeUninitializedCapacity: capacity) { output in
            Int(input.withUnsafeBytes { cdigest_base64_encode($0.baseAddress, $0.count, output.baseAddress) })
        }
    }

    /// Standard base64 (RFC 4648 §4) decoding, padding optional; nil on any other character.
    public static func base64Decode(_ text: String) -> [UInt8]? {
        var output: [UInt8] = []
        var accumulator: UInt32 = 0
        var bits = 0
        for byte in text.utf8 where byte != UInt8(ascii: "=") {
            let value: UInt8
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = byte - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = byte - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0") + 52
            case UInt8(ascii: "+"): value = 62
            case UInt8(ascii: "/"): value = 63
            default: return nil
            }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        return output
    }

    /// Fills `buffer` with cryptographically strong random bytes.
    public static func randomBytes(_ buffer: UnsafeMutableRawBufferPointer) {
        guard buffer.count > 0 else { return }
        precondition(cdigest_random_bytes(buffer.baseAddress, Int32(buffer.count)) == 1, "getrandom failed")
    }

    public static func hex(_ bytes: some Collection<UInt8>) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// `function(bytes, count, digest)` over `bytes` into a `length`-byte digest (for this
    /// package's other hashes, e.g. TLS's `sha256`).
    package static func hash(_ bytes: some Collection<UInt8>, length: Int,
                             _ function: (UnsafeRawPointer?, Int, UnsafeMutablePointer<UInt8>?) -> Void) -> [UInt8] {
        let input = Array(bytes)
        return [UInt8](unsafeUninitializedCapacity: length) { digest, count in
            input.withUnsafeBytes { function($0.baseAddress, $0.count, digest.baseAddress) }
            count = length
        }
    }
}
