import Glibc
import Reactor
import Testing
import HTTP

/// The server driven over a raw loopback socket: exact bytes in (pipelined, cut anywhere,
/// malformed), responses parsed back with our own response parser.
@Suite(.serialized)
final class HTTPServerConnectionTests {
    let group: ReactorGroup
    let port: UInt16

    init() throws {
        group = try ReactorGroup(loopCount: 1, name: "http-raw")
        let loop = group.next()
        port = try loop.runBlocking { () throws(SocketError) -> UInt16 in
            var router = HTTPRouter()
            router.add("/hello") { $0.respond(.ok, body: "hello") }
            // Answers with the request body's size once all of it has arrived.
            router.add("/size") { exchange in
                var size = 0
                exchange.onBodyPiece = { size += $0.count }
                exchange.onBodyEnd = { exchange.respond(.ok, body: "\(size)") }
                if exchange.bodyComplete { exchange.respond(.ok, body: "0") }
            }
            router.add("/method", method: "GET") { $0.respond(.ok, body: "get") }
            router.add("/method", method: "PUT") { $0.respond(.ok, body: "put") }
            router.add(prefix: "/files/", method: "GET") { $0.respond(.ok, body: "file \($0.head.path.dropFirst(7))") }
            router.add(prefix: "/files/upload/") { $0.respond(.ok, body: "upload by \($0.head.method)") }
            let server = HTTPServer(loop: loop) { [router] in router.route($0) }
            return try server.listen(on: SocketAddress("127.0.0.1:0")).port
        }
    }

    deinit { group.shutdown() }

    struct Received {
        var responses: [(status: Int, headers: HTTPHeaders, body: String)] = []
        /// The server closed the connection (rather than the 10 s read timeout ending it).
        var closedByServer = false
        var raw = ""
    }

    /// Sends `request` (in one write, or one byte per write), reads until the server closes or
    /// 2 s pass without a byte, and parses the responses.
    func send(_ request: String, oneByteAtATime: Bool = false) throws -> Received {
        let fd = try #require(connectLoopback(port: port))
        defer { close(fd) }
        var noDelay: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let bytes = Array(request.utf8)
        for piece in oneByteAtATime ? bytes.map({ [$0] }) : [bytes] {
            #expect(piece.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == piece.count)
        }
        var received = Received()
        var ring = RingBuffer(minimumCapacity: 4096, maximumCapacity: 1 << 20)
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { received.closedByServer = true }
            if count <= 0 { break }
            let appended = appendBytes(&ring, Array(chunk[..<count]))
            #expect(appended)
            received.raw += String(decoding: chunk[..<count], as: UTF8.self)
        }
        var parser = HTTPHeadParser()
        while let head = try parser.parseResponse(&ring) {
            var body: [UInt8] = []
            var decoder = HTTPBodyDecoder(framing: try HTTPBodyFraming.of(response: head, requestMethod: "GET"))
            _ = try decoder.decode(&ring) { body += $0 }
            received.responses.append((head.status.code, head.headers, String(decoding: body, as: UTF8.self)))
        }
        let allParsed = ring.isEmpty
        #expect(allParsed, "unparsed: \(received.raw)")
        return received
    }

    @Test(arguments: [false, true])
    func pipelinedRequestsAreAnsweredInOrder(oneByteAtATime: Bool) throws {
        let request = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
            + "POST /size HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            + "POST /size HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n"
            + "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"
            + "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        let received = try send(request, oneByteAtATime: oneByteAtATime)
        #expect(received.responses.map(\.status) == [200, 200, 200, 404, 200], "\(received.raw)")
        #expect(received.responses.map(\.body) == ["hello", "5", "19", "404 page not found\n", "hello"])
        #expect(received.responses.last?.headers["Connection"] == "close")
        #expect(received.closedByServer)
    }

    @Test func aBadRequestInAPipelineIsRefusedAfterTheGoodOnes() throws {
        let received = try send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nBad Header: x\r\n\r\nGET /hello HTTP/1.1\r\n\r\n")
        #expect(received.responses.map(\.status) == [200, 400], "\(received.raw)")
        #expect(received.responses.last?.headers["Connection"] == "close")
        #expect(received.closedByServer)
    }

    @Test func lengthAndChunkedTogetherAreReadAsChunkedThenClosed() throws {
        let received = try send("POST /size HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "3\r\nabc\r\n0\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(received.responses.map(\.status) == [200], "\(received.raw)")
        #expect(received.responses.first?.body == "3")
        #expect(received.responses.first?.headers["Connection"] == "close")
        #expect(received.closedByServer)
    }

    @Test func aSignedChunkSizeIs400AndTheLoopKeepsServing() throws {
        let received = try send("POST /size HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n")
        #expect(received.responses.map(\.status) == [400], "\(received.raw)")
        #expect(received.closedByServer)
        #expect(try send("GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n").responses.map(\.body) == ["hello"])
    }

    @Test func http10ClosesUnlessKeepAliveAndGetsNo100Continue() throws {
        let plain = try send("GET /hello HTTP/1.0\r\n\r\nGET /hello HTTP/1.0\r\n\r\n")
        #expect(plain.responses.count == 1 && plain.closedByServer, "\(plain.raw)")
        let kept = try send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /hello HTTP/1.0\r\n\r\n")
        #expect(kept.responses.count == 2 && kept.closedByServer, "\(kept.raw)")
        let old = try send("POST /size HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx")
        #expect(old.raw.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(old.raw)")
        let current = try send("POST /size HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx")
        #expect(current.raw.hasPrefix("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"), "\(current.raw)")
    }

    @Test func routerPicksExactThenLongestPrefixAndAnswers405ForOtherMethods() throws {
        let requests = ["GET /method", "PUT /method", "DELETE /method", "GET /files/a/b", "POST /files/a", "POST /files/upload/x",
                        "GET /hello", "GET /nowhere"]
        let received = try send(requests.map { "\($0) HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n" }.joined()
            + "HEAD /method HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(received.responses.map(\.status) == [200, 200, 405, 200, 405, 200, 200, 404, 200], "\(received.raw)")
        #expect(received.responses.map(\.body).prefix(8) == ["get", "put", "method not allowed\n", "file a/b", "method not allowed\n",
                                                                "upload by POST", "hello", "404 page not found\n"])
        #expect(received.responses[2].headers["Allow"] == "GET, HEAD, PUT")
        #expect(received.responses[4].headers["Allow"] == "GET, HEAD")
        // HEAD is served by the GET route: its length, no body (the parser here reads a HEAD answer as GET's).
        #expect(received.raw.hasSuffix("Content-Length: 3\r\nConnection: close\r\n\r\n"), "\(received.raw)")
    }
}
