import Testing
import TLS

struct DigestTests {
    @Test func sha1MatchesFIPSVectors() {
        #expect(Digest.hex(Digest.sha1(Array("abc".utf8))) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(Digest.hex(Digest.sha1([UInt8]())) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
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
