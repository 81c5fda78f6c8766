import Foundation
import Reactor

// The tunnel benchmark harness: runs every scenario for each implementation (same machine, same
// shared target, same run), prints tables with ratios to the first implementation, and writes
// JSON and an SVG chart. See README "Benchmarks".

let usage = """
usage: tunnel-bench [--impl NAME=SERVER_BINARY,CLIENT_BINARY]... [--server-args NAME=ARGS]... [--client-args NAME=ARGS]...
                    [--scenarios baseline,bulk,wss,rps,conns,sessions] [--bulk-mib 1024] [--rps-connections 64] [--rps-seconds 10] [--downloads 100] [--sessions 1000]
                    [--part-mib 16] [--repeat 3] [--json FILE] [--svg FILE]
  Implementations default to ours (remotedialer-server/-client from the main package's release build).
  ARGS (split on spaces) are appended to that implementation's server or client command line.
  wss runs only for implementations whose -h names -cert/-key (server) and -ca (client).
"""

var implementations: [Implementation] = []
var scenarios = ["baseline", "bulk", "wss", "rps", "conns", "sessions"]
var serverArguments: [String: [String]] = [:]
var clientArguments: [String: [String]] = [:]
var settings = Settings()
var repeats = 3
var jsonPath = "bench-results/tunnel-bench.json"
var svgPath: String? = "bench-results/tunnel-bench.svg"

var arguments = CommandLine.arguments.dropFirst()
@MainActor func value() -> String {
    guard let next = arguments.popFirst() else { print(usage); exit(2) }
    return next
}
while let argument = arguments.popFirst() {
    switch argument {
    case "--impl":
        guard let implementation = Implementation(argument: value()) else { print(usage); exit(2) }
        implementations.append(implementation)
    case "--server-args", "--client-args":
        guard let (name, rest) = Implementation.split(value()) else { print(usage); exit(2) }
        let words = rest.split(separator: " ").map(String.init)
        if argument == "--server-args" { serverArguments[name, default: []] += words } else { clientArguments[name, default: []] += words }
    case "--scenarios": scenarios = value().split(separator: ",").map(String.init)
    case "--bulk-mib": settings.bulkBytes = Int(value())! << 20
    case "--rps-connections": settings.rpsConnections = Int(value())!
    case "--rps-seconds": settings.rpsSeconds = Int(value())!
    case "--downloads": settings.concurrentDownloads = Int(value())!
    case "--part-mib": settings.partBytes = Int(value())! << 20
    case "--sessions": settings.sessions = Int(value())!
    case "--repeat": repeats = Int(value())!
    case "--json": jsonPath = value()
    case "--svg": svgPath = value()
    case "-h", "--help": print(usage); exit(0)
    default: print("unknown argument \(argument)\n\(usage)"); exit(2)
    }
}

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()
if implementations.isEmpty {
    let release = repositoryRoot.appendingPathComponent(".build-static/release")  // as Scripts/package.sh builds them
    implementations = [Implementation(argument: "swift=\(release.path)/remotedialer-server,\(release.path)/remotedialer-client")!]
}
for (name, _) in serverArguments.merging(clientArguments, uniquingKeysWith: { a, _ in a }) where !implementations.contains(where: { $0.name == name }) {
    print("tunnel-bench: --server-args/--client-args name \(name), which no --impl has")
    exit(2)
}
for index in implementations.indices {
    implementations[index].serverArguments = serverArguments[implementations[index].name] ?? []
    implementations[index].clientArguments = clientArguments[implementations[index].name] ?? []
    if scenarios.contains("wss") { implementations[index].probeTLSFlags() }
}
for implementation in implementations {
    for binary in [implementation.serverBinary, implementation.clientBinary] where !FileManager.default.isExecutableFile(atPath: binary) {
        print("tunnel-bench: \(implementation.name): \(binary) is not an executable")
        exit(1)
    }
}

let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tunnel-bench-\(getpid())")
try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)

func progress(_ text: String) {
    FileHandle.standardError.write(Data("\r\u{1B}[K\(text)".utf8))
}

