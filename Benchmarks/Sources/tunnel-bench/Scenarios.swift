import Foundation
import Reactor

/// One measured run: metric name → value.
typealias Metrics = [String: Double]

/// How a scenario's table looks: its metric columns and which one the ratio is taken on.
struct ScenarioSpec {
    let name: String
    let columns: [(key: String, label: String)]
    let primary: String
}

let bulkSpec = ScenarioSpec(name: "bulk", columns: [
    ("mbps", "MB/s"), ("server_cpu_per_gib", "srv CPU s/GiB"), ("client_cpu_per_gib", "cli CPU s/GiB"),
    ("server_peak_rss_mib", "srv peak MiB"), ("client_peak_rss_mib", "cli peak MiB"),
], primary: "mbps")
let rpsSpec = ScenarioSpec(name: "rps", columns: [
    ("rps", "req/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("p999_ms", "p99.9 ms"), ("errors", "errors"),
], primary: "rps")
let connsSpec = ScenarioSpec(name: "conns", columns: [
    ("mbps", "MB/s"), ("min_conn_mbps", "min/conn"), ("max_conn_mbps", "max/conn"), ("server_kib_per_conn", "srv KiB/conn"),
], primary: "mbps")
let baselineSpec = ScenarioSpec(name: "baseline", columns: [("mbps", "MB/s")], primary: "mbps")

struct Settings {
    var bulkBytes = 1 << 30
    var rpsConnections = 64
    var rpsSeconds = 10
    var concurrentDownloads = 100
    var partBytes = 16 << 20
    var sessions = 1000
}

/// Downloads `url` through curl into sha256sum; returns (seconds, bytes, sha256).
func download(_ url: String) throws -> (seconds: Double, bytes: Int, sha256: String) {
    let start = Date()
    let result = try run(["bash", "-c", "set -o pipefail; curl -sS --fail -w '%{stderr}%{size_download}' '\(url)' | sha256sum"])
    let seconds = Date().timeIntervalSince(start)
    guard result.status == 0 else { throw HarnessError.transfer(url, result.err.trimmingCharacters(in: .whitespacesAndNewlines)) }
    let bytes = Int(result.err.split(separator: "\n").last.map(String.init) ?? "") ?? 0
    return (seconds, bytes, String(result.out.prefix(64)))
}

func bulk(_ tunnel: RunningTunnel, source: SourceServer, expectedSHA: String, settings: Settings) throws -> Metrics {
    tunnel.server.resetPeakRSS()
    tunnel.client.resetPeakRSS()
    let serverCPU = tunnel.server.cpuSeconds
    let clientCPU = tunnel.client.cpuSeconds
    let (seconds, bytes, sha) = try download(tunnel.url(sourcePort: source.port, path: "bulk"))
    guard sha == expectedSHA, bytes == settings.bulkBytes else {
        throw HarnessError.checksum(tunnel.implementation.name, expectedSHA, "\(sha) (\(bytes) bytes)")
    }
    let gib = Double(bytes) / Double(1 << 30)
    return [
        "mbps": Double(bytes) / 1e6 / seconds,
        "server_cpu_per_gib": (tunnel.server.cpuSeconds - serverCPU) / gib,
        "client_cpu_per_gib": (tunnel.client.cpuSeconds - clientCPU) / gib,
        "server_peak_rss_mib": Double(tunnel.server.peakRSSBytes) / 1048576,
        "client_peak_rss_mib": Double(tunnel.client.peakRSSBytes) / 1048576,
    ]
}

/// wrk with a Lua `done` hook that prints the percentiles wrk does not print by default.
func rps(_ url: String, settings: Settings, scratch: URL) throws -> Metrics {
    let script = scratch.appendingPathComponent("percentiles.lua")
    try """
    done = function(summary, latency, requests)
      for _, p in ipairs({50, 99, 99.9}) do io.write(string.format("P %g %d\\n", p, latency:percentile(p))) end
      io.write(string.format("E %d\\n", summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
    end
    """.write(to: script, atomically: true, encoding: .utf8)
    let result = try run(["wrk", "-t2", "-c\(settings.rpsConnections)", "-d\(settings.rpsSeconds)s", "-s", script.path, url])
    guard result.status == 0 else { throw HarnessError.transfer(url, result.err) }
    var metrics: Metrics = [:]
    for line in result.out.split(separator: "\n") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        if line.hasPrefix("Requests/sec:"), let value = Double(fields.last ?? "") { metrics["rps"] = value }
        if fields.first == "P", fields.count == 3, let micros = Double(fields[2]) {
            let key = ["50": "p50_ms", "99": "p99_ms", "99.9": "p999_ms"][String(fields[1])] ?? "p?"
            metrics[key] = micros / 1000
        }
        if fields.first == "E", fields.count == 2 { metrics["errors"] = Double(fields[1]) ?? 0 }
    }
    guard metrics["rps"] != nil else { throw HarnessError.transfer(url, "no wrk summary: \(result.out)") }
    return metrics
}

/// M concurrent downloads in one curl process; per-transfer times give fairness.
func concurrentDownloads(_ url: String, settings: Settings, server: ChildProcess?) throws -> Metrics {
    let idleRSS = server?.rssBytes ?? 0
    server?.resetPeakRSS()
    var arguments = ["curl", "-sS", "--parallel", "--parallel-immediate", "--parallel-max", "\(settings.concurrentDownloads)",
                     "-w", "%{http_code} %{size_download} %{time_total}\\n"]
    for _ in 0..<settings.concurrentDownloads { arguments += ["-o", "/dev/null", url] }
    let start = Date()
    let result = try run(arguments)
    let seconds = Date().timeIntervalSince(start)
    var rates: [Double] = []
    var total = 0
    for line in result.out.split(separator: "\n") {
        let fields = line.split(separator: " ")
        guard fields.count == 3, fields[0] == "200", let bytes = Int(fields[1]), let time = Double(fields[2]), bytes == settings.partBytes else {
            throw HarnessError.transfer(url, "bad transfer: \(line) \(result.err)")
        }
        total += bytes
        rates.append(Double(bytes) / 1e6 / time)
    }
    guard rates.count == settings.concurrentDownloads else {
        throw HarnessError.transfer(url, "\(rates.count) of \(settings.concurrentDownloads) downloads completed: \(result.err)")
    }
    var metrics: Metrics = [
        "mbps": Double(total) / 1e6 / seconds,
        "min_conn_mbps": rates.min()!,
        "max_conn_mbps": rates.max()!,
    ]
    if let server {
        metrics["server_kib_per_conn"] = Double(max(0, server.peakRSSBytes - idleRSS)) / 1024 / Double(settings.concurrentDownloads)
    }
    return metrics
}

/// The physical ceiling of a tunnel's hops on this machine: two plain TCP relays in a chain.
final class TwoRelayChain {
    let group: ReactorGroup
    let listeners: [GroupListener]
    let port: UInt16

    init(targetPort: UInt16) throws {
        group = try ReactorGroup(loopCount: 2, name: "relay")
        var next = try SocketAddress("127.0.0.1:\(targetPort)")
        var listeners: [GroupListener] = []
        for _ in 0..<2 {
            let target = next
            let listener = try group.listen(on: SocketAddress("127.0.0.1:0")) { inbound in
                inbound.loop.connect(to: target) { result in
                    guard case .success(let outbound) = result else { return inbound.close() }
                    _ = StreamRelay(inbound, outbound)
                }
            }
            listeners.append(listener)
            next = listener.address
        }
        self.listeners = listeners
        port = next.port
    }

    func stop() {
        for listener in listeners { listener.close() }
        group.shutdown()
    }
}
