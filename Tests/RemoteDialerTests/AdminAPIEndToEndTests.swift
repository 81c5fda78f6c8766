import Foundation
import Glibc
import HTTP
import RemoteDialer
import Testing

/// The admin API against live servers with clients and a peer, parsed by Foundation's JSON
/// parser (not ours); its access rules; and the JSON writer's escaping.
@Suite(.serialized)
struct AdminAPIEndToEndTests {
    private func json(_ arguments: [String]) throws -> (Int, [String: Any]) {
        let answer = try curl(arguments)
        let object = (try? JSONSerialization.jsonObject(with: answer.body)) as? [String: Any] ?? [:]
        return (answer.status, object)
    }

    private func clients(_ document: [String: Any]) -> [[String: Any]] { document["clients"] as? [[String: Any]] ?? [] }

    @Test func clientsPeersOneClientsConnectionsAndDeleteAgainstLiveServers() throws {
        let deployment = try Deployment(fileSize: 32 << 20)
        let portA = freePort(), portB = freePort()
        try deployment.startServer(["-id", "a", "-token", "secret", "-peers", "b:secret:ws://127.0.0.1:\(portB)/connect"], port: portA)
        try deployment.startServer(["-id", "b", "-token", "secret", "-peers", "a:secret:ws://127.0.0.1:\(portA)/connect"], port: portB)
        try deployment.startClient(serverPort: portA, id: "foo")
        try deployment.startClient(serverPort: portA, id: "bar")
        try deployment.startClient(serverPort: portB, id: "baz", waitOn: portA)
        let api = "http://127.0.0.1:\(portA)/api"
        let started = Int(Date().timeIntervalSince1970)

        // A download in flight: its connection shows in foo's report, with bytes and a rate.
        let slow = Process()
        slow.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        slow.arguments = ["-s", "--limit-rate", "4M", "-o", "/dev/null", deployment.url(portA)]
        try slow.run()
        defer { if slow.isRunning { kill(slow.processIdentifier, SIGKILL); slow.waitUntilExit() } }
        var foo: [String: Any] = [:]
        let flowing = waitUntil(seconds: 10) {
            foo = (try? json(["\(api)/clients/foo"]))?.1 ?? [:]
            return (foo["rateFromClient"] as? Int ?? 0) > 0 && (foo["connections"] as? Int ?? 0) >= 1
        }
        #expect(flowing, "\(foo)")
        let sessions = foo["sessionList"] as? [[String: Any]] ?? []
        #expect(sessions.count == 1)
        let remoteAddress = sessions.first?["remoteAddress"] as? String
        #expect(remoteAddress?.hasPrefix("127.0.0.1:") == true, "\(String(describing: remoteAddress))")
        let connections = sessions.first?["connections"] as? [[String: Any]] ?? []
        let download = connections.first { $0["target"] as? String == "tcp/127.0.0.1:\(deployment.filePort)" }
        #expect(download != nil, "\(connections)")
        #expect((download?["bytesFromClient"] as? Int ?? 0) > 0)
        #expect((download?["bytesToClient"] as? Int ?? 0) > 0, "the request went to the client")

        let (status, listed) = try json(["\(api)/clients"])
        #expect(status == 200)
        #expect(clients(listed).map { $0["id"] as? String } == ["bar", "foo"], "a peer's client is not ours")
        let fooSummary = clients(listed).first { $0["id"] as? String == "foo" } ?? [:]
        #expect(fooSummary["sessions"] as? Int == 1)
        #expect(((fooSummary["connectedSince"] as? Int ?? 0) - started) <= 60 && (fooSummary["connectedSince"] as? Int ?? 0) >= started - 60)
        #expect((fooSummary["history"] as? [Int])?.isEmpty == false)
        let totals = listed["totals"] as? [String: Any] ?? [:]
        #expect(totals["clients"] as? Int == 2)
        #expect(totals["sessions"] as? Int == 2)
        #expect(listed["version"] as? String != nil)

        var peers: [[String: Any]] = []
        let linked = waitUntil(seconds: 10) {
            peers = (try? json(["\(api)/peers"]))?.1["peers"] as? [[String: Any]] ?? []
            return peers.first?["state"] as? String == "connected" && peers.first?["announced"] as? [String] == ["baz"]
        }
        #expect(linked, "\(peers)")
        #expect(peers.first?["id"] as? String == "b")
        #expect(peers.first?["url"] as? String == "ws://127.0.0.1:\(portB)/connect")

        // DELETE closes bar's sessions; bar reconnects (its token was not revoked).
        let (deleted, answer) = try json(["-X", "DELETE", "\(api)/clients/bar"])
        #expect(deleted == 200)
        #expect(answer["closedSessions"] as? Int == 1)
        #expect(waitUntil(seconds: 15) { (try? json(["\(api)/clients/bar"]))?.0 == 200 }, "bar never came back")
        #expect(try json(["-X", "DELETE", "\(api)/clients/nobody"]).0 == 404)
        #expect(try json(["\(api)/clients/nobody"]).0 == 404)
        #expect(try curl(["-X", "POST", "\(api)/clients"]).status == 405)
    }

    @Test func onlyLoopbackByDefaultAndOnlyBearerTokensWithAdminTokens() throws {
        let deployment = try Deployment()
        let outside = try deployment.startServer(["-admin-allow-from", "10.0.0.0/8"])
        #expect(try curl(["http://127.0.0.1:\(outside)/api/clients"]).status == 403)
        let open = try deployment.startServer()
        #expect(try curl(["http://127.0.0.1:\(open)/api/clients"]).status == 200)

        let tokens = deployment.directory.appendingPathComponent("admin-tokens")
        try "ops 7d1e9c3b5a2f4e6d8c0b\n".write(to: tokens, atomically: true, encoding: .utf8)
        let guarded = try deployment.startServer(["-admin-tokens", tokens.path])
        let url = "http://127.0.0.1:\(guarded)/api/clients"
        #expect(try curl([url]).status == 401)
        #expect(try curl(["-H", "Authorization: Bearer 7d1e9c3b5a2f4e6d8c0a", url]).status == 401)
        #expect(try curl(["-u", "ops:7d1e9c3b5a2f4e6d8c0b", url]).status == 401, "Bearer only")
        #expect(try curl(["-H", "Authorization: Bearer 7d1e9c3b5a2f4e6d8c0b", url]).status == 200)
        #expect(try curl(["-X", "DELETE", "http://127.0.0.1:\(guarded)/api/clients/foo"]).status == 401)
    }

    @Test func jsonStringsAreEscapedSoFoundationParsesThemBack() throws {
        let hostile = "q\"\\</script>\n\t\u{01}\u{2028}é"
        let document = JSONValue.object([("id", .string(hostile)), ("n", .int(-3)), ("list", .array([.bool(true)]))])
        #expect(!document.serialized.contains("</script>"))
        let parsed = try #require(JSONSerialization.jsonObject(with: Data(document.serialized.utf8)) as? [String: Any])
        #expect(parsed["id"] as? String == hostile)
        #expect(parsed["n"] as? Int == -3)
    }
}
