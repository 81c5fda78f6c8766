import Reactor
import Testing
import HTTP

/// What a client exchange delivered, gathered on the loop.
struct ClientOutcome: Sendable {
    var status: Int?
    var headers = HTTPHeaders()
    var body: [UInt8] = []
    var failure: String?
    var ended = false
}

/// Answers the first bytes it reads with canned bytes, then closes (after them).
final class CannedResponder: StreamHandler {
    let response: [UInt8]
    init(_ response: String) { self.response = Array(response.utf8) }
    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        buffer.consume(buffer.readableBytes)
        stream.write(response)
        stream.closeAfterFlush()
    }
    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {}
}

/// Writes `body` through the exchange as fast as it takes it, then ends it.
final class BodyPump {
    let body: [UInt8]
    let pieceSize: Int
    var offset = 0
    init(body: [UInt8], pieceSize: Int) { self.body = body; self.pieceSize = pieceSize }

    func pump(_ exchange: HTTPClientExchange) {
        while offset < body.count && exchange.isWritable {
            let end = min(body.count, offset + pieceSize)
            _ = body.withUnsafeBytes { exchange.writeBody(UnsafeRawBufferPointer(rebasing: $0[offset..<end])) }
            offset = end
        }
        if offset == body.count {
            exchange.onWritable = nil
            exchange.endBody()
            offset += 1
        }
    }
}

@Suite(.serialized)
final class HTTPClientExchangeTests {
    let group: ReactorGroup
    let port: UInt16

    init() throws {
        group = try ReactorGroup(loopCount: 1, name: "http-client")
        let loop = group.next()
        port = try loop.runBlocking { () throws(SocketError) -> UInt16 in
            var router = HTTPRouter()
            router.add("/fixed") { $0.respond(.ok, body: "fixed") }
            router.add("/chunked") { exchange in
                exchange.writeHead(HTTPResponseHead(status: .ok))
                for piece in ["abc", "", "defgh"] { exchange.writeBody(Array(piece.utf8)) }
                exchange.end()
            }
            router.add("/echo", echoBody)
            let server = HTTPServer(loop: loop) { [router] in router.route($0) }
            return try server.listen(on: SocketAddress("127.0.0.1:0")).port
        }
    }

    deinit { group.shutdown() }

    /// Runs one exchange against `port`; `pauseFirstPiece` pauses the response at its first
    /// piece and resumes it 20 ms later.
    func run(_ request: HTTPRequestHead, port: UInt16? = nil, body: [UInt8]? = nil, pauseFirstPiece: Bool = false) async -> ClientOutcome {
        let loop = group.next()
        let port = port ?? self.port
        return await withCheckedContinuation { continuation in
            loop.execute {
                loop.connect(to: try! SocketAddress("127.0.0.1:\(port)")) { result in
                    guard case .success(let connection) = result else {
                        return continuation.resume(returning: ClientOutcome(failure: "connect failed"))
                    }
                    var outcome = ClientOutcome()
                    var paused = false
                    weak var current: HTTPClientExchange?
                    let exchange = HTTPClientExchange(stream: connection, request: request) { event in
                        switch event {
                        case .head(let head):
                            outcome.status = head.status.code
                            outcome.headers = head.headers
                        case .bodyPiece(let piece):
                            outcome.body += piece
                            if pauseFirstPiece && !paused {
                                paused = true
                                current?.pauseResponse()
                                _ = loop.scheduleTimer(after: .milliseconds(20)) { current?.resumeResponse() }
                            }
                        case .end:
                            outcome.ended = true
                            continuation.resume(returning: outcome)
                        case .failure(let error):
                            outcome.failure = "\(error)"
                            continuation.resume(returning: outcome)
                        }
                    }
                    current = exchange
                    if let body {
                        let pump = BodyPump(body: body, pieceSize: 60_000)
                        exchange.onWritable = { [unowned exchange] in pump.pump(exchange) }
                        pump.pump(exchange)
                    }
                }
            }
        }
    }

    /// A server on the group's loop that answers every connection with `response`.
    func cannedServer(_ response: String) throws -> GroupListener {
        try group.listen(on: SocketAddress("127.0.0.1:0")) { $0.start(handler: CannedResponder(response)) }
    }

