import Foundation
import Glibc
import HTTP
import Reactor
import RemoteDialer
import Testing
import TestSupport
import Tunnel

/// The server on several loops (issue 13): sessions stay on the loop that accepted them; a
/// request for a session on another loop moves there, socket and all.
@Suite(.serialized)
struct MultiLoopServerTests {
    /// 1,000 sessions over 4 loops (on this 2-core machine); one request through each, on a new
    /// connection every time, so requesters land on every loop; every body checksummed.
    @Test func thousandSessionsOverFourLoopsServeRequestsAcceptedOnEveryLoop() throws {
        let fixture = try MultiLoopFixture(loops: 4)
        defer { fixture.shutdown() }
        let ids = (0..<1000).map { "c\($0)" }
        try fixture.connect(ids)
        try #require(fixture.waitForSessions(ids, seconds: 60), "not every client got a session")
        let perLoop = fixture.sessionsPerLoop()
        #expect(perLoop.count == 4 && perLoop.allSatisfy { $0 > 0 } && perLoop.reduce(0, +) == 1000, "sessions per loop \(perLoop)")

        let before = fixture.loopCounters()
        var wrong: [String] = []
        for (index, id) in ids.enumerated() {
            let size = 512 + index * 37
            let answer = fixture.get(client: id, path: "/blob/\(index)/\(size)")
            if answer?.status != 200 || answer?.body != MultiLoopFixture.blob(seed: index, size: size) { wrong.append(id) }
        }
        #expect(wrong.isEmpty, "\(wrong.count) requests failed or came back wrong, e.g. \(wrong.prefix(5))")
        let after = fixture.loopCounters()
        let accepted = zip(after, before).map { $0.accepted - $1.accepted }
        let moved = zip(after, before).map { $0.moved - $1.moved }
        print("1,000 requests: accepted per loop \(accepted), moved to the session's loop \(moved); sessions per loop \(perLoop)")
        #expect(accepted.allSatisfy { $0 > 0 }, "requests were not accepted on every loop: \(accepted)")
        // A requester lands on its session's loop about one time in four; the others move.
        #expect(moved.reduce(0, +) > 500 && moved.allSatisfy { $0 > 0 }, "moved \(moved)")
    }

    /// The whole transfer of a moved request runs on its session's loop: loops other than the
    /// session's read only the heads (and what came with them, at most a read's worth, which moves
    /// with the socket) and write nothing, while 16 MiB go each way.
    @Test func noByteOfAProxiedBodyCrossesAThread() throws {
        let fixture = try MultiLoopFixture(loops: 4)
        defer { fixture.shutdown() }
        try fixture.connect(["solo"])
        try #require(fixture.waitForSessions(["solo"]))
        let home = try #require(fixture.group.directory.loops(ofClient: "solo").first)
        let body = MultiLoopFixture.blob(seed: 99, size: 1 << 20)
        let before = fixture.loopCounters()
        for _ in 0..<16 {
            let answer = fixture.echo(client: "solo", body)
            #expect(answer?.status == 200 && answer?.body == body, "echo came back \(answer.map { "\($0.status), \($0.body.count) bytes" } ?? "nil")")
        }
        let after = fixture.loopCounters()
        let delta = zip(after, before).map { (accepted: $0.accepted - $1.accepted, moved: $0.moved - $1.moved,
                                              read: $0.read - $1.read, written: $0.written - $1.written) }
        print("16 × 1 MiB echoed through a session on loop \(home): per loop \(delta)")
        let others = delta.indices.filter { $0 != home }
        let acceptedElsewhere = others.reduce(0) { $0 + delta[$1].accepted }
        #expect(acceptedElsewhere > 0, "every requester landed on the session's loop: nothing was tested")
        for index in others {
            #expect(delta[index].moved == delta[index].accepted, "loop \(index) served a request itself")
            #expect(delta[index].written == 0, "loop \(index) wrote \(delta[index].written) bytes")
            #expect(delta[index].read <= delta[index].accepted * (64 << 10), "loop \(index) read \(delta[index].read) bytes for \(delta[index].accepted) heads")
        }
        #expect(delta[home].read >= 16 << 20 && delta[home].written >= 16 << 20)
    }

