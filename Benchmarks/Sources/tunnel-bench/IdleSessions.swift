import Foundation
import Reactor
import RemoteDialer
import Tunnel

let sessionsSpec = ScenarioSpec(name: "sessions", columns: [
    Column(key: "sessions", label: "sessions", unit: ""), Column(key: "server_kib_per_session", label: "srv RSS/session", unit: "KiB"),
    Column(key: "connect_seconds", label: "connect", unit: "s"), Column(key: "sessions_per_s", label: "connect rate", unit: "sessions/s"),
    Column(key: "requests_ok", label: "requests ok", unit: ""),
], primary: "server_kib_per_session", charted: ["server_kib_per_session"])

/// K idle tunnel sessions from an in-harness protocol client (our client library on one loop,
/// pinging every 5 s like any client), the server's RSS growth per session, then one request
/// through each session to prove they all work.
func idleSessions(_ implementation: Implementation, sourcePort: UInt16, settings: Settings, scratch: URL) throws -> Metrics {
    let port = freePort()
    let server = try ChildProcess(name: "\(implementation.name)-server-sessions",
                                  arguments: [implementation.serverBinary, "-listen", "127.0.0.1:\(port)"] + implementation.serverArguments,
                                  directory: scratch, logDirectory: scratch)
    defer { server.stop() }
    guard waitUntilAccepting(port: port, while: server) else {
        throw HarnessError.failedToStart(implementation.name, "its server did not accept connections within 20 s", [server.logURL.path])
    }
    usleep(300_000)
    let rssBefore = server.rssBytes

    let group = try ReactorGroup(loopCount: 1, name: "sessions")
    defer { group.shutdown() }
    let loop = group.next()
    let count = settings.sessions
    let connected = ConnectedCounter()
    let url = try WebSocketURL("ws://127.0.0.1:\(port)/connect")
    let start = Date()
    loop.execute {
        var clients: [RemoteDialerClient] = []
        for index in 0..<count {
            let client = RemoteDialerClient(loop: loop, url: url, headers: [(TunnelHeaders.clientID, "idle-\(index)")])
            client.onConnect = { _ in connected.increment() }
            client.start()
            clients.append(client)
        }
        SessionClients.keep(clients)
    }
    let deadline = Date().addingTimeInterval(120)
    while connected.value < count && Date() < deadline { usleep(50_000) }
    let connectSeconds = Date().timeIntervalSince(start)
    guard connected.value == count else { throw HarnessError.transfer("sessions", "only \(connected.value) of \(count) sessions connected") }
    usleep(1_000_000)  // let the server settle (buffers shrink after the handshakes)
    let rssAfter = server.rssBytes

    // One request through each session, all in one curl (sequential, keep-alive).
    let urls = (0..<count).map { "http://127.0.0.1:\(port)/client/idle-\($0)/http/127.0.0.1:\(sourcePort)/small" }
    let list = scratch.appendingPathComponent("session-urls.txt")
    try urls.map { "url = \"\($0)\"\noutput = \"/dev/null\"\n" }.joined().write(to: list, atomically: true, encoding: .utf8)
    let result = try run(["curl", "-s", "-K", list.path, "-w", "%{http_code}\n"])
    let ok = result.out.split(separator: "\n").filter { $0 == "200" }.count
    loop.execute { SessionClients.stopAll() }
    usleep(200_000)
    return ["sessions": Double(count), "server_kib_per_session": Double(rssAfter - rssBefore) / 1024 / Double(count),
            "connect_seconds": connectSeconds, "sessions_per_s": Double(count) / connectSeconds, "requests_ok": Double(ok)]
}

final class ConnectedCounter: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}

/// Keeps the clients alive on their loop until the scenario ends.
enum SessionClients {
    nonisolated(unsafe) private static var clients: [RemoteDialerClient] = []  // touched only on the sessions loop
    static func keep(_ list: [RemoteDialerClient]) { clients = list }
    static func stopAll() {
        for client in clients { client.stop() }
        clients = []
    }
}
