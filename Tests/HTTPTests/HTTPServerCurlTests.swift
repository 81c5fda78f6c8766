import Foundation
import Reactor
import Testing
import HTTP

/// Our HTTP server against curl (a client we did not write).
@Suite(.serialized)
final class HTTPServerCurlTests {
    let group: ReactorGroup
    let port: UInt16

    init() throws {
        group = try ReactorGroup(loopCount: 1, name: "http-curl")
        let loop = group.next()
        port = try loop.runBlocking { () throws(SocketError) -> UInt16 in
            var router = HTTPRouter()
            router.add("/hello") { exchange in exchange.respond(.ok, body: "hello \(exchange.head.method)\n") }
            router.add(prefix: "/echo", echoBody)
            let server = HTTPServer(loop: loop) { [router] in router.route($0) }
            return try server.listen(on: SocketAddress("127.0.0.1:0")).port
        }
    }

    deinit { group.shutdown() }

    /// curl's exit code, stdout and stderr (-v goes to stderr).
    func curl(_ arguments: [String], input: Data? = nil) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-s", "--max-time", "30"] + arguments
        let output = Pipe(), errors = Pipe(), stdin = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(input) }
        try stdin.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    @Test func keepAliveRequestsShareOneConnection() throws {
        let url = "http://127.0.0.1:\(port)/hello"
        let (code, body, log) = try curl(["-v", url, url, url])
        #expect(code == 0)
        #expect(body == String(repeating: "hello GET\n", count: 3))
        #expect(log.contains("Re-using existing connection") || log.contains("Reusing existing connection"), "\(log)")
    }

    @Test func chunkedUploadIsStreamedBack() throws {
        let payload = Data((0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("upload-\(UUID().uuidString)")
        try payload.write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let output = file.appendingPathExtension("out")
        defer { try? FileManager.default.removeItem(at: output) }
        let (code, _, log) = try curl(["-H", "Transfer-Encoding: chunked", "--data-binary", "@\(file.path)", "-o", output.path,
                                       "http://127.0.0.1:\(port)/echo"])
        #expect(code == 0, "\(log)")
        #expect(try Data(contentsOf: output) == payload)
    }

    /// curl waits up to --expect100-timeout before sending the body anyway; with 20 s against a
    /// 10 s limit, only our interim 100 Continue lets the upload finish.
    @Test func uploadWithExpectContinueIsAnswered() throws {
        let (code, body, log) = try curl(["-v", "--max-time", "10", "--expect100-timeout", "20", "-H", "Expect: 100-continue",
                                          "--data-binary", "@-", "http://127.0.0.1:\(port)/echo"], input: Data("x".utf8))
        #expect(code == 0, "\(log)")
        #expect(body == "x")
        #expect(log.contains("< HTTP/1.1 100 Continue"), "\(log)")
    }

    @Test func oversizedHeaderGets431() throws {
        let (code, status, _) = try curl(["-o", "/dev/null", "-w", "%{http_code}", "-H", "X-Big: " + String(repeating: "a", count: 70_000),
                                          "http://127.0.0.1:\(port)/hello"])
        #expect(code == 0)
        #expect(status == "431")
    }

    /// A HEAD response announces the GET's length but sends no body: the next pipelined
    /// response's status line follows its blank line directly.
    @Test func headRequestHasNoBodyAndUnknownPathIs404() throws {
        let received = try #require(rawExchange(port: port, "HEAD /hello HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
                                    "no answer, or the connection stayed open after the second response")
        let head = try #require(splitHead(received))
        #expect(head.head.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(head.head.contains("Content-Length: 11\r\n"))  // "hello HEAD\n", announced but not sent
        let get = try #require(splitHead(head.rest))
        #expect(get.head.hasPrefix("HTTP/1.1 200 OK\r\n"), "bytes after the HEAD response: \(get.head.debugDescription)")
        #expect(get.rest == Array("hello GET\n".utf8))
        let (_, status, _) = try curl(["-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/nope"])
        #expect(status == "404")
    }
}
