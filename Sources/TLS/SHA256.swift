import CTLS
import Digest

extension Digest {
    /// SHA-256 from libcrypto (loaded on first use): for secrets at rest, e.g. client tokens.
    public static func sha256(_ bytes: some Collection<UInt8>) -> [UInt8] {
        hash(bytes, length: 32, ctls_sha256)
    }
}
