import Foundation
import Glibc
import Testing
import Tunnel

/// The bundled server attacked from outside as issue 11 found it: each test is one of the
/// defects found against 06925ba, driven with raw sockets against the real programs.
@Suite(.serialized)
struct HostileInputTests {
    /// A server and a raw session "mallory" on it, for the flood tests.
    private func serverWithAttacker() throws -> (Deployment, UInt16, Subprocess, RawTunnelClient) {
        let deployment = try Deployment(fileSize: 1024)
        let port = try deployment.startServer()
        let attacker = try #require(RawTunnelClient(port: port, clientID: "mallory"))
        try #require(attacker.upgraded, "\(attacker.statusLine)")
        return (deployment, port, deployment.servers[0], attacker)
    }

    /// Item 1: a malformed chunked body on the proxy route got 400, then the upstream answer
    /// reached an exchange whose connection was gone and the whole server aborted.
    @Test func malformedChunkedBodiesOnTheProxyRouteNeverCrashTheServer() throws {
        let deployment = try Deployment()
        let port = try deployment.startServer()
        try deployment.startClient(serverPort: port)
        let shapes = ["zz\r\n", "ffffffffffffffffff\r\n", "5\r\nhello\r\nzz\r\n", "-5\r\n"]
        for shape in shapes {
            for _ in 0..<10 {
                let socket = try #require(RawSocket(port: port))
                socket.send("GET /client/foo/http/127.0.0.1:\(deployment.filePort)/file HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\(shape)")
                let answer = try #require(socket.answerUntilClosed(), "no close after a bad chunk")
                #expect(answer.hasPrefix("HTTP/1.1 400 "), "\(shape.debugDescription): \(answer.prefix(80))")
            }
        }
        // The upstream answers arrive after the requesters are gone: give them time to.
        usleep(500_000)
        let server = deployment.servers[0]
        #expect(server.isRunning, "server died: \(server.output.suffix(2000))")
        let download = try curl([deployment.url(port)])
        #expect(download.status == 200 && download.body == deployment.file)
    }

