import Foundation
import Glibc
import Testing

/// Debian's chromium, if installed (Scripts/install-deps.sh installs it).
private let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

/// `/status` loaded in a real browser (headless Chromium): after the page's script has run its
/// first refresh from the admin API, every connected client and the peer are on the page.
@Suite(.serialized, .enabled(if: chromium != nil, "chromium is not installed: run Scripts/install-deps.sh as root"))
struct StatusPageBrowserTests {
    /// Runs headless chromium with a throwaway profile; its stdout. Killed after 60 s.
    private func browse(_ arguments: [String]) throws -> String {
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("chromium-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: profile) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: chromium!)
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=\(profile.path)",
                             "--virtual-time-budget=5000"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = DispatchTime.now() + 60
        // Weak: a strong capture kept the process and its pipe open for the whole 60 s, and their
        // descriptors closing later upset the fd counts of whichever test ran then.
        DispatchQueue.global().asyncAfter(deadline: deadline) { [weak process] in
            if let process, process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text
    }

    @Test func thePageShowsEveryClientAndThePeerAfterItsFirstRefresh() throws {
        let deployment = try Deployment()
        let portA = freePort(), portB = freePort()
        try deployment.startServer(["-id", "a", "-token", "secret", "-peers", "b:secret:ws://127.0.0.1:\(portB)/connect"], port: portA)
        try deployment.startServer(["-id", "b", "-token", "secret", "-peers", "a:secret:ws://127.0.0.1:\(portA)/connect"], port: portB)
        for id in ["edge-1", "edge-2"] { try deployment.startClient(serverPort: portA, id: id) }
        try deployment.startClient(serverPort: portB, id: "far", waitOn: portA)
        _ = try curl([deployment.url(portA, client: "edge-1")])
        let page = "http://127.0.0.1:\(portA)\("/status")"

        // As served, the page holds no data: whatever the browser shows, its script fetched.
        let served = String(decoding: try curl([page]).body, as: UTF8.self)
        #expect(!served.contains("edge-1"))
        #expect(served.contains("loading…"))

        let dom = try browse(["--dump-dom", page])
        for id in ["edge-1", "edge-2"] {
            #expect(dom.contains("<tr id=\"client-\(id)\"><td>\(id)</td>"), "client \(id) missing from the rendered page:\n\(dom)")
        }
        #expect(!dom.contains("client-far"), "a peer's client is listed under the peer, not as ours")
        #expect(dom.contains("<td>b</td><td>ws://127.0.0.1:\(portB)/connect</td>"), "\(dom)")
        #expect(dom.contains("<td>far</td>"), "the peer's announced client")
        #expect(dom.contains("<polyline"), "a sparkline per client")
        #expect(!dom.contains("loading…"))

        let screenshot = FileManager.default.temporaryDirectory.appendingPathComponent("status-\(UUID().uuidString).png")
        defer { try? FileManager.default.removeItem(at: screenshot) }
        _ = try browse(["--window-size=1280,640", "--screenshot=\(screenshot.path)", page])
        let png = try Data(contentsOf: screenshot)
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "a PNG")
        #expect(png.count > 10_000, "a rendered page, not a blank one (\(png.count) bytes)")
    }
}
