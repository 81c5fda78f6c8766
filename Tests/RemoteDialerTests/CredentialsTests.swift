import Digest
import HTTP
import Reactor
import Testing
import TestSupport
import TLS
import Tunnel
@testable import RemoteDialer

/// The pieces of client and proxy authentication, without the network.
struct CredentialsTests {
    static let fooToken = "foo-token-0123456789"

    @Test func credentialsFilesParseTokensDigestsAndComments() throws {
        let digest = "5ef7dc2fbf4b1e69bd7c4b76cc5ee1bd36ac3b3e3e3d1f97e12b2e2c50f1b7c0"
        let file = try CredentialsFile(parsing: "# clients\nfoo \(Self.fooToken)\n\n  bar sha256:\(digest)  # hashed\n", file: "tokens")
        #expect(file.names == ["foo", "bar"])
        #expect(file.verify(name: "foo", token: Self.fooToken))
        #expect(!file.verify(name: "foo", token: Self.fooToken + "x"))
        #expect(!file.verify(name: "bar", token: Self.fooToken), "another client's token")
        #expect(!file.verify(name: "nobody", token: Self.fooToken))
        let hashed = try CredentialsFile(parsing: "bar sha256:\(Digest.hex(Digest.sha256(Array("bar-token-0123456789".utf8))))", file: "t")
        #expect(hashed.verify(name: "bar", token: "bar-token-0123456789"))
    }