    /// Item 2: silent sockets, slowloris heads and a half-sent upgrade are closed at the head
    /// timeout (a slow head hears 408); nothing they held stays open.
    @Test func silentSlowAndHalfUpgradedSocketsAreClosedAtTheHeadTimeout() throws {
        let deployment = try Deployment(fileSize: 1024)
        let port = try deployment.startServer(["-head-timeout", "1s"])
        let server = deployment.servers[0]
        let idleFDs = server.settledFileDescriptorCount
        let start = Date()
        let silent = try (0..<200).map { _ in try #require(RawSocket(port: port, receiveTimeout: 8)) }
        let slow = try (0..<50).map { _ in try #require(RawSocket(port: port, receiveTimeout: 8)) }
        let upgrade = try #require(RawSocket(port: port, receiveTimeout: 8))
        upgrade.send("GET /connect HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
        // One byte every 200 ms on each slow socket, as long as the server lets them.
        let request = Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        var position = 0
        while Date().timeIntervalSince(start) < 5 {
            var anyOpen = false
            for socket in slow where position < request.count {
                anyOpen = socket.send([request[position]]) || anyOpen
            }
            position += 1
            if !anyOpen { break }
            usleep(200_000)
        }
        for socket in slow {
            let answer = try #require(socket.answerUntilClosed(), "a slowloris socket was never closed")
            #expect(answer.hasPrefix("HTTP/1.1 408 "), "\(answer.prefix(60))")
        }
        for socket in silent { #expect(socket.answerUntilClosed() == "", "a silent socket was kept, or answered") }
        #expect(upgrade.answerUntilClosed()?.hasPrefix("HTTP/1.1 408 ") == true, "a half-sent upgrade was kept")
        let elapsed = Date().timeIntervalSince(start)
        #expect(elapsed >= 0.9 && elapsed < 4, "closed after \(elapsed) s with a 1 s head timeout")
        #expect(waitUntil(seconds: 3) { server.fileDescriptorCount <= idleFDs }, "fds \(server.fileDescriptorCount) vs idle \(idleFDs)")
    }

    /// Item 2: a kept-alive connection idle past its timeout is closed; so is a request whose
    /// body stops arriving.
    @Test func idleKeepAliveAndStalledBodiesAreClosed() throws {
        let deployment = try Deployment(fileSize: 1024)
        let port = try deployment.startServer(["-keepalive-timeout", "1s", "-body-timeout", "1s"])
        let keptAlive = try #require(RawSocket(port: port, receiveTimeout: 5))
        keptAlive.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        let start = Date()
        let answer = try #require(keptAlive.answerUntilClosed(), "kept-alive socket never closed")
        #expect(answer.hasPrefix("HTTP/1.1 200 ") && answer.hasSuffix("ok\n"), "\(answer)")
        #expect(Date().timeIntervalSince(start) >= 0.9, "closed before the keep-alive timeout")

        let stalled = try #require(RawSocket(port: port, receiveTimeout: 5))
        stalled.send("PUT /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
        var received: [UInt8] = []
        #expect(stalled.readUntilClosed(into: &received), "a stalled body kept its connection")
    }

    /// Item 3: requesters that hang up end their tunnelled connections within a second, on the
    /// server, on the client and at the target, whether or not the target answered.
    @Test func requesterHangUpEndsTheTunnelledConnectionAtOnce() throws {
        let deployment = try Deployment(fileSize: 1024)
        let port = try deployment.startServer()
        let client = try deployment.startClient(serverPort: port)
        let server = deployment.servers[0]
        let hole = BlackHole()
        let idleServer = server.settledFileDescriptorCount, idleClient = client.settledFileDescriptorCount
        let requesters = try (0..<50).map { _ in try #require(RawSocket(port: port)) }
        for socket in requesters {
            socket.send("GET /client/foo/http/127.0.0.1:\(hole.port)/x?timeout=60 HTTP/1.1\r\nHost: x\r\n\r\n")
        }
        #expect(waitUntil(seconds: 10) { hole.accepted == 50 }, "the target saw \(hole.accepted) of 50 connections")
        let hungUp = Date()
        for socket in requesters { shutdown(socket.fd, Int32(SHUT_RDWR)) }
        #expect(waitUntil(seconds: 5) { hole.ended == 50 }, "the target saw \(hole.ended) of 50 ends")
        let targetEnded = Date().timeIntervalSince(hungUp)
        #expect(targetEnded < 1.5, "tunnelled connections ended \(targetEnded) s after the hang-up")
        #expect(waitUntil(seconds: 2) { server.fileDescriptorCount <= idleServer }, "server fds \(server.fileDescriptorCount) vs \(idleServer)")
        #expect(waitUntil(seconds: 2) { client.fileDescriptorCount <= idleClient }, "client fds \(client.fileDescriptorCount) vs \(idleClient)")
    }

    /// Item 3: `?timeout=` is a whole number of seconds and never more than the server allows.
    @Test func proxyTimeoutIsValidatedAndCapped() throws {
        let deployment = try Deployment(fileSize: 1024)
        let port = try deployment.startServer(["-max-proxy-timeout", "1s"])
        try deployment.startClient(serverPort: port)
        for bad in ["abc", "-1", "1.5"] {
            let refused = try curl([deployment.url(port, path: "file?timeout=\(bad)")])
            #expect(refused.status == 400, "timeout=\(bad) got \(refused.status)")
        }
        let hole = BlackHole()
        let start = Date()
        let capped = try curl([deployment.url(port, target: "127.0.0.1:\(hole.port)", path: "x?timeout=100")])
        let elapsed = Date().timeIntervalSince(start)
        #expect(capped.status == 500)
        #expect(String(decoding: capped.body, as: UTF8.self).hasSuffix("context deadline exceeded (Client.Timeout exceeded while awaiting headers)"))
        #expect(elapsed > 0.9 && elapsed < 5, "answered after \(elapsed) s with a 1 s cap")
    }

    /// Item 4: Data for unknown ids from a client that never reads: before, each got an Error
    /// reply queued without bound (~60 MB per session). Now one per id, none while backed up.
    @Test func unknownIDFloodFromAClientThatNeverReadsKeepsMemoryBounded() throws {
        let (deployment, port, server, attacker) = try serverWithAttacker()
        defer { withExtendedLifetime((deployment, port)) {} }  // its deinit stops the programs
        let before = server.peakResidentBytes
        let sent = attacker.send((0..<1_500_000).lazy.map { index in
            TunnelMessage.data(id: Int64(index + 1), connID: Int64(1_000_000 + index), [0x41])
        })
        #expect(sent, "the server cut the session before the flood ended")
        // Let the server read and answer what is in flight.
        #expect(waitUntil(seconds: 10) { server.output.contains("mallory") })
        usleep(500_000)
        let growth = server.peakResidentBytes - before
        #expect(growth < 24 << 20, "peak RSS grew by \(growth >> 20) MiB")
        #expect(server.isRunning)
    }

    /// Item 5: a client session's AddClient floods stored every key (1M → 297 MB) and could
    /// steer other clients' traffic to it; now they are ignored.
    @Test func addClientFloodFromAClientSessionStoresNothing() throws {
        let (deployment, port, server, attacker) = try serverWithAttacker()
        defer { withExtendedLifetime((deployment, port)) {} }  // its deinit stops the programs
        let before = server.peakResidentBytes
        #expect(attacker.send((0..<300_000).lazy.map { index in
            TunnelMessage.addClient(id: Int64(index + 1), RemoteClient(clientKey: "victim-\(index)", sessionKey: 1))
        }))
        usleep(500_000)
        let routed = try curl([deployment.url(port, client: "victim-5")])
        #expect(routed.status == 500)
        #expect(String(decoding: routed.body, as: UTF8.self).hasSuffix("failed to find Session for client victim-5"))
        let growth = server.peakResidentBytes - before
        #expect(growth < 24 << 20, "peak RSS grew by \(growth >> 20) MiB")
        #expect(server.output.contains("ignored announcement of victim-0: not a peer"))
    }

    /// Item 6: each refused Connect wrote one log line; a flood now writes about one a second.
    @Test func connectFloodWritesABoundedNumberOfLogLines() throws {
        let (deployment, port, server, attacker) = try serverWithAttacker()
        defer { withExtendedLifetime((deployment, port)) {} }  // its deinit stops the programs
        let start = Date()
        for round in 0..<4 {
            #expect(attacker.send((0..<10_000).lazy.map { index in
                TunnelMessage.connect(id: Int64(round * 10_000 + index + 1), connID: Int64(round * 10_000 + index + 1),
                                      ConnectTarget(proto: "tcp", address: "127.0.0.1:\(index)"))
            }))
            _ = attacker.socket.read(atLeast: 1 << 16)  // read some answers so the session stays up
            usleep(300_000)
        }
        let seconds = Date().timeIntervalSince(start)
        let lines = server.output.split(separator: "\n").filter { $0.contains("refused connect") }
        #expect(lines.count >= 1 && Double(lines.count) <= seconds + 2, "\(lines.count) lines in \(seconds) s")
        #expect(lines.contains { $0.contains("more suppressed") })
    }

