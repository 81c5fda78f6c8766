import Foundation
import Glibc
import Testing

/// Per-client bandwidth limits (`-client-tokens` third column, `-client-rate`): three clients
/// download at once through one server; each limited one holds its rate within 10% over about
/// 10 s, and the one without a limit goes faster than both.
@Suite(.serialized)
struct BandwidthLimitEndToEndTests {
    /// curl's own account of a download: bytes and seconds.
    struct Timed {
        let process = Process()
        let output = Pipe()

        init(_ url: String, bytes: Int) throws {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            process.arguments = ["-s", "-o", "/dev/null", "-r", "0-\(bytes - 1)", "-w", "%{size_download} %{time_starttransfer} %{time_total}", "--max-time", "60", url]
            process.standardOutput = output
            try process.run()
        }

        /// Bytes per second from the first byte to the last.
        func rate() -> (bytes: Int, perSecond: Double) {
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            let fields = text.split(separator: " ").compactMap { Double($0) }
            guard fields.count == 3, fields[2] > fields[1] else { return (0, 0) }
            return (Int(fields[0]), fields[0] / (fields[2] - fields[1]))
        }
    }

    @Test func limitedClientsHoldTheirRatesWhileAnUnlimitedOneIsNotSlowed() throws {
        let mebibyte = 1 << 20
        let deployment = try Deployment(fileSize: 200 * mebibyte)
        let tokens = deployment.directory.appendingPathComponent("client-tokens")
        try """
            edge-1 1a2b3c4d5e6f7a8b9c0d
            edge-2 2b3c4d5e6f7a8b9c0d1e 10M
            free   3c4d5e6f7a8b9c0d1e2f 1G
            """.write(to: tokens, atomically: true, encoding: .utf8)
        // edge-1 has the server-wide -client-rate; edge-2 and free their own.
        let port = try deployment.startServer(["-client-tokens", tokens.path, "-client-rate", "20M"])
        try deployment.startClient(serverPort: port, id: "edge-1", environment: ["REMOTEDIALER_TOKEN": "1a2b3c4d5e6f7a8b9c0d"])
        try deployment.startClient(serverPort: port, id: "edge-2", environment: ["REMOTEDIALER_TOKEN": "2b3c4d5e6f7a8b9c0d1e"])
        try deployment.startClient(serverPort: port, id: "free", environment: ["REMOTEDIALER_TOKEN": "3c4d5e6f7a8b9c0d1e2f"])

        // About 10 s each for the limited ones.
        let twenty = try Timed(deployment.url(port, client: "edge-1"), bytes: 200 * mebibyte)
        let ten = try Timed(deployment.url(port, client: "edge-2"), bytes: 100 * mebibyte)
        let free = try Timed(deployment.url(port, client: "free"), bytes: 200 * mebibyte)
        let (freeBytes, freeRate) = free.rate()
        let (twentyBytes, twentyRate) = twenty.rate()
        let (tenBytes, tenRate) = ten.rate()

        #expect(twentyBytes == 200 * mebibyte && tenBytes == 100 * mebibyte && freeBytes == 200 * mebibyte)
        let twentyMiB = twentyRate / Double(mebibyte), tenMiB = tenRate / Double(mebibyte), freeMiB = freeRate / Double(mebibyte)
        #expect(abs(twentyMiB - 20) <= 2, "edge-1 at \(twentyMiB) MiB/s, limit 20")
        #expect(abs(tenMiB - 10) <= 1, "edge-2 at \(tenMiB) MiB/s, limit 10")
        #expect(freeMiB > 40, "free (limit 1 GiB/s) at \(freeMiB) MiB/s while the others are limited")
    }

    /// The other direction: an upload through client edge-2 (10M) reaches the target at 10 MiB/s,
    /// measured where it arrives, over 40 MiB (about 4 s).
    @Test func anUploadToALimitedClientHoldsItsRate() throws {
        let mebibyte = 1 << 20
        let deployment = try Deployment(fileSize: 64 * mebibyte)
        let tokens = deployment.directory.appendingPathComponent("client-tokens")
        try "edge-2 2b3c4d5e6f7a8b9c0d1e 10M\n".write(to: tokens, atomically: true, encoding: .utf8)
        let port = try deployment.startServer(["-client-tokens", tokens.path])
        try deployment.startClient(serverPort: port, id: "edge-2", environment: ["REMOTEDIALER_TOKEN": "2b3c4d5e6f7a8b9c0d1e"])
        let sink = BlackHole()

        let upload = Process()
        upload.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        upload.arguments = ["-s", "-o", "/dev/null", "--max-time", "60", "-T", deployment.directory.appendingPathComponent("file").path,
                            deployment.url(port, client: "edge-2", target: "127.0.0.1:\(sink.port)", path: "upload") + "?timeout=60"]
        try upload.run()
        // SIGKILL: a child may inherit a blocked SIGTERM from the test process.
        defer { if upload.isRunning { kill(upload.processIdentifier, SIGKILL); upload.waitUntilExit() } }

        try #require(waitUntil(seconds: 10) { sink.received >= 8 * mebibyte }, "the upload never got going")
        let from = Date()
        try #require(waitUntil(seconds: 20) { sink.received >= 48 * mebibyte }, "the upload stalled at \(sink.received) bytes")
        let rate = 40 / Date().timeIntervalSince(from)
        #expect(abs(rate - 10) <= 1, "upload at \(rate) MiB/s, limit 10")
    }

    @Test func aRateThatDoesNotParseIsRefusedWithTheClientNamed() throws {
        let deployment = try Deployment()
        let tokens = deployment.directory.appendingPathComponent("client-tokens")
        try "edge-1 1a2b3c4d5e6f7a8b9c0d fast\n".write(to: tokens, atomically: true, encoding: .utf8)
        let server = try Subprocess("remotedialer-server", ["-listen", "127.0.0.1:0", "-client-tokens", tokens.path])
        #expect(waitUntil(seconds: 10) { !server.isRunning })
        #expect(server.process.terminationStatus != 0)
        #expect(server.output.contains("client edge-1: bad rate \"fast\""), "\(server.output)")
    }
}
