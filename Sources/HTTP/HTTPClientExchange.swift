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
    /// The request body can take more (after `isWritable` was false).
    public var onWritable: (() -> Void)?

    /// Starts the exchange on a stream that is not started yet. A request with a body must carry
    /// Content-Length or Transfer-Encoding: chunked, and is then sent with `writeBody`/`endBody`.
    public init(stream: any ByteStream, request: HTTPRequestHead, limits: HTTPLimits = HTTPLimits(), onEvent: @escaping (Event) -> Void) {
        self.stream = stream
        self.request = request
        self.limits = limits
        self.onEvent = onEvent
        parser = HTTPHeadParser(limits: limits)
        requestChunked = request.headers.containsToken("chunked", in: "Transfer-Encoding")
        stream.start(handler: self)
        stream.write(request.serialized)
    }

    public var isWritable: Bool { stream.isWritable }

    @discardableResult
    public func writeBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count > 0 else { return stream.isOpen }
        guard requestChunked else { return stream.write(bytes) }
        return ChunkedEncoding.write(bytes, to: stream)
    }

    public func endBody() {
        if requestChunked { stream.write(ChunkedEncoding.lastChunk) }
    }

    /// Stops the response body: no further piece is handed over (the rest waits in the stream's
    /// buffer) and the stream stops reading.
    public func pauseResponse() {
        responsePaused = true
        stream.pauseReading()
    }

    public func resumeResponse() {
        responsePaused = false
        stream.resumeReading()
    }

    /// Abandons the exchange and closes the stream.
    public func cancel(error: any Error) {
        finish(.failure(error))
        stream.close(error: error)
    }

    private func finish(_ event: Event) {
        guard !finished else { return }
        finished = true
        let onEvent = self.onEvent
        self.onEvent = nil
        onWritable = nil
        onEvent?(event)
    }

    public func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        guard !finished else { return buffer.consume(buffer.readableBytes) }
        do {
            if body == nil {
                guard let head = try parser.parseResponse(&buffer) else { return }
                // Interim 1xx answers (100 Continue) precede the real one.
                if head.status.code < 200 && head.status.code != 101 { return streamDidRead(stream, &buffer) }
                body = HTTPBodyDecoder(framing: try HTTPBodyFraming.of(response: head, requestMethod: request.method), limits: limits)
                onEvent?(.head(head))
            }
            guard var decoder = body, !finished else { return }
            let done = try decoder.decode(&buffer, while: { !responsePaused && !finished }) { piece in onEvent?(.bodyPiece(piece)) }
            body = decoder
            if done {
                finish(.end)
                stream.close()
            }
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
