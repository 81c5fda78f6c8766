import CDigest

/// Hashes, base64 and randomness (the WebSocket handshake needs SHA-1 + base64; client frame
/// masks need random keys), with no library beneath, so the WebSocket layer does not depend on
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
