import Foundation
import Glibc
import Testing

/// remotedialer-dummy on its own against curl: whole files (read-and-write and sendfile sizes),
/// HEAD, single ranges, keep-alive, the directory listing, and paths that must not resolve.
@Suite(.serialized)
final class DummyProgramTests {
    let directory: URL
    let port = freePort()
    var dummy: Subprocess!
    /// Below the dummy's sendfile threshold (64 KiB) and above it.
    let small = Data((0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
    let large = Data((0..<((1 << 20) + 7)).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ $0 >> 11) })

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("dummy-\(UUID().uuidString)")
        let subdirectory = directory.appendingPathComponent("sub dir")
        try FileManager.default.createDirectory(at: subdirectory, withIntermediateDirectories: true)
        try small.write(to: directory.appendingPathComponent("small"))
        try large.write(to: directory.appendingPathComponent("large"))
        try small.write(to: subdirectory.appendingPathComponent("a&b<c>.txt"))
        dummy = try Subprocess("remotedialer-dummy", ["-listen", "127.0.0.1:\(port)"], directory: directory)
        try #require(eventually { canConnect(port: port) }, "dummy did not start: \(dummy.output)")
    }

    deinit {
        dummy?.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)/\(path)" }

    /// curl's stdout and stderr together (response heads with -D -, connection reuse with -v).
    func transcript(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-s", "--max-time", "30"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text
    }

    @Test func wholeFilesAreServedByteForByte() throws {
        for (name, content) in [("small", small), ("large", large)] {
            let result = try curl([url(name)])
            #expect(result.status == 200 && result.body == content, "\(name)")
        }
    }

    @Test func singleRangesAre206AndUnsatisfiableOnes416() throws {
        for (name, content) in [("small", small), ("large", large)] {
            let size = content.count
            for (range, expected) in [("10-19", 10..<20), ("900-", 900..<size), ("-5", (size - 5)..<size), ("0-0", 0..<1),
                                      ("990-\(size + 50)", 990..<size)] {
                let result = try curl(["-r", range, url(name)])
                #expect(result.status == 206 && result.body == content[expected], "\(name) \(range)")
            }
            let head = try transcript(["-D", "-", "-o", "/dev/null", "-r", "10-19", url(name)])
            #expect(head.contains("Content-Range: bytes 10-19/\(size)\r\n") && head.contains("Content-Length: 10\r\n"), "\(head)")
            for range in ["\(size)-", "\(size + 10)-\(size + 20)", "20-10", "-0"] {
                let refused = try transcript(["-D", "-", "-o", "/dev/null", "-H", "Range: bytes=\(range)", url(name)])
                #expect(refused.hasPrefix("HTTP/1.1 416") && refused.contains("Content-Range: bytes */\(size)\r\n"), "\(name) \(range): \(refused)")
            }
            // Several ranges: the Range header is ignored and the whole file sent.
            let several = try curl(["-r", "0-1,5-6", url(name)])
            #expect(several.status == 200 && several.body == content, "\(name)")
        }
    }

    @Test func headAnnouncesTheLengthWithoutABody() throws {
        let head = try transcript(["-I", url("large")])
        #expect(head.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(head.contains("Content-Length: \(large.count)\r\n") && head.contains("Accept-Ranges: bytes\r\n"), "\(head)")
        #expect(head.hasSuffix("\r\n\r\n"))
    }

    @Test func keepAliveServesSeveralFilesOnOneConnection() throws {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("dummy-out-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: output) }
        let log = try transcript(["-v", url("small"), url("large"), url("small"), "-o", output.path, "-o", "/dev/null", "-o", "/dev/null"])
        // curl says "Re-using" or (newer) "Reusing": the second and third requests reuse the first's connection.
        let reuses = log.components(separatedBy: "e-using existing connection").count - 1 + log.components(separatedBy: "Reusing existing connection").count - 1
        #expect(reuses == 2, "\(log)")
        #expect(try Data(contentsOf: output) == small)
    }

    @Test func listingEscapesNamesAndPathsStayInTheDirectory() throws {
        let root = try curl([url("")])
        #expect(root.status == 200)
        #expect(String(decoding: root.body, as: UTF8.self).contains("<a href=\"/sub%20dir\">sub dir</a>"))
        let listing = try curl([url("sub%20dir/")])
        let escaped = "<a href=\"/sub%20dir/a%26b%3Cc%3E.txt\">a&amp;b&lt;c&gt;.txt</a>"
        #expect(String(decoding: listing.body, as: UTF8.self).contains(escaped), "\(String(decoding: listing.body, as: UTF8.self))")
        let linked = try curl([url("sub%20dir/a%26b%3Cc%3E.txt")])
        #expect(linked.status == 200 && linked.body == small)
        for path in ["..%00", "../", "sub%20dir/../../", "%2e%2e/"] {
            #expect(try curl(["--path-as-is", url(path)]).status == 400, "\(path)")
        }
        #expect(try curl([url("missing")]).status == 404)
        #expect(try curl(["-X", "DELETE", url("small")]).status == 405)
    }
}
