import Foundation
import Reactor

/// One measured run: metric name → value.
typealias Metrics = [String: Double]

/// A metric column: its key in `Metrics`, a short label and its unit (both in table headers and
/// on chart axes).
struct Column {
    let key: String
    let label: String
    let unit: String
    var header: String { unit.isEmpty ? label : "\(label) \(unit)" }
}

/// How a scenario's table looks: its metric columns, which one the ratio is taken on, and which
/// are charted.
struct ScenarioSpec {
    let name: String
    let columns: [Column]
    let primary: String
    let charted: [String]
}

let bulkColumns = [
    Column(key: "mb_per_s", label: "throughput", unit: "MB/s"),
    Column(key: "server_cpu_per_gib", label: "srv CPU", unit: "s/GiB"), Column(key: "client_cpu_per_gib", label: "cli CPU", unit: "s/GiB"),
    Column(key: "server_peak_rss_mib", label: "srv peak RSS", unit: "MiB"), Column(key: "client_peak_rss_mib", label: "cli peak RSS", unit: "MiB"),
    Column(key: "server_idle_rss_mib", label: "srv idle RSS", unit: "MiB"), Column(key: "client_idle_rss_mib", label: "cli idle RSS", unit: "MiB"),
]
let bulkSpec = ScenarioSpec(name: "bulk", columns: bulkColumns, primary: "mb_per_s",
                            charted: ["mb_per_s", "server_cpu_per_gib", "client_cpu_per_gib"])
let wssSpec = ScenarioSpec(name: "wss", columns: bulkColumns, primary: "mb_per_s",
                           charted: ["mb_per_s", "server_cpu_per_gib", "client_cpu_per_gib"])
let rpsSpec = ScenarioSpec(name: "rps", columns: [
    Column(key: "rps", label: "rate", unit: "req/s"), Column(key: "p50_ms", label: "p50", unit: "ms"),
    Column(key: "p99_ms", label: "p99", unit: "ms"), Column(key: "p999_ms", label: "p99.9", unit: "ms"), Column(key: "errors", label: "errors", unit: ""),
    Column(key: "server_cpu_per_10k", label: "srv CPU", unit: "s/10k req"),
], primary: "rps", charted: ["rps", "p99_ms", "server_cpu_per_10k"])
let connsSpec = ScenarioSpec(name: "conns", columns: [
    Column(key: "mb_per_s", label: "aggregate", unit: "MB/s"), Column(key: "min_conn_mb_per_s", label: "min/conn", unit: "MB/s"),
    Column(key: "max_conn_mb_per_s", label: "max/conn", unit: "MB/s"), Column(key: "server_kib_per_conn", label: "srv RSS/conn", unit: "KiB"),
], primary: "mb_per_s", charted: ["mb_per_s"])
let baselineSpec = ScenarioSpec(name: "baseline", columns: [
    Column(key: "mb_per_s", label: "throughput", unit: "MB/s"),
    // Relay 1 reads from the source, where a tunnel's client sits; relay 2 writes to curl, where its server sits.
    Column(key: "relay1_cpu_per_gib", label: "relay 1 CPU", unit: "s/GiB"), Column(key: "relay2_cpu_per_gib", label: "relay 2 CPU", unit: "s/GiB"),
], primary: "mb_per_s", charted: ["mb_per_s", "relay1_cpu_per_gib", "relay2_cpu_per_gib"])

struct Settings: Codable {
    var bulkBytes = 1 << 30
    var rpsConnections = 64
    var rpsSeconds = 10
    var concurrentDownloads = 100
    var partBytes = 16 << 20
    var sessions = 1000
}

/// Downloads `url` with curl into /dev/null, a sink that costs nothing, so the time is the
/// transfer's; returns (seconds, bytes) as curl measured them.
func timedDownload(_ url: String, curlOptions: [String] = []) throws -> (seconds: Double, bytes: Int) {
    let result = try run(["curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{size_download} %{time_total}"] + curlOptions + [url])
    let fields = result.out.split(separator: " ")
    guard result.status == 0, fields.count == 2, let bytes = Int(fields[0]), let seconds = Double(fields[1]), seconds > 0 else {
        throw HarnessError.transfer(url, "\(result.out) \(result.err)".trimmingCharacters(in: .whitespacesAndNewlines))
    }
    return (seconds, bytes)
}

/// The sha256 of what `url` serves (curl into sha256sum): the untimed check beside the timed runs.
func verifyDownload(_ url: String, curlOptions: [String] = [], subject: String, expectedSHA: String) throws {
    let command = (["curl", "-sS", "--fail"] + curlOptions + [url]).map { "'\($0)'" }.joined(separator: " ")
    let result = try run(["bash", "-c", "set -o pipefail; \(command) | sha256sum"])
    guard result.status == 0 else { throw HarnessError.transfer(url, result.err.trimmingCharacters(in: .whitespacesAndNewlines)) }
    let sha = String(result.out.prefix(64))
    guard sha == expectedSHA else { throw HarnessError.checksum(subject, expectedSHA, sha) }
}

