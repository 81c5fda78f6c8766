import Foundation
import Glibc
import Testing

/// The bundled programs as an operator runs them, driven over loopback by curl.
final class Deployment {
    let directory: URL
    let filePort = freePort()
    var dummy: Subprocess!
    var servers: [Subprocess] = []
    var clients: [Subprocess] = []

    /// A directory with `file` (`size` random bytes) served by remotedialer-dummy.
    init(fileSize: Int = 4 << 20) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // Random bytes: a misplaced or repeated piece of a download cannot match by chance.
        let random = try #require(FileHandle(forReadingAtPath: "/dev/urandom"))
        defer { try? random.close() }
        try random.readData(ofLength: fileSize).write(to: directory.appendingPathComponent("file"))
        dummy = try Subprocess("remotedialer-dummy", ["-listen", "127.0.0.1:\(filePort)"], directory: directory)
        try #require(waitUntil(seconds: 10) { canConnect(port: filePort) }, "dummy did not start: \(dummy.output)")
    }

    var file: Data { (try? Data(contentsOf: directory.appendingPathComponent("file"))) ?? Data() }

    /// Writes `text` to `name` in the deployment's directory (a token or peers file); returns its path.
    func write(_ text: String, to name: String) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Starts a server on `port`, or on a port the kernel picks (read from its "listening on"
    /// line, so no other process can take it between choosing and binding); returns the port.
    @discardableResult
    func startServer(_ extra: [String] = [], port: UInt16? = nil) throws -> UInt16 {
        let server = try Subprocess("remotedialer-server", ["-listen", "127.0.0.1:\(port ?? 0)"] + extra)
        servers.append(server)
        var bound = port
        if bound == nil { _ = waitUntil(seconds: 10) { bound = server.port(after: "listening on 127.0.0.1:"); return bound != nil } }
        let listening = try #require(bound, "server did not say where it listens: \(server.output)")
        try #require(waitUntil(seconds: 10) { canConnect(port: listening) }, "server did not start: \(server.output)")
        return listening
    }

    /// Starts a client and waits until the server routes to it.
    @discardableResult
    /// `extra` may override `-connect`; `viaTLS` is the CA to check an HTTPS server with.
    /// `environment` is the client's (e.g. REMOTEDIALER_TOKEN); `probe` adds curl arguments to
    /// the reachability probe (e.g. a proxy credential).
    func startClient(serverPort: UInt16, id: String = "foo", _ extra: [String] = [], waitOn checkPort: UInt16? = nil,
                     viaTLS caFile: String? = nil, environment: [String: String] = [:], probe extraProbe: [String] = []) throws -> Subprocess {
        let connect = extra.contains("-connect") ? [] : ["-connect", "ws://127.0.0.1:\(serverPort)/connect"]
        let client = try Subprocess("remotedialer-client", connect + ["-id", id] + extra, environment: environment)
        clients.append(client)
        let port = checkPort ?? serverPort
        let routed = waitUntil(seconds: 10) {
            let probe = (caFile.map { ["--cacert", $0] } ?? []) + extraProbe
            return (try? curl(probe + [url(port, client: id, scheme: caFile == nil ? "http" : "https"), "-r", "0-0"]))?.status == 206
        }
        try #require(routed, "client \(id) never reachable: \(client.output)")
        return client
    }

    func url(_ serverPort: UInt16, client: String = "foo", target: String? = nil, path: String = "file", scheme: String = "http") -> String {
        let host = scheme == "https" ? "localhost" : "127.0.0.1"
        return "\(scheme)://\(host):\(serverPort)/client/\(client)/http/\(target ?? "127.0.0.1:\(filePort)")/\(path)"
    }

    deinit {
        for process in clients + servers { process.stop() }
        dummy?.stop()
        try? FileManager.default.removeItem(at: directory)
    }
}

