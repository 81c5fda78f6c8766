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
