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
        try #require(waitUntil(seconds: 10) { canConnect(port: port) }, "dummy did not start: \(dummy.output)")
    }

    deinit {
        dummy?.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)/\(path)" }

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

    /// The HEAD response announces the file's length but sends no body: the next pipelined
    /// response's status line follows its blank line directly.
    @Test func headAnnouncesTheLengthWithoutABody() throws {
        let received = try #require(rawExchange(port: port, "HEAD /large HTTP/1.1\r\nHost: a\r\n\r\nGET /small HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
                                    "no answer, or the connection stayed open after the second response")
        let head = try #require(splitHead(received))
        #expect(head.head.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(head.head.contains("Content-Length: \(large.count)\r\n") && head.head.contains("Accept-Ranges: bytes\r\n"), "\(head.head)")
        let get = try #require(splitHead(head.rest))
        #expect(get.head.hasPrefix("HTTP/1.1 200 OK\r\n"), "bytes after the HEAD response: \(get.head.prefix(200).debugDescription)")
        #expect(Data(get.rest) == small)
    }

    @Test func keepAliveServesSeveralFilesOnOneConnection() throws {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("dummy-out-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: output) }
        let log = try transcript(["-v", url("small"), url("large"), url("small"), "-o", output.path, "-o", "/dev/null", "-o", "/dev/null"])
        // The second and third requests reuse the first's connection.
        #expect(connectionReuses(in: log) == 2, "\(log)")
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
