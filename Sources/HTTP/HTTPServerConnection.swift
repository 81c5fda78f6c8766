import Reactor

/// Serves HTTP/1.1 on one stream (TCP or TLS): parses heads within limits, streams request
/// bodies, runs one exchange at a time (pipelined requests wait in the read buffer, answered in
/// order), keeps the connection alive when both sides allow it.
public final class HTTPServerConnection: StreamHandler {
    public typealias Responder = (HTTPServerExchange) -> Void

    let stream: any ByteStream
    private let limits: HTTPLimits
    private let respond: Responder
    private var parser: HTTPHeadParser
    private var exchange: HTTPServerExchange?
    private var body: HTTPBodyDecoder?
    private var bodyPaused = false
    private var detached = false
    var keepAlive = true

    public init(stream: any ByteStream, limits: HTTPLimits = HTTPLimits(), respond: @escaping Responder) {
        self.stream = stream
        self.limits = limits
        self.respond = respond
        parser = HTTPHeadParser(limits: limits)
    }

    /// Starts serving (the stream must not be started yet).
    public func start() { stream.start(handler: self) }

    public func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        while !detached && stream.isOpen {
            if let exchange {
                guard readBody(exchange, &buffer) else { return }
                // Body done; the next request waits until this response ends.
                guard exchange.ended else { return }
                self.exchange = nil
                body = nil
                continue
            }
            guard !buffer.isEmpty else { return }
            let head: HTTPRequestHead
            do {
                guard let parsed = try parser.parseRequest(&buffer) else { return }
                head = parsed
            } catch {
                return refuse(error)
            }
            begin(head)
        }
    }

    private func begin(_ head: HTTPRequestHead) {
        let framing: HTTPBodyFraming
        do { framing = try HTTPBodyFraming.of(request: head) } catch { return refuse(error) }
        // Both Transfer-Encoding and Content-Length: read as chunked, then close, since a
        // peer on the way may have framed it by the length (RFC 9112 §6.3).
        keepAlive = head.keepAlive && !(framing == .chunked && head.headers["Content-Length"] != nil)
        let exchange = HTTPServerExchange(head: head, connection: self)
        self.exchange = exchange
        body = HTTPBodyDecoder(framing: framing, limits: limits)
        if framing == .none { exchange.bodyComplete = true }
        // An HTTP/1.0 client does not know 100 (RFC 9110 §10.1.1).
        if framing != .none && head.version == .http11 && head.headers["Expect"]?.lowercased() == "100-continue" {
            stream.write(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
        }
        respond(exchange)
    }

    /// Feeds body bytes to the exchange; true once the body is complete.
    private func readBody(_ exchange: HTTPServerExchange, _ buffer: inout RingBuffer) -> Bool {
        if exchange.bodyComplete { return true }
        guard !bodyPaused, var decoder = body else { return false }
        let done: Bool
        do {
            done = try decoder.decode(&buffer) { piece in exchange.onBodyPiece?(piece) }
        } catch {
            body = decoder
            refuse(error)
            return false
        }
        body = decoder
        guard done else { return false }
        exchange.bodyComplete = true
        exchange.onBodyEnd?()
        return true
    }

    /// A malformed or oversized request: answer its status and close.
    private func refuse(_ error: HTTPParseError) {
        keepAlive = false
        if let exchange, exchange.headWritten { return stream.close(error: error) }
        let refusal = HTTPServerExchange(head: HTTPRequestHead(method: "GET", target: "/"), connection: self)
        exchange = refusal
        refusal.respond(error.status, body: error.description + "\n")
    }

    func exchangeDidEnd(_ ended: HTTPServerExchange) {
        guard exchange === ended, !detached else { return }
        guard keepAlive else { return stream.closeAfterFlush() }
        if ended.bodyComplete {
            exchange = nil
            body = nil
            // A pipelined request may already be buffered.
            stream.loop.runSoon { [self] in if exchange == nil && stream.isOpen { stream.resumeReading() } }
        }
        // Otherwise the rest of the request body is read and dropped, then the next request starts.
        ended.onBodyPiece = nil
        if bodyPaused { resumeBody() }
    }

    func pauseBody() {
        bodyPaused = true
        stream.pauseReading()
    }

    func resumeBody() {
        bodyPaused = false
        stream.resumeReading()
    }

    func detach() -> any ByteStream {
        detached = true
        exchange = nil
        return stream
    }

    public func streamDidReadEOF(_ stream: any ByteStream) {
        if let exchange, !exchange.ended {
            // The client half-closed after its request (curl does not, but some clients do):
            // finish the response, then close.
            keepAlive = false
            if !exchange.bodyComplete { stream.close(error: HTTPParseError.bodyTruncated) }
            return
        }
        stream.close()
    }

    public func streamWritabilityDidChange(_ stream: any ByteStream, isWritable: Bool) {
        if isWritable { exchange?.onWritable?() }
    }

    public func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {
        guard !detached, let exchange, !exchange.ended else { return }
        self.exchange = nil
        exchange.onAbort?(error)
    }
}