/// One timed bulk download through `tunnel` (ws or wss): MB/s, CPU s/GiB and peak RSS of each side.
func bulk(_ tunnel: RunningTunnel, source: SourceServer, settings: Settings) throws -> Metrics {
    tunnel.server.resetPeakRSS()
    tunnel.client.resetPeakRSS()
    let serverCPU = tunnel.server.cpuSeconds
    let clientCPU = tunnel.client.cpuSeconds
    let (seconds, bytes) = try timedDownload(tunnel.url(sourcePort: source.port, path: "bulk"), curlOptions: tunnel.curlOptions)
    guard bytes == settings.bulkBytes else {
        throw HarnessError.transfer(tunnel.implementation.name, "\(bytes) of \(settings.bulkBytes) bytes")
    }
    let gib = Double(bytes) / Double(1 << 30)
    return [
        "mb_per_s": Double(bytes) / 1e6 / seconds,
        "server_cpu_per_gib": (tunnel.server.cpuSeconds - serverCPU) / gib,
        "client_cpu_per_gib": (tunnel.client.cpuSeconds - clientCPU) / gib,
        "server_peak_rss_mib": Double(tunnel.server.peakRSSBytes) / 1048576,
        "client_peak_rss_mib": Double(tunnel.client.peakRSSBytes) / 1048576,
        "server_idle_rss_mib": Double(tunnel.serverIdleRSSBytes) / 1048576,
        "client_idle_rss_mib": Double(tunnel.clientIdleRSSBytes) / 1048576,
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

/// M concurrent downloads in one curl process; per-transfer times give fairness. `server`, if
/// given, should be fresh (no bulk run before): memory an allocator kept from an earlier burst
/// would hide what the connections cost.
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
        "mb_per_s": Double(total) / 1e6 / seconds,
        "min_conn_mb_per_s": rates.min()!,
        "max_conn_mb_per_s": rates.max()!,
    ]
    if let server {
        metrics["server_kib_per_conn"] = Double(max(0, server.peakRSSBytes - idleRSS)) / 1024 / Double(settings.concurrentDownloads)
    }
    return metrics
}

/// A tunnel's hops without the tunnel, as two relays in a chain in front of `targetPort`: the
/// ceiling a tunnel's throughput is compared with.
protocol TwoRelayChain {
    var port: UInt16 { get }
    /// CPU seconds each relay has spent, nearest the source first; nil where it cannot be told apart.
    func relayCPUSeconds() -> [Double]?
    func stop()
}

/// Two `socat -b 262144` processes in a chain; each forks a child per connection, and listens
/// with a backlog that holds the concurrent downloads (socat's default of 5 dropped SYNs: with
/// 100 at once, downloads stalled for a minute and some were reset).
final class SocatChain: TwoRelayChain {
    let relays: [ChildProcess]
    let port: UInt16

    init(targetPort: UInt16, workDirectory: URL) throws {
        var relays: [ChildProcess] = []
        var next = targetPort
        do {
            for hop in 1...2 {
                let port = freePort()
                let relay = try ChildProcess(name: "socat-relay-\(hop)", arguments: [
                    "/usr/bin/env", "socat", "-b", "262144", "TCP-LISTEN:\(port),bind=127.0.0.1,reuseaddr,fork,backlog=1024", "TCP:127.0.0.1:\(next)",
                ], directory: workDirectory, logDirectory: workDirectory)
                relays.append(relay)
                guard waitUntilAccepting(port: port, while: relay) else {
                    throw HarnessError.failedToStart("socat", "did not accept connections within 20 s", [relay.logURL.path])
                }
                next = port
            }
        } catch {
            for relay in relays { relay.stop() }
            throw error
        }
        self.relays = relays
        port = next
    }

    /// Each relay's reaped children: the connection's child has to have ended, so this waits for it.
    func relayCPUSeconds() -> [Double]? {
        for relay in relays where !relay.waitForNoChildren(seconds: 5) { return nil }
        return relays.map(\.reapedChildrenCPUSeconds)
    }

    func stop() {
        for relay in relays.reversed() { relay.stop() }
    }
}

/// Two relays on our reactor (StreamRelay), one loop each.
final class ReactorChain: TwoRelayChain {
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

    /// Both relays run in the harness's own process.
    func relayCPUSeconds() -> [Double]? { nil }

    func stop() {
        for listener in listeners { listener.close() }
        group.shutdown()
    }
}
