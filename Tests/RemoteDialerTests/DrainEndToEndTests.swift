import Foundation
import Glibc
import Testing

/// SIGTERM drains the server: `/healthz` says 503 at once, new work is refused, transfers in
/// flight finish (or are cut at `-drain-timeout`, or at a second SIGTERM), and it exits 0.
@Suite(.serialized)
struct DrainEndToEndTests {
    /// A download through the tunnel, limited by curl's reading rate, written to a file.
    final class SlowDownload {
        let process = Process()
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("drain-\(UUID().uuidString)")

        init(_ url: String, rate: String) throws {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            process.arguments = ["-s", "--limit-rate", rate, "-o", output.path, url]
            try process.run()
        }

        var received: Int { (try? FileManager.default.attributesOfItem(atPath: output.path)[.size] as? Int) ?? 0 }

        deinit {
            if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
            try? FileManager.default.removeItem(at: output)
        }
    }

    /// Starts a server with `drainTimeout`, a client, and a download at `rate` that is under way.
    private func drainingDeployment(drainTimeout: String, rate: String) throws -> (Deployment, UInt16, SlowDownload) {
        let deployment = try Deployment(fileSize: 64 << 20)
        let port = try deployment.startServer(["-drain-timeout", drainTimeout])
        try deployment.startClient(serverPort: port)
        let download = try SlowDownload(deployment.url(port), rate: rate)
        try #require(waitUntil(seconds: 10) { download.received >= 2 << 20 }, "the download never got going")
        return (deployment, port, download)
    }

    private func health(_ port: UInt16) -> (Int, String) {
        guard let answer = try? curl(["http://127.0.0.1:\(port)/healthz"]) else { return (0, "") }
        return (answer.status, String(decoding: answer.body, as: UTF8.self))
    }

    @Test func aDownloadInFlightFinishesWhileNewRequestsGet503AndTheServerExitsZero() throws {
        // 64 MiB at 12 MiB/s: about 5 s.
        let (deployment, port, download) = try drainingDeployment(drainTimeout: "20s", rate: "12M")
        let server = deployment.servers[0]
        #expect(health(port) == (200, "ok\n"))
        kill(server.pid, SIGTERM)
        let signalled = Date()
        #expect(waitUntil(seconds: 2) { health(port) == (503, "draining\n") }, "\(server.output)")
        let late = try curl([deployment.url(port), "-r", "0-0"])
        #expect(late.status == 503, "a request after SIGTERM: \(late.status)")
        #expect(download.process.isRunning, "the download must still be in flight to test the drain")

        download.process.waitUntilExit()
        #expect(download.process.terminationStatus == 0)
        #expect((try? Data(contentsOf: download.output)) == deployment.file, "the drained download must be whole")
        #expect(waitUntil(seconds: 20) { !server.isRunning }, "still running \(Date().timeIntervalSince(signalled)) s after SIGTERM")
        #expect(server.exitedCleanly, "\(server.output)")
        #expect(Date().timeIntervalSince(signalled) < 20)
    }

    /// A download that reaches the draining server's client through a peer finishes too, and
    /// once the drained server has exited its peer no longer sees the client.
    @Test func aPeersTransferThroughTheDrainedServerFinishesAndThePeerForgetsItsClients() throws {
        let deployment = try Deployment(fileSize: 32 << 20)
        let portA = freePort(), portB = freePort()
        try deployment.startServer(["-id", "a", "-token", "secret", "-peers", "b:secret:ws://127.0.0.1:\(portB)/connect"], port: portA)
        try deployment.startServer(["-id", "b", "-token", "secret", "-peers", "a:secret:ws://127.0.0.1:\(portA)/connect"], port: portB)
        try deployment.startClient(serverPort: portA, waitOn: portB)
        let drained = deployment.servers[0]
        let viaPeer = try SlowDownload(deployment.url(portB), rate: "12M")
        try #require(waitUntil(seconds: 10) { viaPeer.received >= 2 << 20 }, "the download never got going")

        kill(drained.pid, SIGTERM)
        #expect(waitUntil(seconds: 2) { health(portA).0 == 503 })
        viaPeer.process.waitUntilExit()
        #expect(viaPeer.process.terminationStatus == 0)
        #expect((try? Data(contentsOf: viaPeer.output)) == deployment.file, "the download through the peer must be whole")
        #expect(waitUntil(seconds: 10) { !drained.isRunning })
        #expect(drained.exitedCleanly, "\(drained.output)")
        let unknown = try curl(["http://127.0.0.1:\(portB)/client/foo/healthz"])
        #expect(unknown.status == 503, "the peer still routes to the drained server's client")
    }

    /// The drain ends at `-drain-timeout`, or at once on a second SIGTERM: the transfer still
    /// running is cut (curl sees it short) and the server exits 0.
    @Test(arguments: [false, true])
    func aTransferOutlastingTheDrainIsCutAndTheServerExitsZero(secondSignal: Bool) throws {
        // 64 MiB at 2 MiB/s would take 32 s.
        let (deployment, port, download) = try drainingDeployment(drainTimeout: secondSignal ? "60s" : "2s", rate: "2M")
        let server = deployment.servers[0]
        kill(server.pid, SIGTERM)
        let signalled = Date()
        #expect(waitUntil(seconds: 2) { health(port).0 == 503 })
        if secondSignal { kill(server.pid, SIGTERM) }
        #expect(waitUntil(seconds: 5) { !server.isRunning }, "still running \(Date().timeIntervalSince(signalled)) s after SIGTERM")
        #expect(server.exitedCleanly, "\(server.output)")
        download.process.waitUntilExit()
        #expect(download.process.terminationStatus != 0, "curl must see the transfer cut short")
        #expect(download.received < deployment.file.count)
    }
}
