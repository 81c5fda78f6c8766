import Reactor

/// One request/response on a server connection: the request head, its body as a stream of
/// borrowed pieces, and a response writer with back-pressure. Loop-confined.
public final class HTTPServerExchange {
    public let head: HTTPRequestHead
    unowned let connection: HTTPServerConnection
    /// Request body pieces, borrowed for the call. Unset: the body is read and dropped.
    public var onBodyPiece: ((UnsafeRawBufferPointer) -> Void)?
    /// The request body is complete.
    public var onBodyEnd: (() -> Void)?
    /// The response can take more bytes again (after `isWritable` was false).
    public var onWritable: (() -> Void)?
    /// The connection closed before the response ended.
    public var onAbort: (((any Error)?) -> Void)?
    public internal(set) var bodyComplete = false
    public private(set) var headWritten = false
    public private(set) var ended = false
    private var chunked = false
    private var bodyAllowed = true

    init(head: HTTPRequestHead, connection: HTTPServerConnection) {
        self.head = head
        self.connection = connection
    }

    public var loop: EventLoop { connection.stream.loop }
    /// The underlying stream, e.g. to cut a response short after an upstream failure.
    public var connectionStream: any ByteStream { connection.stream }
    public var isWritable: Bool { connection.stream.isWritable }
    public var remoteAddress: SocketAddress? { (connection.stream as? Connection)?.remoteAddress }

    public func pauseBody() { connection.pauseBody() }
    public func resumeBody() { connection.resumeBody() }

    /// Sends the head. Without Content-Length the body is chunked; `Connection: close` is added
    /// when the connection will not be kept.
    public func writeHead(_ response: HTTPResponseHead) {
        precondition(!headWritten, "response head written twice")
        headWritten = true
        var response = response
        let code = response.status.code
        bodyAllowed = head.method != "HEAD" && code >= 200 && code != 204 && code != 304
        response.headers.remove(name: "Transfer-Encoding")
        if response.headers["Content-Length"] == nil && code >= 200 && code != 204 && code != 304 {
            if head.version == .http11 {
                response.headers.add(name: "Transfer-Encoding", value: "chunked")
                chunked = bodyAllowed
            } else {
                connection.keepAlive = false
            }
        }
        if !connection.keepAlive { response.headers.replace(name: "Connection", value: "close") }
        connection.stream.write(response.serialized)
    }

    /// Writes body bytes; returns false if the connection is gone.
    @discardableResult
    public func writeBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
        precondition(headWritten && !ended, "body written outside a response")
        guard bodyAllowed, bytes.count > 0 else { return connection.stream.isOpen }
        guard chunked else { return connection.stream.write(bytes) }
        return ChunkedEncoding.write(bytes, to: connection.stream)
    }

    @discardableResult
    public func writeBody(_ bytes: some Collection<UInt8>) -> Bool {
        Array(bytes).withUnsafeBytes { writeBody($0) }
    }

    /// Ends the response; the connection moves to the next request or closes.
    public func end() {
        guard !ended else { return }
        precondition(headWritten, "end() before the head")
        if chunked { connection.stream.write(ChunkedEncoding.lastChunk) }
        ended = true
        connection.exchangeDidEnd(self)
    }

    /// A whole small response.
    public func respond(_ status: HTTPStatus, headers: HTTPHeaders = HTTPHeaders(), body: String = "") {
        var response = HTTPResponseHead(status: status, headers: headers)
        if response.headers["Content-Type"] == nil && !body.isEmpty {
            response.headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        }
        response.headers.replace(name: "Content-Length", value: String(body.utf8.count))
        writeHead(response)
        writeBody(Array(body.utf8))
        end()
    }

    /// Sends `response` (a 101) and hands the stream over; the HTTP connection stops using it.
    /// Bytes that followed the request head stay in the stream's read buffer for the new owner.
    public func upgrade(_ response: HTTPResponseHead) -> any ByteStream {
        precondition(!headWritten, "upgrade after a response head")
        headWritten = true
        ended = true
        connection.stream.write(response.serialized)
        return connection.detach()
    }

}