    @Test(arguments: [
        ("foo\n", 1, "want NAME TOKEN"),
        ("ok \(CredentialsTests.fooToken)\nfoo short\n", 2, "token shorter than 16 characters"),
        ("foo sha256:abcd\n", 1, "sha256: wants 64 hex digits"),
        ("foo \(CredentialsTests.fooToken)\nfoo \(CredentialsTests.fooToken)\n", 2, "foo is listed twice"),
        ("foo \(CredentialsTests.fooToken) extra\n", 1, "unexpected text after the token"),
    ])
    func badLinesAreReportedWithFileAndLine(text: String, line: Int, reason: String) {
        #expect(throws: CredentialsFileError(file: "tokens.txt", line: line, reason: reason)) {
            try CredentialsFile(parsing: text, file: "tokens.txt")
        }
    }

    @Test func errorsNeverShowTheToken() {
        do {
            _ = try CredentialsFile(parsing: "foo secret-secret-secret extra", file: "f")
            Issue.record("parsed")
        } catch {
            #expect(!error.description.contains("secret"))
        }
    }

    @Test func base64DecodesStandardAlphabetWithOrWithoutPadding() {
        #expect(Digest.base64Decode("YWxpY2U6c2VjcmV0") == Array("alice:secret".utf8))
        #expect(Digest.base64Decode("YQ==") == [0x61])
        #expect(Digest.base64Decode("YQ") == [0x61])
        #expect(Digest.base64Decode("a b") == nil)
        // Every length and byte value survives a round trip through the encoder.
        var random = Xorshift.logged()
        for count in 0..<70 {
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            #expect(Digest.base64Decode(Digest.base64(bytes)) == bytes, "\(bytes)")
        }
    }

    @Test func addressRangesMatchByPrefixAndFamily() throws {
        let ranges = try AddressRanges("10.1.0.0/16, 127.0.0.1/32,::1/128,fd00::/8")
        func address(_ text: String) -> SocketAddress { try! SocketAddress(text) }
        #expect(ranges.contains(address("10.1.200.3:1")))
        #expect(!ranges.contains(address("10.2.0.1:1")))
        #expect(ranges.contains(address("127.0.0.1:80")))
        #expect(!ranges.contains(address("127.0.0.2:80")))
        #expect(ranges.contains(address("[::1]:80")))
        #expect(ranges.contains(address("[fd12::1]:80")))
        #expect(ranges.contains(address("[::ffff:127.0.0.1]:80")), "v4-mapped peers match IPv4 ranges")
        #expect(!ranges.contains(nil))
        #expect(throws: ConfigurationError.self) { try AddressRanges("300.1.1.1/8") }
        #expect(throws: ConfigurationError.self) { try AddressRanges("10.0.0.0/33") }
    }

    @Test func proxyUsersNeedATokenAndAScope() throws {
        let users = try CredentialsFile(parsing: "alice alice-token-0123456789 foo,team-*\nbob bob-token-0123456789 bar", file: "p", needsRest: true)
        let access = ProxyAccess(users: users)
        func decide(_ authorization: String?, client: String) -> ProxyAccess.Decision {
            var head = HTTPRequestHead(method: "GET", target: "/client/\(client)/http/x/")
            if let authorization { head.headers.add(name: "Authorization", value: authorization) }
            return access.decide(head: head, remoteAddress: try! SocketAddress("127.0.0.1:1"), clientKey: client)
        }
        guard case .refused(.unauthorized, let headers, _) = decide(nil, client: "foo") else { Issue.record("no token admitted"); return }
        #expect(headers["WWW-Authenticate"]?.hasPrefix("Bearer") == true)
        guard case .refused(.unauthorized, _, _) = decide("Bearer wrong-token-0123456789", client: "foo") else { Issue.record("wrong token admitted"); return }
        guard case .refused(.forbidden, _, _) = decide("Bearer bob-token-0123456789", client: "foo") else { Issue.record("out of scope admitted"); return }
        guard case .allowed(consumedAuthorization: true) = decide("Bearer alice-token-0123456789", client: "foo") else { Issue.record("alice refused"); return }
        guard case .allowed = decide("Bearer alice-token-0123456789", client: "team-7") else { Issue.record("pattern refused"); return }
        let basic = "Basic " + Digest.base64(Array("anyone:alice-token-0123456789".utf8))
        guard case .allowed = decide(basic, client: "foo") else { Issue.record("basic refused"); return }
    }

    @Test func withoutUsersOnlyAllowedAddressesGetIn() throws {
        let access = ProxyAccess(allowFrom: try AddressRanges("127.0.0.1/32"))
        let head = HTTPRequestHead(method: "GET", target: "/client/foo/http/x/")
        guard case .allowed(consumedAuthorization: false) = access.decide(head: head, remoteAddress: try SocketAddress("127.0.0.1:5"), clientKey: "foo") else {
            Issue.record("loopback refused"); return
        }
        guard case .refused(.forbidden, _, _) = access.decide(head: head, remoteAddress: try SocketAddress("127.0.0.2:5"), clientKey: "foo") else {
            Issue.record("127.0.0.2 admitted"); return
        }
    }

    @Test func clientCredentialsAcceptOnlyTheRightTokenForTheID() throws {
        let credentials = ClientCredentials(tokens: try CredentialsFile(parsing: "foo \(Self.fooToken)", file: "t"))
        func decide(_ id: String?, _ token: String?) -> AuthorizationDecision {
            var head = HTTPRequestHead(method: "GET", target: "/connect")
            if let id { head.headers.add(name: "X-Tunnel-ID", value: id) }
            if let token { head.headers.add(name: "X-API-Tunnel-Token", value: token) }
            return credentials.decide(TunnelUpgradeRequest(head: head, remoteAddress: nil))
        }
        #expect(decide("foo", Self.fooToken) == .accept(clientKey: "foo"))
        for (id, token) in [("foo", nil), ("foo", "wrong-token-0123456789"), ("bar", Self.fooToken), (nil, Self.fooToken)] as [(String?, String?)] {
            guard case .refuse(.unauthorized, _) = decide(id, token) else { Issue.record("\(String(describing: id)) admitted"); return }
        }
        let removed = credentials.replace(with: try CredentialsFile(parsing: "bar \(Self.fooToken)", file: "t"))
        #expect(removed == ["foo"])
        guard case .refuse = decide("foo", Self.fooToken) else { Issue.record("revoked token admitted"); return }
        #expect(decide("bar", Self.fooToken) == .accept(clientKey: "bar"))
    }
}

/// The admin API without tokens trusts loopback, so it must not answer a page that reached it by
/// DNS rebinding (its Host header is its own name).
struct AdminRebindingTests {
    @Test func onlyAddressesAndLocalhostAreAcceptedAsHost() {
        for host in ["127.0.0.1:8123", "localhost:8123", "LOCALHOST", "[::1]:8123", "::1", "10.0.0.1", nil] as [String?] {
            #expect(AdminAccess.namesThisMachine(host: host), "\(host ?? "none")")
        }
        for host in ["evil.example:8123", "evil.example", "127.0.0.1.nip.io", "localhost.evil.example:80"] {
            #expect(!AdminAccess.namesThisMachine(host: host), "\(host)")
        }
    }

    @Test func aRebindingPageIsRefusedEvenFromLoopback() throws {
        let access = AdminAccess()
        var head = HTTPRequestHead(method: "GET", target: "/api/clients")
        head.headers.add(name: "Host", value: "attacker.example:8123")
        let loopback = try SocketAddress("127.0.0.1:5000")
        #expect(access.refusal(head: head, remoteAddress: loopback)?.status == .forbidden)
        head.headers.replace(name: "Host", value: "127.0.0.1:8123")
        #expect(access.refusal(head: head, remoteAddress: loopback) == nil)
    }
}
