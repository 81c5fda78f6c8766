import Foundation
import Glibc
import Testing

/// `remotedialer-server -socks` with real SOCKS5 clients: curl (`socks5h://`, names resolved by
/// the tunnel client) and PySocks, downloads checked byte for byte, and every refusal.
@Suite(.serialized)
struct SOCKS5EndToEndTests {
    static let aliceToken = "alice-token-0123456789"
    static let bobToken = "bob-token-0123456789ab"

    /// A server with SOCKS5 on a port it picks, proxy users (alice: foo; bob: bar, nobody) and client foo.
    static func deployment(_ extra: [String] = []) throws -> (Deployment, socksPort: UInt16) {
        let deployment = try Deployment(fileSize: 4 << 20)
        let users = try deployment.write("alice \(aliceToken) foo\nbob \(bobToken) bar,nobody\n", to: "proxy-tokens")
        let port = try deployment.startServer(["-proxy-tokens", users, "-socks", "127.0.0.1:0"] + extra)
        try deployment.startClient(serverPort: port, probe: ["-H", "Authorization: Bearer \(aliceToken)"])
        var socksPort: UInt16?
        _ = waitUntil(seconds: 10) { socksPort = deployment.servers[0].port(after: "SOCKS5 listening on 127.0.0.1:"); return socksPort != nil }
        return (deployment, try #require(socksPort, "\(deployment.servers[0].output)"))
    }

    /// PySocks (a SOCKS client we did not write) fetches `/file` from `host:port` through the
    /// proxy, names resolved remotely; returns the body, or PySocks' error text.
    static func pysocks(socksPort: UInt16, user: String, password: String, host: String, port: UInt16) throws -> (body: Data, error: String) {
        let script = """
        import socks, sys
        s = socks.socksocket()
        s.set_proxy(socks.SOCKS5, "127.0.0.1", \(socksPort), rdns=True, username=sys.argv[1], password=sys.argv[2])
        s.settimeout(30)
        try:
            s.connect((sys.argv[3], int(sys.argv[4])))
        except Exception as e:
            sys.stderr.write(str(e)); sys.exit(1)
        s.sendall(b"GET /file HTTP/1.0\\r\\n\\r\\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk: break
            data += chunk
        sys.stdout.buffer.write(data.split(b"\\r\\n\\r\\n", 1)[1])
        """
        let run = try runTool(["python3", "-c", script, user, password, host, String(port)])
        return (run.output, run.errors)
    }

    @Test func curlAndPySocksDownloadThroughTheClientByteForByte() throws {
        let (deployment, socksPort) = try Self.deployment()
        // "localhost" is resolved by the tunnel client (socks5h), not by curl.
        for host in ["localhost", "127.0.0.1"] {
            let download = try curl(["-x", "socks5h://foo:\(Self.aliceToken)@127.0.0.1:\(socksPort)", "http://\(host):\(deployment.filePort)/file"])
            #expect(download.status == 200, "exit \(download.exitCode)")
            #expect(download.body == deployment.file)
        }
        let viaPySocks = try Self.pysocks(socksPort: socksPort, user: "foo", password: Self.aliceToken, host: "localhost", port: deployment.filePort)
        #expect(viaPySocks.error.isEmpty)
        #expect(viaPySocks.body == deployment.file)
    }

    @Test func refusalsCarryTheirReplyCodesAndASilentRequesterIsClosedAtTheHeadTimeout() throws {
        let (deployment, socksPort) = try Self.deployment(["-head-timeout", "1s"])
        func refusal(_ user: String, _ password: String, port: UInt16? = nil) throws -> String {
            try Self.pysocks(socksPort: socksPort, user: user, password: password, host: "127.0.0.1", port: port ?? deployment.filePort).error
        }
        #expect(try refusal("foo", "not-a-token-0123456789").contains("authentication failed"))
        #expect(try refusal("foo", Self.bobToken).contains("0x02: Connection not allowed by ruleset"))
        #expect(try refusal("nobody", Self.bobToken).contains("0x04: Host unreachable"))
        #expect(try refusal("foo", Self.aliceToken, port: freePort()).contains("0x05: Connection refused"))

        // BIND (which PySocks cannot send): "command not supported", then closed.
        let fd = try #require(connectLoopback(port: socksPort))
        defer { close(fd) }
        let bind: [UInt8] = [5, 1, 2] + [1, 3] + Array("foo".utf8) + [UInt8(Self.aliceToken.utf8.count)] + Array(Self.aliceToken.utf8)
            + [5, 2, 0, 1, 127, 0, 0, 1, 0, 80]
        #expect(sendAll(fd, bind))
        #expect(readToEnd(fd) == [5, 2, 1, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0])

        // A requester that stops after its greeting is closed when -head-timeout runs out.
        let silent = try #require(connectLoopback(port: socksPort))
        defer { close(silent) }
        #expect(sendAll(silent, [5, 1, 2]))
        let started = Date()
        #expect(readToEnd(silent, seconds: 5) == [5, 2])
        #expect(Date().timeIntervalSince(started) > 0.5)
    }
}