    @Test func lengthAndChunkedResponsesAreDelivered() async {
        let fixed = await run(HTTPRequestHead(method: "GET", target: "/fixed", headers: ["Host": "x"]))
        #expect(fixed.status == 200 && fixed.body == Array("fixed".utf8) && fixed.ended)
        let chunked = await run(HTTPRequestHead(method: "GET", target: "/chunked", headers: ["Host": "x"]), pauseFirstPiece: true)
        #expect(chunked.headers["Transfer-Encoding"] == "chunked")
        #expect(chunked.status == 200 && chunked.body == Array("abcdefgh".utf8) && chunked.ended, "\(chunked)")
        let head = await run(HTTPRequestHead(method: "HEAD", target: "/fixed", headers: ["Host": "x"]))
        #expect(head.status == 200 && head.headers["Content-Length"] == "5" && head.body.isEmpty && head.ended)
        let missing = await run(HTTPRequestHead(method: "GET", target: "/missing", headers: ["Host": "x"]))
        #expect(missing.status == 404 && missing.ended)
    }

    @Test(arguments: [true, false])
    func uploadsStreamWithBackPressureAndComeBackWhole(chunked: Bool) async {
        var generator = Xorshift(seed: 7)
        let body = (0..<(8 << 20)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        let framing: HTTPHeaders = chunked ? ["Transfer-Encoding": "chunked"] : ["Content-Length": String(body.count)]
        var headers: HTTPHeaders = ["Host": "x"]
        for field in framing { headers.add(name: field.name, value: field.value) }
        let echoed = await run(HTTPRequestHead(method: "POST", target: "/echo", headers: headers), body: body, pauseFirstPiece: true)
        #expect(echoed.failure == nil && echoed.ended)
        #expect(echoed.body.count == body.count && echoed.body == body)
    }

    @Test func interimUntilCloseAndBrokenResponses() async throws {
        let cases: [(response: String, status: Int?, body: String, failure: String?)] = [
            ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, "ok", nil),
            ("HTTP/1.0 200 OK\r\n\r\nuntil the connection closes", 200, "until the connection closes", nil),
            ("HTTP/1.1 204 No Content\r\n\r\n", 204, "", nil),
            ("", nil, "", "EOF"),
            ("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", 200, "short", "unexpected EOF in body"),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n", 200, "", "malformed chunked body"),
            ("HTTP/1.1 2000 OK\r\n\r\n", nil, "", "malformed status line"),
            ("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", nil, "", "malformed header field"),
        ]
        for (response, status, body, failure) in cases {
            let server = try cannedServer(response)
            defer { server.close() }
            let outcome = await run(HTTPRequestHead(method: "GET", target: "/", headers: ["Host": "x"]), port: server.address.port)
            #expect(outcome.status == status, "\(response.debugDescription)")
            #expect(String(decoding: outcome.body, as: UTF8.self) == body, "\(response.debugDescription)")
            #expect(outcome.failure == failure, "\(response.debugDescription)")
            #expect(outcome.ended == (failure == nil))
        }
    }
}

/// Answers every request it reads (one per read: the tests' requests are small) with canned
/// bytes, and keeps the connection open: whether a stream is reused is then the client's decision.
final class KeepOpenResponder: StreamHandler {
    let response: [UInt8]
    init(_ response: String) { self.response = Array(response.utf8) }
    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        buffer.consume(buffer.readableBytes)
        stream.write(response)
    }
    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {}
}

/// An exchange given `reuse` hands its stream over only when another request can follow on it.
@Suite(.serialized)
final class HTTPClientExchangeReuseTests {
    let group: ReactorGroup
    let port: UInt16

    init() throws {
        group = try ReactorGroup(loopCount: 1, name: "http-client-reuse")
        let loop = group.next()
        port = try loop.runBlocking { () throws(SocketError) -> UInt16 in
            var router = HTTPRouter()
            router.add("/fixed") { $0.respond(.ok, body: "fixed") }
            router.add("/chunked") { exchange in
                exchange.writeHead(HTTPResponseHead(status: .ok))
                exchange.writeBody(Array("abc".utf8))
                exchange.end()
            }
            let server = HTTPServer(loop: loop) { [router] in router.route($0) }
            return try server.listen(on: SocketAddress("127.0.0.1:0")).port
        }
    }