// The shared target, and the expected checksum of its bulk payload.
let source = try SourceServer(bulkBytes: settings.bulkBytes, partBytes: settings.partBytes)
let payloadFile = scratch.appendingPathComponent("bulk.bin")
guard FileManager.default.createFile(atPath: payloadFile.path, contents: Data(source.bulk)) else {
    print("tunnel-bench: cannot write \(payloadFile.path) (the payload's checksum is taken from it)")
    exit(1)
}
let expectedSHA = String(try run(["sha256sum", payloadFile.path]).out.prefix(64))
try FileManager.default.removeItem(at: payloadFile)

let machine = Machine.current()
let pki: TestPKI? = if scenarios.contains("wss") && implementations.contains(where: \.takesTLSFlags) {
    try TestPKI(script: repositoryRoot.appendingPathComponent("Scripts/make-test-pki.sh"), directory: scratch.appendingPathComponent("pki"))
} else {
    nil
}

var reports: [String: ScenarioReport] = [:]
var failures: [String] = []
let specs = ["bulk": bulkSpec, "wss": wssSpec, "rps": rpsSpec, "conns": connsSpec, "baseline": baselineSpec, "sessions": sessionsSpec]
for name in scenarios { guard specs[name] != nil else { print("unknown scenario \(name)"); exit(2) }; reports[name] = ScenarioReport(spec: specs[name]!) }

/// Subjects whose bulk download has been checked against `expectedSHA` (once each, untimed).
var verified: Set<String> = []
@MainActor func verifyOnce(_ subject: String, _ url: String, curlOptions: [String] = []) throws {
    guard !verified.contains(subject) else { return }
    try verifyDownload(url, curlOptions: curlOptions, subject: subject, expectedSHA: expectedSHA)
    verified.insert(subject)
}

/// One baseline row: the bulk download through `chain`, checked once, timed into /dev/null.
@MainActor func measureBaseline(_ subject: String, through chain: TwoRelayChain?) throws {
    defer { chain?.stop() }
    let url = "http://127.0.0.1:\(chain?.port ?? source.port)/bulk"
    try verifyOnce(subject, url)
    let cpuBefore = chain?.relayCPUSeconds()
    let (seconds, bytes) = try timedDownload(url)
    guard bytes == settings.bulkBytes else { throw HarnessError.transfer(subject, "\(bytes) of \(settings.bulkBytes) bytes") }
    var metrics = ["mb_per_s": Double(bytes) / 1e6 / seconds]
    if let cpuBefore, let cpuAfter = chain?.relayCPUSeconds() {
        let gib = Double(bytes) / Double(1 << 30)
        metrics["relay1_cpu_per_gib"] = (cpuAfter[0] - cpuBefore[0]) / gib
        metrics["relay2_cpu_per_gib"] = (cpuAfter[1] - cpuBefore[1]) / gib
    }
    reports["baseline"]!.add(subject, metrics)
}