@Suite(.serialized)
struct ProgramsEndToEndTests {
    @Test func downloadThroughTheTunnelIsByteIdenticalAndErrorsMatchGo() throws {
        let deployment = try Deployment(fileSize: 8 << 20)
        let port = try deployment.startServer()
        try deployment.startClient(serverPort: port)

        let download = try curl([deployment.url(port)])
        #expect(download.status == 200)
        #expect(download.body == deployment.file)

        let unknown = try curl([deployment.url(port, client: "bar")])
        #expect(unknown.status == 500)
        #expect(String(decoding: unknown.body, as: UTF8.self) == "Get \"http://127.0.0.1:\(deployment.filePort)/file\": failed to find Session for client bar")

        let deadPort = freePort()
        let dead = try curl([deployment.url(port, target: "127.0.0.1:\(deadPort)")])
        #expect(dead.status == 500)
        #expect(String(decoding: dead.body, as: UTF8.self) == "Get \"http://127.0.0.1:\(deadPort)/file\": dial tcp 127.0.0.1:\(deadPort): connect: connection refused")

        // Keep-alive: the second download reuses the first's connection to the server, and both are whole.
        let first = FileManager.default.temporaryDirectory.appendingPathComponent("first-\(UUID().uuidString)")
        let second = first.appendingPathExtension("second")
        defer { for file in [first, second] { try? FileManager.default.removeItem(at: file) } }
        let log = try transcript(["-v", deployment.url(port), deployment.url(port), "-o", first.path, "-o", second.path])
        #expect(connectionReuses(in: log) == 1, "\(log)")
        #expect(try Data(contentsOf: first) == deployment.file)
        #expect(try Data(contentsOf: second) == deployment.file)
    }

    /// SIGTERM and SIGINT shut each program down gracefully: it exits with status 0, not by
    /// the signal, within the 5 s `stop` allows, with a session open between client and server.
    @Test(arguments: [SIGTERM, SIGINT])
    func everyProgramExitsWithStatusZeroOn(signal: Int32) throws {
        let deployment = try Deployment()
        let port = try deployment.startServer()
        let client = try deployment.startClient(serverPort: port)
        for program in [client, deployment.servers[0], deployment.dummy!] {
            program.stop(signal: signal)
            #expect(program.exitedCleanly, "\(program.name) on signal \(signal): \(program.process.terminationReason == .exit ? "exit" : "signal") \(program.process.terminationStatus)\n\(program.output)")
        }
    }

    /// A program stopped by a signal ends each open tunnelled connection with Error "EOF" (the
    /// other side's message trace shows it), then exits 0; the target sees its connection end.
    @Test(arguments: [SIGTERM, SIGINT])
    func shutdownEndsOpenConnectionsWithErrorEOF(signal: Int32) throws {
        for stopping in ["server", "client"] {
            let deployment = try Deployment(fileSize: 1024)
            // SIGTERM drains first: a transfer that never ends is cut at the drain timeout.
            let port = try deployment.startServer(["-debug", "-drain-timeout", "1s"])
            let client = try deployment.startClient(serverPort: port, ["-debug"])
            let server = deployment.servers[0]
            let hole = BlackHole()
            let requester = try #require(RawSocket(port: port))
            requester.send("GET /client/foo/http/127.0.0.1:\(hole.port)/x?timeout=60 HTTP/1.1\r\nHost: x\r\n\r\n")
            try #require(waitUntil(seconds: 10) { hole.accepted == 1 }, "the tunnelled connection never opened")
            let (stopped, other) = stopping == "server" ? (server, client) : (client, server)
            stopped.stop(signal: signal)
            #expect(stopped.exitedCleanly, "\(stopping) on signal \(signal): \(stopped.output.suffix(1000))")
            let sawEOF = waitUntil(seconds: 5) {
                other.output.split(separator: "\n").contains { $0.contains("recv ") && $0.hasSuffix(" Error EOF") }
            }
            #expect(sawEOF, "\(stopping) stopped without Error EOF: \(other.output.suffix(1500))")
            #expect(waitUntil(seconds: 5) { hole.ended == 1 }, "the target's connection stayed open")
        }
    }

    @Test func requestThroughAPeerWorksAndStopsWithinTenSecondsOfClientExit() throws {
        let deployment = try Deployment()
        let portA = freePort(), portB = freePort()
        try deployment.startServer(["-id", "a", "-token", "secret", "-peers", "b:secret:ws://127.0.0.1:\(portB)/connect"], port: portA)
        try deployment.startServer(["-id", "b", "-token", "secret", "-peers", "a:secret:ws://127.0.0.1:\(portA)/connect"], port: portB)
        let client = try deployment.startClient(serverPort: portA, waitOn: portB)

        let viaPeer = try curl([deployment.url(portB)])
        #expect(viaPeer.status == 200)
        #expect(viaPeer.body == deployment.file)

        client.stop()
        let started = Date()
        let gone = waitUntil(seconds: 10) { (try? curl([deployment.url(portB)]))?.status == 500 }
        #expect(gone, "still routed \(Date().timeIntervalSince(started)) s after the client exited")
        let refused = try curl([deployment.url(portB)])
        #expect(String(decoding: refused.body, as: UTF8.self).hasSuffix("failed to find Session for client foo"))
    }

