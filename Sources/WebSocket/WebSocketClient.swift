import HTTP
import Reactor

/// Why a client handshake failed.
public enum WebSocketClientError: Error, Sendable, CustomStringConvertible {
    /// The server answered something other than 101: its status and (the start of) its body.
    case unexpectedStatus(status: Int, body: String)
    case badAcceptValue
    case malformedResponse(HTTPParseError)
    case timeout
    case closed((any Error)?)

    public var description: String {
        switch self {
        case .unexpectedStatus(let status, let body): "websocket: bad handshake: status \(status)\(body.isEmpty ? "" : ": " + body)"
        case .badAcceptValue: "websocket: bad handshake: Sec-WebSocket-Accept does not match the key"
        case .malformedResponse(let error): "websocket: bad handshake: \(error)"
        case .timeout: "websocket: handshake timed out"
        case .closed(let error): "websocket: connection closed during handshake" + (error.map { ": \($0)" } ?? "")
        }
    }
}

/// Client side of the opening handshake over a connected, not yet started stream.
public enum WebSocketClient {
    /// Sends `GET path` with `Host`, the caller's headers and a random key; completes with an
    /// open connection on 101 with the right accept value (frame bytes that followed the head
    /// stay in the stream for it), otherwise with a `WebSocketClientError`.
    public static func handshake(stream: any ByteStream, host: String, path: String, headers: [(String, String)],
                                 options: WebSocketOptions = WebSocketOptions(), timeout: Duration = .seconds(30),
                                 completion: @escaping (Result<WebSocketConnection, any Error>) -> Void) {
        let exchange = ClientHandshake(host: host, path: path, headers: headers, options: options, completion: completion)
        exchange.start(on: stream, timeout: timeout)
    }
}

private final class ClientHandshake: StreamHandler {
    /// A refusal's body is read up to this many bytes for the error.
    static let maxBodyShown = 4096

    let key = WebSocketHandshake.makeKey()
    let request: HTTPRequestHead
    let options: WebSocketOptions
    var completion: ((Result<WebSocketConnection, any Error>) -> Void)?
    var parser = HTTPHeadParser()
    var refusal: (status: Int, body: [UInt8], decoder: HTTPBodyDecoder)?
    var timer: TimerID?

    init(host: String, path: String, headers: [(String, String)], options: WebSocketOptions,
         completion: @escaping (Result<WebSocketConnection, any Error>) -> Void) {
        var head = HTTPRequestHead(method: "GET", target: path)
        head.headers.add(name: "Host", value: host)
        head.headers.add(name: "Upgrade", value: "websocket")
        head.headers.add(name: "Connection", value: "Upgrade")
        head.headers.add(name: "Sec-WebSocket-Key", value: key)
        head.headers.add(name: "Sec-WebSocket-Version", value: "13")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        request = head
        self.options = options
        self.completion = completion
    }

    func start(on stream: any ByteStream, timeout: Duration) {
        timer = stream.loop.scheduleTimer(after: timeout) { [self] in
            finish(stream, .failure(WebSocketClientError.timeout))
            stream.close()
        }
        stream.start(handler: self)
        stream.write(request.serialized)
    }

    private func finish(_ stream: any ByteStream, _ result: Result<WebSocketConnection, any Error>) {
        guard let completion else { return }
        self.completion = nil
        if let timer { stream.loop.cancelTimer(timer) }
        completion(result)
    }

    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        guard completion != nil else { return buffer.consume(buffer.readableBytes) }
        if refusal != nil { return readRefusalBody(stream, &buffer) }
        let head: HTTPResponseHead
        do {
            guard let parsed = try parser.parseResponse(&buffer) else { return }
            head = parsed
        } catch {
            finish(stream, .failure(WebSocketClientError.malformedResponse(error)))
            return stream.close()
        }
        guard head.status.code == 101 else {
            let framing = (try? HTTPBodyFraming.of(response: head, requestMethod: "GET")) ?? .untilClose
            refusal = (head.status.code, [], HTTPBodyDecoder(framing: framing))
            return readRefusalBody(stream, &buffer)
        }
        guard head.headers["Sec-WebSocket-Accept"] == WebSocketHandshake.acceptValue(forKey: key) else {
            finish(stream, .failure(WebSocketClientError.badAcceptValue))
            return stream.close()
        }
        finish(stream, .success(WebSocketConnection(stream: stream, role: .client, options: options)))
    }

    private func readRefusalBody(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        guard case (let status, var body, var decoder)? = refusal else { return }
        let done = (try? decoder.decode(&buffer) { piece in
            body += piece.prefix(max(0, Self.maxBodyShown - body.count))
        }) ?? true
        refusal = (status, body, decoder)
        if done || body.count >= Self.maxBodyShown { reportRefusal(stream) }
    }

    private func reportRefusal(_ stream: any ByteStream) {
        guard let (status, body, _) = refusal else { return }
        var text = Substring(String(decoding: body, as: UTF8.self))
        while let last = text.last, last.isNewline { text.removeLast() }
        finish(stream, .failure(WebSocketClientError.unexpectedStatus(status: status, body: String(text))))
        stream.close()
    }

    func streamDidReadEOF(_ stream: any ByteStream) {
        if refusal != nil { return reportRefusal(stream) }
        finish(stream, .failure(WebSocketClientError.closed(nil)))
        stream.close()
    }

    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {
        if refusal != nil { return reportRefusal(stream) }
        finish(stream, .failure(WebSocketClientError.closed(error)))
    }
}
