import Foundation
import Glibc
import Testing

/// Against the Go implementation as shipped (rancher/remotedialer's demo programs), when a
/// developer has built them: set REMOTEDIALER_GO_BIN to a directory holding `server`, `client`
/// and `tokenclient` (a ten-line program around `remotedialer.ConnectToProxy` that sends
/// `X-Tunnel-ID` and, from REMOTEDIALER_TOKEN, `X-API-Tunnel-Token`). Go code is never part of
/// this repository, so CI skips these; the note of the stop that added them quotes a run.
/// Go's demo server needs GODEBUG=httpmuxgo121=0 when built outside a module (its route
/// patterns are Go 1.22 ServeMux syntax).
let goProgramsDirectory = ProcessInfo.processInfo.environment["REMOTEDIALER_GO_BIN"]

@Suite(.serialized, .enabled(if: goProgramsDirectory != nil, "REMOTEDIALER_GO_BIN is not set: no Go programs to test against"))
struct GoInteropEndToEndTests {
    static let fooToken = "foo-token-0123456789abcdef"

    func go(_ program: String, _ arguments: [String], environment: [String: String] = [:]) throws -> Subprocess {
        try Subprocess(program, arguments, environment: environment, executable: URL(fileURLWithPath: goProgramsDirectory!).appendingPathComponent(program))
    }

    @Test func aGoClientWithTheTokenIsAdmittedAndWithoutItRefused() throws {
        let deployment = try Deployment(fileSize: 1 << 20)
        let tokens = deployment.directory.appendingPathComponent("client-tokens").path
        try "foo \(Self.fooToken)\n".write(toFile: tokens, atomically: true, encoding: .utf8)
        let port = try deployment.startServer(["-client-tokens", tokens])
        let admitted = try go("tokenclient", ["ws://127.0.0.1:\(port)/connect", "foo"], environment: ["REMOTEDIALER_TOKEN": Self.fooToken])
        defer { admitted.stop() }
        #expect(waitUntil(seconds: 10) { (try? curl([deployment.url(port)]))?.body == deployment.file })
        let refused = try go("client", ["-connect", "ws://127.0.0.1:\(port)/connect", "-id", "foo"])
        defer { refused.stop() }
        #expect(waitUntil(seconds: 10) { refused.output.contains("failed authentication: missing X-API-Tunnel-Token") }, "\(refused.output.suffix(800))")
    }

    @Test func theGoDemoClientWorksWithAServerWithoutClientTokens() throws {
        let deployment = try Deployment(fileSize: 1 << 20)
        let port = try deployment.startServer()
        let client = try go("client", ["-connect", "ws://127.0.0.1:\(port)/connect", "-id", "foo"])
        defer { client.stop() }
        #expect(waitUntil(seconds: 10) { (try? curl([deployment.url(port)]))?.body == deployment.file })
    }

    @Test func ourClientWorksWithTheGoDemoServer() throws {
        let deployment = try Deployment(fileSize: 1 << 20)
        let port = freePort()  // Go's demo server cannot report the port it was given 0 for
        let server = try go("server", ["-listen", "127.0.0.1:\(port)"], environment: ["GODEBUG": "httpmuxgo121=0"])
        defer { server.stop() }
        try #require(waitUntil(seconds: 10) { canConnect(port: port) })
        // Not `startClient`: its probe asks for a range, and Go's demo forwards no request header.
        let client = try Subprocess("remotedialer-client", ["-connect", "ws://127.0.0.1:\(port)/connect", "-id", "foo"])
        defer { client.stop() }
        #expect(waitUntil(seconds: 10) { (try? curl([deployment.url(port)]))?.body == deployment.file }, "\(client.output.suffix(800))")
    }

    /// HA with a Go peer while our server runs on 4 loops (one peer link per loop, each
    /// announcing its own loop's sessions): requests through either server reach the other's
    /// clients, over and over from new connections, so they land on every loop.
    @Test func ourServerOnFourLoopsPeersWithTheGoDemoServerBothWays() throws {
        let deployment = try Deployment(fileSize: 1 << 20)
        let goPort = freePort()
        let ourPort = freePort()
        let goServer = try go("server", ["-listen", "127.0.0.1:\(goPort)", "-id", "b", "-token", "peer-secret",
                                         "-peers", "a:peer-secret:ws://127.0.0.1:\(ourPort)/connect"], environment: ["GODEBUG": "httpmuxgo121=0"])
        defer { goServer.stop() }
        try deployment.startServer(["-loops", "4", "-id", "a", "-token", "peer-secret", "-peers", "b:peer-secret:ws://127.0.0.1:\(goPort)/connect"],
                                   port: ourPort)
        try #require(waitUntil(seconds: 10) { canConnect(port: goPort) })
        let ours = (0..<4).map { "ours\($0)" }
        for id in ours { try deployment.startClient(serverPort: ourPort, id: id) }
        let goClient = try go("client", ["-connect", "ws://127.0.0.1:\(goPort)/connect", "-id", "theirs"])
        defer { goClient.stop() }
        // Go's demo forwards no request header (no Range): whole downloads.
        try #require(waitUntil(seconds: 20) { (try? curl([deployment.url(ourPort, client: "theirs")]))?.body == deployment.file },
                     "our server never reached the Go server's client: \(goServer.output.suffix(600))")
        try #require(waitUntil(seconds: 20) { ours.allSatisfy { (try? curl([deployment.url(goPort, client: $0)]))?.body == deployment.file } },
                     "the Go server never reached all our clients")
        var failures: [String] = []
        for round in 0..<8 {
            if (try? curl([deployment.url(ourPort, client: "theirs")]))?.body != deployment.file { failures.append("ours→theirs \(round)") }
            for id in ours where (try? curl([deployment.url(goPort, client: id)]))?.body != deployment.file { failures.append("go→\(id) \(round)") }
        }
        #expect(failures.isEmpty, "\(failures)")
    }
}