let socatSubject = "2-relay socat"
let started = Date()
for round in 1...repeats {
    if scenarios.contains("baseline") {
        let chains: [(String, () throws -> TwoRelayChain?)] = [
            ("direct", { nil }),
            (socatSubject, { try SocatChain(targetPort: source.port, workDirectory: scratch) }),
            ("2-relay reactor", { try ReactorChain(targetPort: source.port) }),
        ]
        for (subject, makeChain) in chains {
            progress("[round \(round)/\(repeats)] baseline: \(subject)")
            do { try measureBaseline(subject, through: makeChain()) } catch { failures.append("baseline \(subject): \(error)") }
        }
    }
    for implementation in implementations {
        progress("[round \(round)/\(repeats)] \(implementation.name): starting")
        do {
            let tunnel = try RunningTunnel(implementation, sourcePort: source.port, workDirectory: scratch)
            defer { tunnel.stop() }
            for scenario in scenarios where !["baseline", "wss"].contains(scenario) {
                progress("[round \(round)/\(repeats)] \(implementation.name): \(scenario)")
                do {
                    switch scenario {
                    case "bulk":
                        try verifyOnce(implementation.name, tunnel.url(sourcePort: source.port, path: "bulk"))
                        reports["bulk"]!.add(implementation.name, try bulk(tunnel, source: source, settings: settings))
                    case "rps":
                        let serverCPU = tunnel.server.cpuSeconds
                        var metrics = try rps(tunnel.url(sourcePort: source.port, path: "small"), settings: settings, scratch: scratch)
                        let requests = (metrics["rps"] ?? 0) * Double(settings.rpsSeconds)
                        if requests > 0 { metrics["server_cpu_per_10k"] = (tunnel.server.cpuSeconds - serverCPU) / requests * 10_000 }
                        reports["rps"]!.add(implementation.name, metrics)
                    case "conns":
                        // A tunnel of its own: the bulk run's memory, kept by the allocator, would
                        // otherwise absorb the connections' buffers (0 KiB per connection).
                        let fresh = try RunningTunnel(implementation, sourcePort: source.port, workDirectory: scratch)
                        defer { fresh.stop() }
                        reports["conns"]!.add(implementation.name, try concurrentDownloads(fresh.url(sourcePort: source.port, path: "part"), settings: settings, server: fresh.server))
                    case "sessions":
                        reports["sessions"]!.add(implementation.name, try idleSessions(implementation, sourcePort: source.port, settings: settings, scratch: scratch))
                    default: break
                    }
                } catch {
                    failures.append("\(implementation.name) \(scenario): \(error)")
                }
            }
        } catch {
            failures.append("\(implementation.name): \(error)")
        }
        if let pki, implementation.takesTLSFlags {
            progress("[round \(round)/\(repeats)] \(implementation.name): wss")
            do {
                let tunnel = try RunningTunnel(implementation, sourcePort: source.port, workDirectory: scratch, pki: pki)
                defer { tunnel.stop() }
                try verifyOnce("\(implementation.name) wss", tunnel.url(sourcePort: source.port, path: "bulk"), curlOptions: tunnel.curlOptions)
                reports["wss"]!.add(implementation.name, try bulk(tunnel, source: source, settings: settings))
            } catch {
                failures.append("\(implementation.name) wss: \(error)")
            }
        }
    }
    if scenarios.contains("conns") {
        // The ceiling for the concurrent downloads: the same downloads through two plain relays.
        progress("[round \(round)/\(repeats)] conns: \(socatSubject)")
        do {
            let chain = try SocatChain(targetPort: source.port, workDirectory: scratch)
            defer { chain.stop() }
            reports["conns"]!.add(socatSubject, try concurrentDownloads("http://127.0.0.1:\(chain.port)/part", settings: settings, server: nil))
        } catch {
            failures.append("conns \(socatSubject): \(error)")
        }
    }
}
progress("")
source.stop()

/// The "of socat chain" column: a throughput over the socat chain's in `scenario` (one download
/// in `baseline`, the concurrent ones in `conns`).
@MainActor func socatCeiling(_ scenario: String) -> (label: String, denominator: (String) -> Double?) {
    let ceiling = reports[scenario]?.median(socatSubject, "mb_per_s")
    return ("of socat chain", { _ in ceiling })
}
let extras: [String: [(label: String, denominator: (String) -> Double?)]] = [
    "baseline": [socatCeiling("baseline")],
    "bulk": [socatCeiling("baseline")],
    "wss": [socatCeiling("baseline"), ("of ws bulk", { reports["bulk"]?.median($0, "mb_per_s") })],
    "conns": [socatCeiling("conns")],
]
for name in scenarios {
    print("\n== \(name) (median of \(repeats); ratio = to the first row)")
    print(reports[name]!.table(spec: specs[name]!, extra: extras[name] ?? []))
    if name == "wss" {
        for implementation in implementations where !implementation.takesTLSFlags { print("(\(implementation.name): no -cert/-key/-ca flags, no row)") }
    }
}
print("\nmachine: \(machine.summary); \(Int(Date().timeIntervalSince(started))) s in all")

let results = HarnessResults(machine: machine, settings: settings, repeats: repeats, implementations: implementations,
                             scenarios: scenarios.compactMap { reports[$0] })
let jsonURL = URL(fileURLWithPath: jsonPath)
try? FileManager.default.createDirectory(at: jsonURL.deletingLastPathComponent(), withIntermediateDirectories: true)
let encoder = JSONEncoder()
encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
try encoder.encode(results).write(to: jsonURL)
print("wrote \(jsonURL.path)")
if let svgPath {
    try svgChart(results, specs: specs).write(toFile: svgPath, atomically: true, encoding: .utf8)
    print("wrote \(URL(fileURLWithPath: svgPath).path)")
}
if !failures.isEmpty {
    print("\nFAILED runs (not averaged in; the logs they name are kept in \(scratch.path)):")
    for failure in failures { print("  \(failure)") }
    exit(1)
}
try? FileManager.default.removeItem(at: scratch)
