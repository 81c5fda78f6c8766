import Digest
import Testing
import TLS

struct DigestTests {
    @Test func sha1MatchesFIPSVectors() {
        #expect(Digest.hex(Digest.sha1(Array("abc".utf8))) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(Digest.hex(Digest.sha1([UInt8]())) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
    }

    /// Our own SHA-1 (no libcrypto) at the lengths where the padding takes one block or spills
    /// into a second; expected values from Python's hashlib.
    @Test func sha1AtPaddingBoundaries() {
        let expected = [
            55: "ddf57317ef34bfee3b6df83d359098930eb278bc", 56: "a0d492bb0fc889d0eca3bc137066ab6f4f74f369",
            63: "c55856749bef509bdfe6bfebfc7bf4e793e82132", 64: "bede92be29c3874e1b54ddc77988d606fc857a8e",
            65: "b05a80522b053d6dc7e0a517d0e70212c7dad11f", 119: "504e27376a6e0f0dba8295b85cb25dc4dfa17d23",
            120: "82134b02fb3f702491be9bed581eeab59334acb2", 1000: "4231a8a50a10fa9758db8ec71fdef855b751048a",
        ]
        for (length, digest) in expected {
            let bytes = (0..<length).map { UInt8(($0 * 7 + 3) % 256) }
            #expect(Digest.hex(Digest.sha1(bytes)) == digest, "length \(length)")
        }
    }

    @Test func sha256MatchesFIPSVector() {
        #expect(Digest.hex(Digest.sha256(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func base64MatchesRFC4648Vectors() {
        let vectors = ["": "", "f": "Zg==", "fo": "Zm8=", "foo": "Zm9v", "foob": "Zm9vYg==", "fooba": "Zm9vYmE=", "foobar": "Zm9vYmFy"]
        for (plain, encoded) in vectors { #expect(Digest.base64(Array(plain.utf8)) == encoded) }
    }

    @Test func webSocketAcceptKeyFromRFC6455() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==" + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
        #expect(Digest.base64(Digest.sha1(Array(key.utf8))) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test func randomBytesDiffer() {
        var a = [UInt8](repeating: 0, count: 32), b = a
        a.withUnsafeMutableBytes { Digest.randomBytes($0) }
        b.withUnsafeMutableBytes { Digest.randomBytes($0) }
        #expect(a != b)
    }
}
