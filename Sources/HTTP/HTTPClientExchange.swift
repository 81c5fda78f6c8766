import Reactor

/// One request/response over a stream (TCP, TLS, a tunnelled connection): writes the head and a
/// streamed body, parses the response head, and hands the response body over as borrowed
/// pieces with back-pressure. Loop-confined.
public final class HTTPClientExchange: StreamHandler {
    public enum Event {
        case head(HTTPResponseHead)
        /// A piece of the response body, borrowed for the call.
        case bodyPiece(UnsafeRawBufferPointer)
        case end
        /// The exchange failed (before or during the response).
        case failure(any Error)
    }

    public let stream: any ByteStream
    public let request: HTTPRequestHead
    /// Dropped after the final event: it usually captures the owner, which holds this exchange.
    private var onEvent: ((Event) -> Void)?
    private var parser: HTTPHeadParser
    private var body: HTTPBodyDecoder?
    private let limits: HTTPLimits
    private var finished = false
    private var requestChunked = false
    private var responsePaused = false
    /// The request body was sent to its end (a request without one: from the start).
    private var requestBodyEnded = false
    /// The response head, once parsed.
    private var responseHead: HTTPResponseHead?
    private var responseFraming: HTTPBodyFraming?
    /// Takes the stream when the exchange ends with it fit for another request (see `init`).
    private var reuse: ((any ByteStream) -> Void)?
    /// The stream was handed to `reuse`: it is no longer ours to write, pause or close.
    private var released = false
    /// At least one byte of the response arrived (a request that failed before any may be
    /// retried elsewhere, when it is idempotent, as Go's Transport does on a reused connection).
    public private(set) var receivedResponseBytes = false
    /// The request body can take more (after `isWritable` was false).
    public var onWritable: (() -> Void)?

    /// Starts the exchange on `stream`: one not started yet, or (a kept-alive stream from an
    /// earlier exchange) one whose handler this exchange replaces. A request with a body must
    /// carry Content-Length or Transfer-Encoding: chunked, and is then sent with
    /// `writeBody`/`endBody`.
    ///
    /// `reuse`: nil (the default) closes the stream when the exchange ends. Otherwise, when the
    /// response ends and the stream can provably carry another request, the stream stays open
    /// and is handed to `reuse` (before `.end`), which must take it over at once
    /// (`replaceHandler`) or close it; from then on this exchange never touches it again. The
    /// conditions (RFC 9112 §9.3, and no room for response smuggling): the response was framed
    /// by Content-Length or chunked (or had no body), was read to its end, is not 101, neither
    /// the request nor the response asked to close (an HTTP/1.0 response only with keep-alive),
    /// the request body was sent to its end, and no byte beyond the response is buffered.
    /// Otherwise the stream is closed, as without `reuse`.
    public init(stream: any ByteStream, request: HTTPRequestHead, limits: HTTPLimits = HTTPLimits(),
                reuse: ((any ByteStream) -> Void)? = nil, onEvent: @escaping (Event) -> Void) {
        self.stream = stream
        self.request = request
        self.limits = limits
        self.onEvent = onEvent
        self.reuse = reuse
        parser = HTTPHeadParser(limits: limits)
        requestChunked = request.headers.containsToken("chunked", in: "Transfer-Encoding")
        requestBodyEnded = (try? HTTPBodyFraming.of(request: request)).map { $0 == .none || $0 == .length(0) } ?? false
        if stream.isStarted { stream.replaceHandler(self) } else { stream.start(handler: self) }
        stream.write(request.serialized)
    }

    public var isWritable: Bool { !released && stream.isWritable }

    @discardableResult
    public func writeBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard !released else { return false }
        guard bytes.count > 0 else { return stream.isOpen }
        guard requestChunked else { return stream.write(bytes) }
        return ChunkedEncoding.write(bytes, to: stream)
    }

    public func endBody() {
        guard !released else { return }
        requestBodyEnded = true
        if requestChunked { stream.write(ChunkedEncoding.lastChunk) }
    }

    /// Stops the response body: no further piece is handed over (the rest waits in the stream's
    /// buffer) and the stream stops reading.
    public func pauseResponse() {
        guard !released else { return }
        responsePaused = true
        stream.pauseReading()
    }

    public func resumeResponse() {
        guard !released else { return }
        responsePaused = false
        stream.resumeReading()
    }

    /// Abandons the exchange and closes the stream (unless it was already handed to `reuse`).
    public func cancel(error: any Error) {
        finish(.failure(error))
        if !released { stream.close(error: error) }
    }

    /// The response just ended with nothing after it in `buffer`: may the stream carry another request?
    private func streamIsReusable(leftover: Int) -> Bool {
        guard reuse != nil, leftover == 0, requestBodyEnded, stream.isOpen, let head = responseHead, let framing = responseFraming else { return false }
        guard framing != .untilClose, head.status.code != 101, request.keepAlive else { return false }
        if head.headers.containsToken("close", in: "Connection") { return false }
        return head.version == .http11 || head.headers.containsToken("keep-alive", in: "Connection")
    }

    /// Ends the exchange after a complete response: hands the stream to `reuse` or closes it.
    private func finishResponse(leftover: Int) {
        if streamIsReusable(leftover: leftover), let reuse {
            released = true
            self.reuse = nil
            reuse(stream)
            finish(.end)
        } else {
            finish(.end)
            stream.close()
        }
    }

    private func finish(_ event: Event) {
        guard !finished else { return }
        finished = true
        let onEvent = self.onEvent
        self.onEvent = nil
        onWritable = nil
        reuse = nil
        onEvent?(event)
    }

    public func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        guard !finished else { return buffer.consume(buffer.readableBytes) }
        if buffer.readableBytes > 0 { receivedResponseBytes = true }
        do {
            if body == nil {
                guard let head = try parser.parseResponse(&buffer) else { return }
                // Interim 1xx answers (100 Continue) precede the real one.
                if head.status.code < 200 && head.status.code != 101 { return streamDidRead(stream, &buffer) }
                let framing = try HTTPBodyFraming.of(response: head, requestMethod: request.method)
                responseHead = head
                responseFraming = framing
                body = HTTPBodyDecoder(framing: framing, limits: limits)
                onEvent?(.head(head))
            }
            guard var decoder = body, !finished else { return }
            let done = try decoder.decode(&buffer, while: { !responsePaused && !finished }) { piece in onEvent?(.bodyPiece(piece)) }
            body = decoder
            if done { finishResponse(leftover: buffer.readableBytes) }
        } catch {
            finish(.failure(error))
            stream.close(error: error)
        }
    }

    public func streamDidReadEOF(_ stream: any ByteStream) {
        guard !finished else { return stream.close() }
        if var decoder = body, (try? decoder.finishAtEOF()) != nil {
            finish(.end)
        } else {
            finish(.failure(body == nil ? HTTPClientError.closedBeforeResponse : HTTPParseError.bodyTruncated))
        }
        stream.close()
    }

    public func streamWritabilityDidChange(_ stream: any ByteStream, isWritable: Bool) {
        if isWritable { onWritable?() }
    }

    public func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {
        finish(.failure(error ?? HTTPClientError.closedBeforeResponse))
    }
}

public enum HTTPClientError: Error, CustomStringConvertible {
    case closedBeforeResponse
    case timeout

    public var description: String {
        switch self {
        case .closedBeforeResponse: "EOF"
        case .timeout: "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        }
    }
}