    /// A request with `Expect: 100-continue` gets one 100, from the loop that accepted it, not
    /// a second one from the loop it moved to.
    @Test func aMovedRequestIsToldContinueOnce() throws {
        let fixture = try MultiLoopFixture(loops: 4)
        defer { fixture.shutdown() }
        try fixture.connect(["expecting"])
        try #require(fixture.waitForSessions(["expecting"]))
        let before = fixture.loopCounters().reduce(0) { $0 + $1.moved }
        for round in 0..<8 {
            let fd = try #require(connectLoopback(port: fixture.port))
            defer { close(fd) }
            let head = "POST /client/expecting/http/127.0.0.1:\(fixture.targetPort)/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                + "Expect: 100-continue\r\nContent-Length: 5\r\n\r\n"
            #expect(sendAll(fd, Array(head.utf8) + Array("hello".utf8)))
            let reply = String(decoding: readToEnd(fd, seconds: 10) ?? [], as: UTF8.self)
            #expect(reply.components(separatedBy: "100 Continue").count == 2 && reply.contains("200 OK") && reply.contains("hello"),
                    "round \(round): \(reply)")
        }
        #expect(fixture.loopCounters().reduce(0) { $0 + $1.moved } > before, "no request moved: nothing was tested")
    }

    /// Requesters that vanish while their socket moves to the session's loop — closed or reset
    /// right after the head, or partway into a body, at varied moments — leave nothing behind on
    /// any loop: no HTTP connection, no descriptor (the tunnelled connections' target sockets are
    /// in this process too), and the session keeps serving.
    @Test
    func requestersVanishingAroundTheMoveLeaveNothingBehind() throws {
        // Without upstream keep-alive: answers that complete would leave idle pooled connections
        // (bounded, and UpstreamPoolEndToEndTests' subject), which this count cannot tell apart.
        var options = ServerOptions()
        options.upstreamIdlePerTarget = 0
        let fixture = try MultiLoopFixture(loops: 4, options: options)
        defer { fixture.shutdown() }
        try fixture.connect(["moving"])
        try #require(fixture.waitForSessions(["moving"]))
        #expect(fixture.get(client: "moving", path: "/blob/1/10")?.status == 200)
        // The session's own socket is an (upgraded) connection of its loop's HTTP server.
        let openConnections = { fixture.https.map { http in http.loop.runBlocking { http.value.openConnections } } }
        let idleConnections = openConnections()
        let idle = settledFileDescriptorCount()
        let movedBefore = fixture.loopCounters().reduce(0) { $0 + $1.moved }
        let target = "/client/moving/http/127.0.0.1:\(fixture.targetPort)"
        for round in 0..<200 {
            let fd = try #require(connectLoopback(port: fixture.port))
            let request = round % 2 == 0
                ? "GET \(target)/blob/\(round)/1048576 HTTP/1.1\r\nHost: x\r\n\r\n"
                : "POST \(target)/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npart of a body"
            _ = sendAll(fd, Array(request.utf8))
            if round % 4 < 2 {  // reset rather than close
                var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            }
            if round % 8 >= 4 { usleep(UInt32(round % 5) * 300) }
            close(fd)
        }
        #expect(fixture.loopCounters().reduce(0) { $0 + $1.moved } > movedBefore + 50, "few requests moved: nothing was tested")
        let drained = waitUntil(seconds: 15) { openConnections() == idleConnections }
        #expect(drained, "open connections per loop: \(openConnections()), before: \(idleConnections)")
        // Back to idle once every requester's socket is closed here, each one's Connect and
        // Error then sent to the client...
        #expect(waitUntil(seconds: 15) { openFileDescriptorCount() == idle }, "fds \(openFileDescriptorCount()), idle \(idle)")
        // ...which may not have read them yet. A request through the same session comes after
        // them on its WebSocket: once it is answered, the client has acted on each (a dial's
        // socket, the target's, are descriptors again until they end), and nothing may be left.
        let answer = fixture.get(client: "moving", path: "/blob/7/70000")
        #expect(answer?.status == 200 && answer?.body == MultiLoopFixture.blob(seed: 7, size: 70000))
        #expect(waitUntil(seconds: 15) { openFileDescriptorCount() == idle }, "after a request through the session: fds \(openFileDescriptorCount()), idle \(idle)")
    }

    /// From loop code on a loop without the session (a port forward accepted there) and from a
    /// plain thread (`async`): both reach the session's loop.
    @Test func dialsFromAForeignLoopAndFromAPlainThreadReachTheSessionsLoop() async throws {
        let fixture = try MultiLoopFixture(loops: 2)
        defer { fixture.shutdown() }
        try fixture.connect(["far"])
        try #require(fixture.waitForSessions(["far"]))
        let home = try #require(fixture.group.directory.loops(ofClient: "far").first)
        let foreign = fixture.group.servers[1 - home]
        let target = "127.0.0.1:\(fixture.targetPort)"

        // Loop code: a port forward on the foreign loop dials through the session elsewhere.
        let forwardPort = freePort()
        let spec = try PortForward.Spec(parsing: "127.0.0.1:\(forwardPort)=far/tcp/\(target)")
        let listener = try foreign.loop.runBlocking { () throws in
            LoopBound(try PortForward(spec: spec, server: foreign.value).listen(), loop: foreign.loop)
        }
        defer { foreign.loop.runBlocking { listener.value.close() } }
        let request = "GET /blob/5/70000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        let forwarded = MultiLoopFixture.response(rawExchange(port: forwardPort, request))
        #expect(forwarded?.status == 200 && forwarded?.body == MultiLoopFixture.blob(seed: 5, size: 70000))
        let moved = foreign.loop.runBlocking { foreign.value.requestsMoved }
        #expect(moved == 1, "the forwarded socket did not move to the session's loop")

        // A plain thread: async dial, bytes through an AsyncByteStream.
        let stream = try await fixture.group.dial(clientKey: "far", address: target)
        #expect(stream.loop === fixture.group.servers[home].loop)
        try await stream.write(Array(request.utf8))
        var received: [UInt8] = []
        while let chunk = try await stream.read() { received += chunk }
        let answer = MultiLoopFixture.response(received)
        #expect(answer?.status == 200 && answer?.body == MultiLoopFixture.blob(seed: 5, size: 70000))

        await #expect(throws: (any Error).self) { _ = try await fixture.group.dial(clientKey: "nobody", address: target) }
    }

    /// A client that leaves is gone from the directory, as every loop sees it, within a second.
    @Test func aClientLeavingIsGoneFromEveryLoopWithinASecond() throws {
        let fixture = try MultiLoopFixture(loops: 4)
        defer { fixture.shutdown() }
        let ids = (0..<16).map { "leaver\($0)" }
        try fixture.connect(ids)
        try #require(fixture.waitForSessions(ids))
        for id in ids.prefix(4) {
            let started = ContinuousClock.now
            fixture.disconnect(id)
            let gone = waitUntil(seconds: 1) { fixture.group.onEveryLoop { !$0.canReach(clientKey: id) && !$0.listClients().contains(id) }.allSatisfy { $0 } }
            #expect(gone, "\(id) still listed on some loop after \(ContinuousClock.now - started)")
            #expect(fixture.get(client: id, path: "/blob/1/10")?.status == 500)
        }
        #expect(fixture.group.directory.clientKeys == Array(ids.dropFirst(4)).sorted())
    }

    /// Each loop ends its silent sessions from one timer for all of them (the sessions arm none of
    /// their own): raw clients that never ping are closed once `idleTimeout` has passed, not before.
    @Test func silentSessionsAreEndedByTheirLoopsIdleCheck() throws {
        var options = ServerOptions()
        options.tunnel.idleTimeout = .milliseconds(600)
        let fixture = try MultiLoopFixture(loops: 2, options: options)
        defer { fixture.shutdown() }
        let started = ContinuousClock.now
        let clients = try (0..<6).map { try #require(RawTunnelClient(port: fixture.port, clientID: "silent\($0)")) }
        for client in clients {
            #expect(client.upgraded, "\(client.statusLine)")
            #expect(client.closeCode() != nil, "no Close within the socket's 5 s timeout")
        }
        #expect(ContinuousClock.now - started >= .milliseconds(600), "closed before the idle timeout")
        #expect(waitUntil(seconds: 5) { fixture.group.directory.clientKeys.isEmpty }, "\(fixture.group.directory.clientKeys)")
    }

    /// Two servers on two loops each, peered: requests through either reach the other's clients,
    /// whichever loop the requester, the peer links and the sessions landed on.
    @Test func peersOnSeveralLoopsRouteBothWays() throws {
        var optionsA = ServerOptions()
        optionsA.peerID = "a"
        optionsA.peerToken = "peer-secret"
        var optionsB = optionsA
        optionsB.peerID = "b"
        let a = try MultiLoopFixture(loops: 2, options: optionsA)
        defer { a.shutdown() }
        let b = try MultiLoopFixture(loops: 2, options: optionsB)
        defer { b.shutdown() }
        try a.group.servers[0].loop.runBlocking { () throws in try a.group.servers[0].value.addPeer(id: "b", token: "peer-secret", url: "ws://127.0.0.1:\(b.port)/connect") }
        try b.group.servers[0].loop.runBlocking { () throws in try b.group.servers[0].value.addPeer(id: "a", token: "peer-secret", url: "ws://127.0.0.1:\(a.port)/connect") }
        let onA = try a.connectOnEveryLoop((0..<8).map { "a-client\($0)" })
        let onB = try b.connectOnEveryLoop((0..<8).map { "b-client\($0)" })
        // Each server learns the other's clients from its peer's announcements.
        try #require(waitUntil(seconds: 20) { onB.allSatisfy { a.group.directory.canReach(clientKey: $0) } && onA.allSatisfy { b.group.directory.canReach(clientKey: $0) } },
                     "the peers never announced each other's clients")
        var failures: [String] = []
        for round in 0..<4 {
            for (index, id) in onB.enumerated() {
                let seed = round * 100 + index
                let answer = a.get(client: id, path: "/blob/\(seed)/\(4096 + seed)")
                // b's clients dial b's target (their side of the tunnel): the same blob service.
                if answer?.status != 200 || answer?.body != MultiLoopFixture.blob(seed: seed, size: 4096 + seed) { failures.append("a→\(id): \(answer?.status ?? 0)") }
            }
            for (index, id) in onA.enumerated() {
                let seed = round * 100 + index
                let answer = b.get(client: id, path: "/blob/\(seed)/\(4096 + seed)")
                if answer?.status != 200 || answer?.body != MultiLoopFixture.blob(seed: seed, size: 4096 + seed) { failures.append("b→\(id): \(answer?.status ?? 0)") }
            }
        }
        #expect(failures.isEmpty, "\(failures.count) of \(4 * (onA.count + onB.count)) peer-routed requests failed: \(failures.prefix(6))")
        let sessionLoops = (Set(onA.flatMap { a.group.directory.loops(ofClient: $0) }), Set(onB.flatMap { b.group.directory.loops(ofClient: $0) }))
        #expect(sessionLoops.0.count == 2 && sessionLoops.1.count == 2, "sessions did not spread over both loops: \(sessionLoops)")
    }
}