    deinit { group.shutdown() }

    /// Runs `first` on a new connection to `port`; if its stream is handed over, runs `second`
    /// on the same stream. The bodies (nil: that exchange failed, or never ran) and whether the
    /// stream was reused.
    func run(_ first: HTTPRequestHead, then second: HTTPRequestHead, port: UInt16) async -> (first: String?, second: String?, reused: Bool) {
        let loop = group.next()
        return await withCheckedContinuation { continuation in
            loop.execute {
                loop.connect(to: try! SocketAddress("127.0.0.1:\(port)")) { result in
                    guard case .success(let connection) = result else { return continuation.resume(returning: (nil, nil, false)) }
                    var body = "", firstBody: String?
                    var handedOver: (any ByteStream)?
                    _ = HTTPClientExchange(stream: connection, request: first, reuse: { handedOver = $0 }) { event in
                        switch event {
                        case .head: break
                        case .bodyPiece(let piece): body += String(decoding: piece, as: UTF8.self)
                        case .failure: continuation.resume(returning: (nil, nil, false))
                        case .end:
                            firstBody = body
                            guard let stream = handedOver else { return continuation.resume(returning: (firstBody, nil, false)) }
                            var secondBody = ""
                            _ = HTTPClientExchange(stream: stream, request: second) { event in
                                switch event {
                                case .head: break
                                case .bodyPiece(let piece): secondBody += String(decoding: piece, as: UTF8.self)
                                case .end: continuation.resume(returning: (firstBody, secondBody, true))
                                case .failure: continuation.resume(returning: (firstBody, nil, true))
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    func get(_ path: String, _ extra: HTTPHeaders = [:]) -> HTTPRequestHead {
        var headers: HTTPHeaders = ["Host": "x"]
        for field in extra { headers.add(name: field.name, value: field.value) }
        return HTTPRequestHead(method: "GET", target: path, headers: headers)
    }

    @Test func aKeptAliveStreamCarriesTheNextExchange() async {
        let both = await run(get("/fixed"), then: get("/chunked"), port: port)
        #expect(both.first == "fixed" && both.second == "abc" && both.reused)
        let chunkedFirst = await run(get("/chunked"), then: get("/fixed"), port: port)
        #expect(chunkedFirst.first == "abc" && chunkedFirst.second == "fixed" && chunkedFirst.reused)
        let head = await run(HTTPRequestHead(method: "HEAD", target: "/fixed", headers: ["Host": "x"]), then: get("/fixed"), port: port)
        #expect(head.first == "" && head.second == "fixed" && head.reused)
    }

    @Test func theRequestAskingToCloseIsNotReused() async {
        let closing = await run(get("/fixed", ["Connection": "close"]), then: get("/fixed"), port: port)
        #expect(closing.first == "fixed" && !closing.reused)
    }

    @Test(arguments: [
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
        "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
    ])
    func answersThatCannotBeFollowedAreNotReused(response: String) async throws {
        let listener = try group.listen(on: SocketAddress("127.0.0.1:0")) { $0.start(handler: KeepOpenResponder(response)) }
        defer { listener.close() }
        let outcome = await run(get("/"), then: get("/"), port: listener.address.port)
        #expect(outcome.first == (response.contains(" 101 ") ? "" : "ok") && !outcome.reused)
    }

    @Test func anAnswerRunningToEOFIsNotReused() async throws {
        // Its end is the connection's end (the canned server closes after it).
        let listener = try group.listen(on: SocketAddress("127.0.0.1:0")) { $0.start(handler: CannedResponder("HTTP/1.1 200 OK\r\n\r\nok")) }
        defer { listener.close() }
        let outcome = await run(get("/"), then: get("/"), port: listener.address.port)
        #expect(outcome.first == "ok" && !outcome.reused)
    }

    @Test func anHTTP10AnswerWithKeepAliveIsReused() async throws {
        let response = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"
        let listener = try group.listen(on: SocketAddress("127.0.0.1:0")) { $0.start(handler: KeepOpenResponder(response)) }
        defer { listener.close() }
        let outcome = await run(get("/"), then: get("/"), port: listener.address.port)
        #expect(outcome.first == "ok" && outcome.reused && outcome.second == "ok")
    }
}
