import HTTP
import Testing
@testable import WebSocket

struct WebSocketHandshakeTests {
    static let key = "dGhlIHNhbXBsZSBub25jZQ=="

    static func request(method: String = "GET", _ fields: [(String, String)]) -> HTTPRequestHead {
        HTTPRequestHead(method: method, target: "/connect", headers: HTTPHeaders(fields))
    }

    static let upgrade: [(String, String)] = [
        ("Host", "example"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
        ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", key),
    ]

    static func without(_ name: String, adding extra: [(String, String)] = []) -> [(String, String)] {
        upgrade.filter { $0.0 != name } + extra
    }

    @Test func acceptValueIsTheRFCExample() {
        // RFC 6455 §1.3.
        #expect(WebSocketHandshake.acceptValue(forKey: Self.key) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test func validRequestGets101WithTheAcceptValue() throws {
        // Token lists and case differences are fine (RFC 6455 §4.2.1; browsers send "keep-alive, Upgrade").
        let variants = [Self.upgrade,
                        Self.without("Connection", adding: [("connection", "keep-alive, upgrade")]),
                        Self.without("Upgrade", adding: [("upgrade", "WebSocket")])]
        for fields in variants {
            let response = try WebSocketHandshake.validate(request: Self.request(fields)).get()
            #expect(response.status.code == 101)
            #expect(response.headers["Sec-WebSocket-Accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
            #expect(response.headers.containsToken("websocket", in: "Upgrade"))
            #expect(response.headers.containsToken("upgrade", in: "Connection"))
        }
    }

    @Test func invalidRequestsAreRefusedWithTheirStatus() {
        let cases: [(String, HTTPRequestHead, Int, String)] = [
            ("POST", Self.request(method: "POST", Self.upgrade), 405, "method is not GET"),
            ("no Connection", Self.request(Self.without("Connection")), 400, "'Connection'"),
            ("Connection without upgrade", Self.request(Self.without("Connection", adding: [("Connection", "keep-alive")])), 400, "'Connection'"),
            ("no Upgrade", Self.request(Self.without("Upgrade")), 400, "'Upgrade'"),
            ("Upgrade: h2c", Self.request(Self.without("Upgrade", adding: [("Upgrade", "h2c")])), 400, "'Upgrade'"),
            ("no version", Self.request(Self.without("Sec-WebSocket-Version")), 426, "version"),
            ("version 8", Self.request(Self.without("Sec-WebSocket-Version", adding: [("Sec-WebSocket-Version", "8")])), 426, "version"),
            ("no key", Self.request(Self.without("Sec-WebSocket-Key")), 400, "Sec-WebSocket-Key"),
            ("key of 15 bytes", Self.request(Self.without("Sec-WebSocket-Key", adding: [("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA")])), 400, "Sec-WebSocket-Key"),
            ("key with a bad character", Self.request(Self.without("Sec-WebSocket-Key", adding: [("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZ!==")])), 400, "Sec-WebSocket-Key"),
        ]
        for (name, request, status, bodyMentions) in cases {
            switch WebSocketHandshake.validate(request: request) {
            case .success: Issue.record("\(name): accepted")
            case .failure(let refusal):
                #expect(refusal.status.code == status, "\(name)")
                #expect(refusal.body.contains(bodyMentions), "\(name): \(refusal.body)")
            }
        }
    }

    @Test func generatedKeysAreValidAndFresh() {
        let keys = (0..<50).map { _ in WebSocketHandshake.makeKey() }
        #expect(keys.allSatisfy(WebSocketHandshake.isValidKey))
        #expect(Set(keys).count == keys.count)
    }
}
