import Foundation
import Glibc
import Testing

/// `-forward LISTEN=CLIENT/tcp/HOST:PORT` with a protocol peer we did not write: Debian's
/// redis-server behind the client, redis-cli and redis-benchmark through the forward.
@Suite(.serialized)
struct PortForwardEndToEndTests {
    /// redis-server on a loopback port, no persistence; stopped on deinit.
    final class Redis {
        let port = freePort()
        private let process = Process()

        init() throws {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
            process.arguments = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            try #require(waitUntil(seconds: 10) { canConnect(port: port) }, "redis-server did not start")
        }

        deinit {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Starts a server forwarding a port it picks to `target` through `client`; returns that port.
    static func startForwardingServer(_ deployment: Deployment, client: String = "foo", target: String) throws -> (server: UInt16, forward: UInt16) {
        let port = try deployment.startServer(["-forward", "127.0.0.1:0=\(client)/tcp/\(target)"])
        var forward: UInt16?
        _ = waitUntil(seconds: 10) { forward = deployment.servers[0].port(after: "forwarding 127.0.0.1:"); return forward != nil }
        return (port, try #require(forward, "\(deployment.servers[0].output)"))
    }

    /// requests per second for SET and GET, from redis-benchmark's CSV.
    static func benchmark(port: UInt16) throws -> [String: Double] {
        let run = try runTool(["redis-benchmark", "-h", "127.0.0.1", "-p", String(port), "-t", "set,get", "-n", "20000", "-c", "20", "-P", "8", "-d", "256", "--csv"])
        var rates: [String: Double] = [:]
        for line in String(decoding: run.output, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            if fields.count >= 2, let rate = Double(fields[1]) { rates[fields[0]] = rate }
        }
        return rates
    }

    @Test func redisCliAndRedisBenchmarkWorkThroughAForward() throws {
        let deployment = try Deployment(fileSize: 4 << 20)
        let redis = try Redis()
        let (port, forward) = try Self.startForwardingServer(deployment, target: "127.0.0.1:\(redis.port)")
        try deployment.startClient(serverPort: port)

        // A 4 MiB random value in and out, byte for byte.
        let cli = ["redis-cli", "-h", "127.0.0.1", "-p", String(forward)]
        let set = try runTool(cli + ["-x", "SET", "big"], input: deployment.directory.appendingPathComponent("file"))
        #expect(String(decoding: set.output, as: UTF8.self) == "OK\n", "\(set.errors)")
        let get = try runTool(cli + ["--raw", "GET", "big"])
        #expect(get.output == deployment.file + Data("\n".utf8))
        #expect(String(decoding: try runTool(cli + ["PING"]).output, as: UTF8.self) == "PONG\n")

        let direct = try Self.benchmark(port: redis.port)
        let tunnelled = try Self.benchmark(port: forward)
        print("redis-benchmark requests/s, direct: \(direct), through the forward: \(tunnelled)")
        #expect((tunnelled["SET"] ?? 0) > 0 && (tunnelled["GET"] ?? 0) > 0, "\(tunnelled)")
        // Every benchmark connection's end reached redis through the tunnel: only our own remains.
        var clients = ""
        let onlyOurs = waitUntil(seconds: 10) {
            clients = (try? String(decoding: runTool(cli + ["INFO", "clients"]).output, as: UTF8.self)) ?? ""
            return clients.contains("connected_clients:1\r\n")
        }
        #expect(onlyOurs, "\(clients)")
    }

    /// The choice stated in the README: while the client is away (or its dial is refused) the
    /// forward accepts and closes at once, logging at most once a second.
    @Test func withoutTheClientAForwardClosesAtOnceAndLogsOnceASecond() throws {
        let deployment = try Deployment(fileSize: 1024)
        let (_, forward) = try Self.startForwardingServer(deployment, client: "nobody", target: "127.0.0.1:\(deployment.filePort)")
        for _ in 0..<20 {
            let fd = try #require(connectLoopback(port: forward))
            #expect(readToEnd(fd, seconds: 5) == [], "closed without a byte")
            close(fd)
        }
        let warnings = deployment.servers[0].output.components(separatedBy: "client nobody is not connected").count - 1
        #expect(warnings >= 1 && warnings < 20, "\(deployment.servers[0].output)")
    }

    @Test func aTargetTheClientCannotReachEndsTheForwardedConnection() throws {
        let deployment = try Deployment(fileSize: 1024)
        let (port, forward) = try Self.startForwardingServer(deployment, target: "127.0.0.1:\(freePort())")
        try deployment.startClient(serverPort: port)
        let fd = try #require(connectLoopback(port: forward))
        defer { close(fd) }
        #expect(readToEnd(fd, seconds: 5) == [])
    }
}