    /// Item 7: at the connection limit the listener stops accepting, and resumes below it.
    @Test func listenerPausesAtTheConnectionCapAndRecovers() throws {
        let deployment = try Deployment(fileSize: 1024)
        let port = try deployment.startServer(["-max-connections", "8", "-head-timeout", "60s"])
        let server = deployment.servers[0]
        let idle = server.settledFileDescriptorCount
        var holders = try (0..<8).map { _ in try #require(RawSocket(port: port)) }
        #expect(waitUntil(seconds: 10) { server.fileDescriptorCount >= idle + 8 })
        let refused = try curl(["http://127.0.0.1:\(port)/healthz"], timeout: 1)
        #expect(refused.exitCode == 28, "served beyond the cap: status \(refused.status), curl exit \(refused.exitCode)")
        holders.removeFirst(4)
        let served = try curl(["http://127.0.0.1:\(port)/healthz"], timeout: 5)
        #expect(served.status == 200)
        #expect(server.isRunning)
    }

    /// Item 7: sockets accepted by the SOCKS5 and `-forward` listeners count against the same
    /// cap as HTTP's: at the cap no listener takes another, below it they all do.
    @Test func socksAndForwardSocketsCountAgainstTheConnectionCap() throws {
        let deployment = try Deployment(fileSize: 1024)
        let forwardPort = freePort()
        let port = try deployment.startServer(["-max-connections", "3", "-head-timeout", "60s", "-socks", "127.0.0.1:0",
                                               "-forward", "127.0.0.1:\(forwardPort)=nobody/tcp/127.0.0.1:9"])
        let server = deployment.servers[0]
        var socksPort: UInt16?
        _ = waitUntil(seconds: 10) { socksPort = server.port(after: "SOCKS5 listening on 127.0.0.1:"); return socksPort != nil }
        let socks = try #require(socksPort)
        let idle = server.settledFileDescriptorCount
        // A SOCKS5 greeting (username/password offered) is answered by an accepted socket only.
        let greeting: [UInt8] = [5, 1, 2]
        func greets(_ socket: RawSocket) -> Bool { socket.send(greeting) && socket.read(atLeast: 2) == [5, 2] }
        var holders = try (0..<3).map { _ in try #require(RawSocket(port: socks, receiveTimeout: 2)) }
        #expect(holders.allSatisfy(greets), "below the cap the SOCKS5 listener answers")
        #expect(waitUntil(seconds: 10) { server.fileDescriptorCount >= idle + 3 })
        // At the cap: no listener accepts, so nothing answers.
        let waiting = try #require(RawSocket(port: socks, receiveTimeout: 1))
        #expect(!greets(waiting), "a SOCKS5 socket was served beyond the cap")
        let refused = try curl(["http://127.0.0.1:\(port)/healthz"], timeout: 1)
        #expect(refused.exitCode == 28, "HTTP served beyond the cap: status \(refused.status), curl exit \(refused.exitCode)")
        // Below it again: the waiting socket is taken and answered.
        holders.removeFirst(2)
        #expect(waiting.read(atLeast: 2) == [5, 2] || greets(waiting), "the waiting SOCKS5 socket was never served")
        // The forward listener stops at the cap too: its socket waits (no EOF); below the cap it
        // is taken, and closed at once (client "nobody" has no session).
        holders.append(try #require(RawSocket(port: socks, receiveTimeout: 2)))
        #expect(greets(holders.last!))
        let forwarded = try #require(RawSocket(port: forwardPort, receiveTimeout: 1))
        var byte: UInt8 = 0
        #expect(recv(forwarded.fd, &byte, 1, 0) < 0, "the forward listener accepted beyond the cap")
        holders.removeFirst()
        #expect(waitUntil(seconds: 10) { recv(forwarded.fd, &byte, 1, 0) == 0 }, "the forward listener never took its waiting socket")
        #expect(server.isRunning)
    }

    /// Item 7: sessions per client key are capped.
    @Test func sessionsPerClientAreCapped() throws {
        let deployment = try Deployment(fileSize: 1024)
        let port = try deployment.startServer(["-max-sessions-per-client", "2"])
        let first = try #require(RawTunnelClient(port: port, clientID: "foo"))
        let second = try #require(RawTunnelClient(port: port, clientID: "foo"))
        let third = try #require(RawTunnelClient(port: port, clientID: "foo"))
        let other = try #require(RawTunnelClient(port: port, clientID: "bar"))
        #expect(first.upgraded && second.upgraded && other.upgraded)
        #expect(third.statusLine.hasPrefix("HTTP/1.1 429 "), "\(third.statusLine)")
    }

    /// Item 8: protocol errors end the WebSocket with 1002, a text message with 1003.
    @Test func protocolViolationsCloseWith1002And1003() throws {
        let deployment = try Deployment(fileSize: 1024)
        let port = try deployment.startServer()
        let texter = try #require(RawTunnelClient(port: port, clientID: "texter"))
        texter.socket.send(RawTunnelClient.frame(opcode: 0x1, Array("hello".utf8)))
        #expect(texter.closeCode() == 1003)
        let garbler = try #require(RawTunnelClient(port: port, clientID: "garbler"))
        garbler.socket.send(RawTunnelClient.frame(opcode: 0x2, [0x80]))  // a varint that never ends
        #expect(garbler.closeCode() == 1002)
    }

    /// Item 4: the server-wide cap on buffered bytes closes the session holding the most.
    @Test func bufferCapClosesTheLargestSessionFirst() throws {
        let deployment = try Deployment(fileSize: 1024)
        let port = try deployment.startServer(["-max-buffered", "2M", "-max-write-queue", "64M"])
        let server = deployment.servers[0]
        let bystander = try #require(RawTunnelClient(port: port, clientID: "bystander"))
        let hog = try #require(RawTunnelClient(port: port, clientID: "hog"))
        try #require(hog.upgraded && bystander.upgraded)
        // Pings with the largest payload, never reading the pongs: they queue on the server.
        let ping = RawTunnelClient.frame(opcode: 0x9, [UInt8](repeating: 0x50, count: 125))
        var batch: [UInt8] = []
        for _ in 0..<8192 { batch += ping }
        for _ in 0..<16 where hog.socket.send(batch) {}
        #expect(waitUntil(seconds: 10) { server.output.contains("closing session hog/") }, "\(server.output.suffix(1000))")
        #expect(!server.output.contains("closing session bystander/"))
    }

    /// 5,000 random and mutated requests through `/client/...` to a live client, half of them
    /// hung up at once: the server never dies and its fds come back to idle.
    @Test func randomAndMutatedProxyRequestsNeverKillTheServer() throws {
        let deployment = try Deployment(fileSize: 64 << 10)
        let port = try deployment.startServer(["-head-timeout", "1s", "-body-timeout", "1s"])
        try deployment.startClient(serverPort: port)
        let server = deployment.servers[0]
        let idle = server.settledFileDescriptorCount
        let seed = UInt64.random(in: 1...UInt64.max)
        print("randomAndMutatedProxyRequestsNeverKillTheServer seed \(seed)")
        let filePort = deployment.filePort
        // Each requester half-closes at once, or waits up to 200 ms for the answer and hangs
        // up: both shapes reach the paths where the upstream answers after the requester left.
        let workers = 25
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var random = SplitMix(seed: seed &+ UInt64(worker))
            for _ in 0..<(5000 / workers) {
                let request = RequestFuzzer.request(&random, target: "127.0.0.1:\(filePort)")
                guard let socket = RawSocket(port: port, receiveTimeout: 0.2) else { continue }
                socket.send(request)
                if random.next() % 2 == 0 { shutdown(socket.fd, Int32(SHUT_WR)) }
                var received: [UInt8] = []
                _ = socket.readUntilClosed(into: &received)
            }
        }
        #expect(server.isRunning, "server died (seed \(seed)): \(server.output.suffix(2000))")
        #expect(waitUntil(seconds: 5) { server.fileDescriptorCount <= idle }, "fds \(server.fileDescriptorCount) vs idle \(idle) (seed \(seed))")
        let download = try curl([deployment.url(port)])
        #expect(download.status == 200 && download.body == deployment.file)
    }
}

/// A small, replayable random source (SplitMix64).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}

/// Requests to the proxy route: well-formed ones with random methods, framing and bodies, and
/// the same with bytes flipped, cut, duplicated or inserted.
enum RequestFuzzer {
    static let methods = ["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH", "G\u{0}T", ""]
    static let paths = ["file", "", "..%2f..%2fetc", "file?timeout=1", "file?timeout=x", "%00", String(repeating: "a", count: 3000)]

    static func request(_ random: inout SplitMix, target: String) -> [UInt8] {
        let method = methods[random.below(methods.count)]
        let path = paths[random.below(paths.count)]
        let client = random.below(8) == 0 ? "nobody" : "foo"
        var head = "\(method) /client/\(client)/http/\(target)/\(path) HTTP/1.\(random.below(3))\r\nHost: x\r\n"
        var body: [UInt8] = []
        switch random.below(4) {
        case 0:
            body = Array(repeating: 0x61, count: random.below(3000))
            head += "Content-Length: \(body.count + random.below(3) - 1)\r\n"
        case 1:
            head += "Transfer-Encoding: chunked\r\n"
            for _ in 0..<random.below(4) {
                let size = random.below(300)
                body += Array(String(size, radix: 16).utf8) + [13, 10] + Array(repeating: 0x62, count: size) + [13, 10]
            }
            if random.below(2) == 0 { body += Array("0\r\n\r\n".utf8) }
        case 2:
            head += "Expect: 100-continue\r\nContent-Length: 5\r\n"
            body = Array("hello".utf8)
        default:
            break
        }
        if random.below(5) == 0 { head += "Connection: close\r\n" }
        var bytes = Array((head + "\r\n").utf8) + body
        for _ in 0..<(random.below(2) == 0 ? 0 : 1 + random.below(4)) where !bytes.isEmpty {
            let index = random.below(bytes.count)
            switch random.below(4) {
            case 0: bytes[index] ^= UInt8(truncatingIfNeeded: 1 << random.below(8))
            case 1: bytes.removeSubrange(index...)
            case 2: bytes.insert(UInt8(truncatingIfNeeded: random.next()), at: index)
            default: bytes += bytes[index...].prefix(200)
            }
        }
        return bytes
    }
}
