import Testing
import Tunnel
@testable import RemoteDialer

struct AllowListTests {
    @Test func globPatternsMatchProtoAndAddress() throws {
        let list = try AllowList("tcp/127.0.0.1:*, tcp/*.internal:443")
        #expect(list.allows(proto: "tcp", address: "127.0.0.1:8125"))
        #expect(list.allows(proto: "tcp", address: "db.internal:443"))
        #expect(!list.allows(proto: "tcp", address: "db.internal:80"))
        #expect(!list.allows(proto: "udp", address: "127.0.0.1:53"))
        #expect(!list.allows(proto: "tcp", address: "10.0.0.1:22"))
    }

    @Test func patternWithoutProtoIsRejected() {
        #expect(throws: ConfigurationError.self) { try AllowList("127.0.0.1:*") }
    }

    @Test func webSocketURLsParse() throws {
        let url = try WebSocketURL("ws://localhost:8123/connect")
        #expect(url.host == "localhost" && url.port == 8123 && url.path == "/connect" && !url.secure)
        let v6 = try WebSocketURL("wss://[::1]/x?y=1")
        #expect(v6.host == "::1" && v6.port == 443 && v6.path == "/x?y=1" && v6.hostHeader == "[::1]")
        #expect(throws: ConfigurationError.self) { try WebSocketURL("http://x") }
    }
}
