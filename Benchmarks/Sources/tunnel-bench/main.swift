import Foundation
import Reactor

// The tunnel benchmark harness: runs every scenario for each implementation (same machine, same
// shared target, same run), prints tables with ratios to the first implementation, and writes
// JSON and an SVG chart. See README "Benchmarks".

let usage = """
usage: tunnel-bench [--impl NAME=SERVER_BINARY,CLIENT_BINARY]... [--scenarios baseline,bulk,rps,conns,sessions]
                    [--bulk-mib 1024] [--rps-connections 64] [--rps-seconds 10] [--downloads 100] [--sessions 1000]
                    [--part-mib 16] [--repeat 3] [--json FILE] [--svg FILE]
  Implementations default to ours (remotedialer-server/-client from the main package's release build).
"""

var implementations: [Implementation] = []
var scenarios = ["baseline", "bulk", "rps", "conns", "sessions"]
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
    let release = repositoryRoot.appendingPathComponent(".build/release")
    implementations = [Implementation(argument: "swift=\(release.path)/remotedialer-server,\(release.path)/remotedialer-client")!]
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
FileManager.default.createFile(atPath: payloadFile.path, contents: Data(source.bulk))
let expectedSHA = String(try run(["sha256sum", payloadFile.path]).out.prefix(64))
try FileManager.default.removeItem(at: payloadFile)

var reports: [String: ScenarioReport] = [:]
var failures: [String] = []
let specs = ["bulk": bulkSpec, "rps": rpsSpec, "conns": connsSpec, "baseline": baselineSpec, "sessions": sessionsSpec]
for name in scenarios { guard specs[name] != nil else { print("unknown scenario \(name)"); exit(2) }; reports[name] = ScenarioReport(spec: specs[name]!) }

let started = Date()
for round in 1...repeats {
    if scenarios.contains("baseline") {
        progress("[round \(round)/\(repeats)] baseline: direct")
        do {
            let direct = try download("http://127.0.0.1:\(source.port)/bulk")
            guard direct.sha256 == expectedSHA else { throw HarnessError.checksum("direct", expectedSHA, direct.sha256) }
            reports["baseline"]!.add("direct", ["mbps": Double(direct.bytes) / 1e6 / direct.seconds])
            progress("[round \(round)/\(repeats)] baseline: two-relay chain")
            let chain = try TwoRelayChain(targetPort: source.port)
            defer { chain.stop() }
            let relayed = try download("http://127.0.0.1:\(chain.port)/bulk")
            guard relayed.sha256 == expectedSHA else { throw HarnessError.checksum("two-relay", expectedSHA, relayed.sha256) }
            reports["baseline"]!.add("two-relay chain", ["mbps": Double(relayed.bytes) / 1e6 / relayed.seconds])
        } catch {
            failures.append("baseline: \(error)")
        }
    }
    for implementation in implementations {
        progress("[round \(round)/\(repeats)] \(implementation.name): starting")
        let tunnel: RunningTunnel
        do {
            tunnel = try RunningTunnel(implementation, sourcePort: source.port, workDirectory: scratch)
        } catch {
            print("\ntunnel-bench: \(error)")
            exit(1)
        }
        defer { tunnel.stop() }
        for scenario in scenarios where scenario != "baseline" {
            progress("[round \(round)/\(repeats)] \(implementation.name): \(scenario)")
            do {
                switch scenario {
                case "bulk":
                    reports["bulk"]!.add(implementation.name, try bulk(tunnel, source: source, expectedSHA: expectedSHA, settings: settings))
                case "rps":
                    reports["rps"]!.add(implementation.name, try rps(tunnel.url(sourcePort: source.port, path: "small"), settings: settings, scratch: scratch))
                case "conns":
                    reports["conns"]!.add(implementation.name, try concurrentDownloads(tunnel.url(sourcePort: source.port, path: "part"), settings: settings, server: tunnel.server))
                case "sessions":
                    reports["sessions"]!.add(implementation.name, try idleSessions(implementation, sourcePort: source.port, settings: settings, scratch: scratch))
                default: break
                }
            } catch {
                failures.append("\(implementation.name) \(scenario): \(error)")
            }
        }
    }
}
progress("")
source.stop()

let ceiling = reports["baseline"]?.median("two-relay chain", "mbps")
for name in scenarios {
    let spec = specs[name]!
    let extra = (name == "bulk" || name == "baseline") ? ceiling.map { [("of 2-relay", $0)] } ?? [] : []
    print("\n== \(name) (median of \(repeats); ratio = to the first row)")
    print(reports[name]!.table(spec: spec, extra: extra))
}
print("\nmachine: \(ProcessInfo.processInfo.activeProcessorCount) cores; \(Int(Date().timeIntervalSince(started))) s in all")

let ordered = scenarios.compactMap { reports[$0] }
let jsonURL = URL(fileURLWithPath: jsonPath)
try? FileManager.default.createDirectory(at: jsonURL.deletingLastPathComponent(), withIntermediateDirectories: true)
let encoder = JSONEncoder()
encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
try encoder.encode(ordered).write(to: jsonURL)
print("wrote \(jsonURL.path)")
if let svgPath {
    try svgChart(ordered).write(toFile: svgPath, atomically: true, encoding: .utf8)
    print("wrote \(svgPath)")
}
try? FileManager.default.removeItem(at: scratch)

if !failures.isEmpty {
    print("\nFAILED runs (not averaged in):")
    for failure in failures { print("  \(failure)") }
    exit(1)
}