    @Test func allowListRefusesOneAddressWhileOtherConnectionsKeepFlowing() throws {
        let deployment = try Deployment(fileSize: 32 << 20)
        let port = try deployment.startServer()
        try deployment.startClient(serverPort: port, ["-allow", "tcp/127.0.0.1:\(deployment.filePort)"])

        // A slow download in flight while a refused request comes and goes.
        let slow = Process()
        slow.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("slow-\(UUID().uuidString)")
        slow.arguments = ["-s", "--limit-rate", "16M", "-o", output.path, deployment.url(port)]
        try slow.run()
        defer { try? FileManager.default.removeItem(at: output) }

        let otherPort = freePort()
        let refused = try curl([deployment.url(port, target: "127.0.0.1:\(otherPort)")])
        #expect(refused.status == 500)
        #expect(String(decoding: refused.body, as: UTF8.self) == "Get \"http://127.0.0.1:\(otherPort)/file\": connect not allowed")

        slow.waitUntilExit()
        #expect(slow.terminationStatus == 0)
        #expect((try? Data(contentsOf: output)) == deployment.file)
    }

    @Test func killingTheClientMidDownloadEndsItWithAnErrorAndTheServerReleasesItsFds() throws {
        let deployment = try Deployment(fileSize: 64 << 20)
        let port = try deployment.startServer()
        let server = deployment.servers[0]
        let idle = server.settledFileDescriptorCount
        let client = try deployment.startClient(serverPort: port)

        let partial = FileManager.default.temporaryDirectory.appendingPathComponent("partial-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: partial) }
        let download = Process()
        download.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        download.arguments = ["-s", "--limit-rate", "8M", "-o", partial.path, deployment.url(port)]
        try download.run()
        defer { if download.isRunning { download.terminate() } }
        // Mid-download: the first MiB has arrived (the whole file takes 8 s at this rate).
        let receiving = waitUntil { ((try? FileManager.default.attributesOfItem(atPath: partial.path)[.size] as? Int) ?? 0) >= 1 << 20 }
        try #require(receiving, "the download never got going")
        client.kill9()
        download.waitUntilExit()
        #expect(download.terminationStatus != 0, "curl must see the transfer cut short")
        #expect(waitUntil(seconds: 10) { server.fileDescriptorCount == idle }, "server fds \(server.fileDescriptorCount), idle \(idle)")
        #expect(server.isRunning)
    }

    @Test func serverSurvivesTwoHundredClientsConnectingAndDisconnecting() throws {
        let deployment = try Deployment()
        let port = try deployment.startServer()
        // 200 sessions come and go: half close cleanly, half reset.
        let idle = deployment.servers[0].settledFileDescriptorCount
        for index in 0..<200 {
            let status = upgradeAndDrop(port: port, clientID: "churn\(index % 7)", abort: index % 2 == 0)
            #expect(status == "HTTP/1.1 101 Switching Protocols")
        }
        #expect(waitUntil(seconds: 10) { deployment.servers[0].fileDescriptorCount == idle })
        try deployment.startClient(serverPort: port)
        let download = try curl([deployment.url(port)])
        #expect(download.status == 200 && download.body == deployment.file)
        #expect(deployment.servers[0].isRunning)
        // No-one authenticated: 401 with Go's body.
        let anonymous = try curl(["-H", "Connection: Upgrade", "-H", "Upgrade: websocket", "http://127.0.0.1:\(port)/connect"])
        #expect(anonymous.status == 401)
        #expect(String(decoding: anonymous.body, as: UTF8.self) == "failed authentication")
    }

    @Test func metricsParseAsPrometheusTextAndCountersMove() throws {
        let deployment = try Deployment()
        let port = try deployment.startServer()
        let before = try metrics(port)
        try deployment.startClient(serverPort: port)
        _ = try curl([deployment.url(port)])
        let after = try metrics(port)
        let sessions = "session_server_total_add_websocket_session{clientkey=foo,peer=false}"
        #expect((before[sessions] ?? 0) == 0)
        #expect((after[sessions] ?? 0) == 1)
        let connections = "session_server_total_add_connections{addr=127.0.0.1:\(deployment.filePort),clientkey=foo,proto=tcp}"
        // The client's readiness probe and the download: one connection, kept alive between them
        // (upstream keep-alive), or two.
        #expect((after[connections] ?? 0) >= 1, "\(after.keys.sorted())")
        #expect((after["session_server_total_receive_bytes{clientkey=foo}"] ?? 0) > Double(deployment.file.count))
    }

    /// A series appears on its first increment, as Go's do: an idle client session shows its
    /// "add" counter only (its byte and "remove" counters, ~1.5 KiB of every idle client's
    /// session, come with its first Data message and its first ended session).
    @Test func anIdleClientHasOnlyItsAddSeries() throws {
        let deployment = try Deployment()
        let port = try deployment.startServer()
        let opened = try #require(upgrade(port: port, clientID: "idle"))
        defer { close(opened.fd) }
        #expect(opened.status == "HTTP/1.1 101 Switching Protocols")
        let series = try metrics(port).keys.filter { $0.contains("clientkey=idle") }
        #expect(series == ["session_server_total_add_websocket_session{clientkey=idle,peer=false}"])
    }

    /// Client ids are picked by whoever connects: their series must leave with their last
    /// session, and the addresses one client dials are counted apart only up to a cap (the
    /// soak's churned clients grew the server by about 3 KiB each before).
    @Test func clientSeriesLeaveTheMetricsWithTheirLastSessionAndAddressesAreCapped() throws {
        let deployment = try Deployment()
        let port = try deployment.startServer()
        for index in 0..<40 {
            #expect(upgradeAndDrop(port: port, clientID: "gone-\(index)", abort: index % 2 == 0) == "HTTP/1.1 101 Switching Protocols")
        }
        try deployment.startClient(serverPort: port)
        _ = try curl([deployment.url(port)])
        // 70 addresses nobody listens on: refused dials, each a Connect through foo's session.
        var closedPorts = Set<UInt16>()
        while closedPorts.count < 70 { closedPorts.insert(freePort()) }
        for closed in closedPorts {
            _ = try curl(["http://127.0.0.1:\(port)/client/foo/http/127.0.0.1:\(closed)/x"])
        }
        var samples: [String: Double] = [:]
        let gone = waitUntil(seconds: 10) {
            samples = (try? self.metrics(port)) ?? [:]
            return !samples.isEmpty && !samples.keys.contains { $0.contains("clientkey=gone-") }
        }
        #expect(gone, "series of departed clients: \(samples.keys.filter { $0.contains("clientkey=gone-") }.prefix(5))")
        #expect((samples["session_server_total_receive_bytes{clientkey=foo}"] ?? 0) > Double(deployment.file.count), "a connected client keeps its series")
        let addresses = Set(samples.keys.filter { $0.hasPrefix("session_server_total_add_connections{") && $0.contains("clientkey=foo") })
        #expect(addresses.count == 65, "64 addresses apart and one addr=other: \(addresses.count)")
        #expect((samples["session_server_total_add_connections{addr=other,clientkey=foo,proto=tcp}"] ?? 0) >= 7)
    }

    /// /metrics parsed by prometheus_client's text parser (not ours): sample name{labels} → value.
    private func metrics(_ port: UInt16) throws -> [String: Double] {
        let page = try curl(["http://127.0.0.1:\(port)/metrics"])
        let parser = Process()
        parser.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        parser.arguments = ["python3", "-c", """
            import sys
            from prometheus_client.parser import text_string_to_metric_families
            for family in text_string_to_metric_families(sys.stdin.read()):
                for s in family.samples:
                    labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                    print(f"{s.name}{{{labels}}} {s.value}")
            """]
        let input = Pipe(), output = Pipe()
        parser.standardInput = input
        parser.standardOutput = output
        try parser.run()
        input.fileHandleForWriting.write(page.body)
        try input.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        parser.waitUntilExit()
        #expect(parser.terminationStatus == 0, "prometheus_client could not parse /metrics")
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let value = Double(parts[1]) else { continue }
            // prometheus_client names counters' samples with a _total suffix.
            samples[String(parts[0]).replacingOccurrences(of: "_total{", with: "{")] = value
        }
        return samples
    }
}