/// The bundled server on 4 loops, as an operator runs it.
@Suite(.serialized)
struct MultiLoopProgramTests {
    /// Eight clients (their sessions spread over the loops), a download through each, then every
    /// client is killed (-9) mid-transfer: each download is cut short by the server, and the
    /// server is back to its idle descriptors on every loop, still serving.
    ///
    /// The file is large beside what a download holds in flight: back-pressure bounds our
    /// buffers, but the kernel's socket buffers on the two hops hold ~20 MB more, and curl
    /// 7.88's `--limit-rate` lets it read ~10 MB in its first second. With 32 MiB a download
    /// could arrive whole before the kill (it did, rarely).
    @Test func killingClientsMidTransferFreesDescriptorsOnEveryLoop() throws {
        let deployment = try Deployment(fileSize: 160 << 20)
        let port = try deployment.startServer(["-loops", "4"])
        let server = deployment.servers[0]
        let idle = server.settledFileDescriptorCount
        let ids = (0..<8).map { "k\($0)" }
        let clients = try ids.map { try deployment.startClient(serverPort: port, id: $0) }
        // The server logs each session's loop ("loop=N" in its fields).
        let loops = Set(server.output.split(separator: "\n").filter { $0.contains("client session") }.compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix("loop=") }
        })
        #expect(loops.count >= 2, "all eight sessions on one loop: \(loops)")

        let downloads = try ids.map { id in
            let download = Process()
            download.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            // -f: a download cut before its head (a 500 from the server) counts as failed too.
            // Uncut, a download would take 80 s: past -m, so curl's own timeout (28) is no pass.
            download.arguments = ["-s", "-f", "-m", "60", "--limit-rate", "2M", "-o", "/dev/null", deployment.url(port, client: id)]
            try download.run()
            return download
        }
        defer { for download in downloads where download.isRunning { download.terminate() } }
        // Mid-transfer: every session and requester open (2 fds each at least).
        try #require(waitUntil(seconds: 20) { server.fileDescriptorCount >= idle + 16 }, "the downloads never got going: \(server.fileDescriptorCount) fds")
        usleep(500_000)
        for client in clients { client.kill9() }
        for download in downloads {
            download.waitUntilExit()
            // 18: the body ended before its Content-Length (the server closed); 56: reset.
            #expect([18, 56].contains(download.terminationStatus), "a download was not cut short by the server: curl exit \(download.terminationStatus)")
        }
        #expect(waitUntil(seconds: 10) { server.fileDescriptorCount == idle }, "server fds \(server.fileDescriptorCount), idle \(idle)")
        let clientsLeft = try curl(["http://127.0.0.1:\(port)/api/clients"])
        #expect(String(decoding: clientsLeft.body, as: UTF8.self).contains("\"clients\":[]"), "\(String(decoding: clientsLeft.body, as: UTF8.self))")
        #expect(server.isRunning)
    }
}
