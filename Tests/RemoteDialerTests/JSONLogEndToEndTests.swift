import Foundation
import Testing

/// `-log-format json`: every line the server writes is one JSON object (parsed by Foundation,
/// not by us) with time, level and message; session lines carry the client, session and remote
/// address as fields.
@Suite(.serialized)
struct JSONLogEndToEndTests {
    @Test func everyServerLineIsAJSONObjectAndSessionLinesCarryTheirFields() throws {
        let deployment = try Deployment()
        let port = try deployment.startServer(["-log-format", "json"])
        let client = try deployment.startClient(serverPort: port, id: "edge-1")
        client.stop()
        let server = deployment.servers[0]
        #expect(waitUntil(seconds: 10) { server.output.contains("ended") })

        let lines = server.output.split(separator: "\n")
        let records = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] }
        #expect(records.count == lines.count && !lines.isEmpty, "lines that are not JSON objects of strings:\n\(server.output)")
        for record in records {
            #expect(record["time"]?.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil, "\(record)")
            #expect(["info", "warning", "error", "notice", "debug", "trace", "critical"].contains(record["level"] ?? ""))
            #expect(!(record["message"] ?? "").isEmpty)
        }
        let connected = try #require(records.first { $0["message"]?.hasSuffix("connected") == true && $0["client"] != nil }, "\(records)")
        #expect(connected["client"] == "edge-1")
        #expect(Int64(connected["session"] ?? "") != nil)
        #expect(connected["remoteAddress"]?.hasPrefix("127.0.0.1:") == true)
        let ended = try #require(records.first { $0["message"]?.contains("ended") == true })
        #expect(ended["session"] == connected["session"])
    }
}
