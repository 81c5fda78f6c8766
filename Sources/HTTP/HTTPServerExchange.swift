import Reactor

/// One request/response on a server connection: the request head, its body as a stream of
/// borrowed pieces, and a response writer with back-pressure. Loop-confined.
///
/// An exchange can outlive its connection (an upstream answer may arrive after the requester
/// hung up): it holds the connection weakly, and once it is ended or aborted every write is a
/// no-op and its callbacks are dropped, so nothing it captured is kept alive.
public final class HTTPServerExchange {
    /// Where the response stands. Terminal states are `ended` and `aborted`.
    public enum ResponseState: Equatable, Sendable {
        case notStarted
        /// The head is out; the body follows (chunked or not, or no body at all).
        case streaming(chunked: Bool, bodyAllowed: Bool)
        case ended
        /// The connection ended (or was refused) before the response did.
        case aborted
    }

    public let head: HTTPRequestHead
    /// The request asks for an upgrade (it has the head timeout until answered). Looked up once:
    /// the connection checks it whenever it re-arms its timer.
    let asksUpgrade: Bool
    private weak var connection: HTTPServerConnection?
    public let loop: EventLoop
    /// Request body pieces, borrowed for the call. Unset: the body is read and dropped.
    public var onBodyPiece: ((UnsafeRawBufferPointer) -> Void)?
    /// The request body is complete.
    public var onBodyEnd: (() -> Void)?
    /// The response can take more bytes again (after `isWritable` was false).
    public var onWritable: (() -> Void)?
    /// The connection closed (or the requester hung up) before the response ended. Runs once.
    public var onAbort: (((any Error)?) -> Void)?
    public internal(set) var bodyComplete = false
    public private(set) var state = ResponseState.notStarted
    /// The serialized response head, held back until the first body bytes (to go out with them
    /// in one system call), the end of the response, or the end of this loop pass, whichever
    /// comes first: a small response then costs the requester's socket one send, not two.
    private var heldHead: [UInt8]?

    init(head: HTTPRequestHead, connection: HTTPServerConnection) {
        self.head = head
        asksUpgrade = head.headers["Upgrade"] != nil
        self.connection = connection
        self.loop = connection.stream.loop
    }

    public var headWritten: Bool { state != .notStarted }
    /// True once the response is over, whether it ended or was aborted.
    public var ended: Bool { state == .ended || state == .aborted }
    /// The stream the request came on while the exchange is live, to look at (its TLS session,
    /// say); nil once it is over. Writing to it could overtake a held-back head: to write or
    /// close, use `streamAfterWritingHead()`.
    public var stream: (any ByteStream)? { ended ? nil : connection?.stream }

    /// Writes a held-back head, then returns the stream while the exchange is live, to be used
    /// directly (sendfile, or cutting a response short after an upstream failure): whatever the
    /// caller writes then follows the head. Nil once the exchange is over.
    public func streamAfterWritingHead() -> (any ByteStream)? {
        guard !ended, let connection else { return nil }
        writeHeldHead()
        return connection.stream
    }
    public var isWritable: Bool { !ended && connection?.stream.isWritable ?? false }
    public var remoteAddress: SocketAddress? { connection?.remoteAddress }

    public func pauseBody() { if !ended { connection?.pauseBody() } }
    public func resumeBody() { if !ended { connection?.resumeBody() } }

    /// Sends the head. Without Content-Length the body is chunked; `Connection: close` is added
    /// when the connection will not be kept. A no-op once the exchange is over.
    public func writeHead(_ response: HTTPResponseHead) {
        guard state == .notStarted else {
            precondition(ended, "response head written twice")
            return
        }
        guard let connection else { return abort(error: nil) }
        var response = response
        let code = response.status.code
        let bodyAllowed = head.method != "HEAD" && code >= 200 && code != 204 && code != 304
        var chunked = false
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
        state = .streaming(chunked: chunked, bodyAllowed: bodyAllowed)
        heldHead = response.serialized
        loop.runSoon { [weak self] in self?.writeHeldHead() }
    }

    private func writeHeldHead() {
        guard let head = heldHead else { return }
        heldHead = nil
        connection?.stream.write(head)
    }

    /// Writes body bytes; returns false if the response is over or the connection gone.
    @discardableResult
    public func writeBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard case .streaming(let chunked, let bodyAllowed) = state, let stream = connection?.stream else {
            precondition(ended, "body written before the head")
            return false
        }
        guard bodyAllowed, bytes.count > 0 else { return stream.isOpen }
        if !chunked, let head = heldHead {
            heldHead = nil
            return head.withUnsafeBytes { stream.write($0, bytes) }
        }
        writeHeldHead()
        guard chunked else { return stream.write(bytes) }
        return ChunkedEncoding.write(bytes, to: stream)
    }

    @discardableResult
    public func writeBody(_ bytes: some Collection<UInt8>) -> Bool {
        Array(bytes).withUnsafeBytes { writeBody($0) }
    }

    /// Ends the response; the connection moves to the next request or closes.
    public func end() {
        guard case .streaming(let chunked, _) = state else {
            precondition(ended, "end() before the head")
            return
        }
        writeHeldHead()
        if chunked { connection?.stream.write(ChunkedEncoding.lastChunk) }
        state = .ended
        dropCallbacks()
        connection?.exchangeDidEnd(self)
    }

    /// A whole small response.
    public func respond(_ status: HTTPStatus, headers: HTTPHeaders = HTTPHeaders(), body: String = "") {
        guard !ended else { return }
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
    /// Nil if the connection is already gone.
    public func upgrade(_ response: HTTPResponseHead) -> (any ByteStream)? {
        precondition(state == .notStarted || state == .aborted, "upgrade after a response head")
        guard state == .notStarted, let connection, connection.stream.isOpen else { return nil }
        state = .ended
        dropCallbacks()
        connection.stream.write(response.serialized)
        return connection.detach()
    }

    /// True for a request whose socket moved here from another loop (`move(to:then:)`).
    public internal(set) var wasMoved = false

    /// Serves this request on `target` instead: before any response, on a TCP or TLS stream with
    /// nothing queued to it, the stream moves there (`MigratableStream`) with the bytes read
    /// after the head, and `then` runs on `target` with it and this head, to be served afresh
    /// (`HTTPServer.adopt`). The connection here is done with it. False, changing nothing, if
    /// the request cannot move (a response begun, bytes queued): serve it here.
    public func move(to target: EventLoop, then: @escaping @Sendable (any MigratableStream, HTTPRequestHead) -> Void) -> Bool {
        guard state == .notStarted, let connection, let stream = connection.stream as? any MigratableStream, stream.isMigratable else { return false }
        let head = head
        guard stream.migrate(to: target, then: { then($0, head) }) else { return false }
        state = .ended
        dropCallbacks()
        connection.handOff()
        return true
    }

    /// The connection is gone (or refused the rest of the request): tell the owner once, and
    /// forget everything it gave us.
    func abort(error: (any Error)?) {
        guard !ended else { return }
        state = .aborted
        heldHead = nil
        let onAbort = self.onAbort
        dropCallbacks()
        onAbort?(error)
    }

    /// Closures often capture the upstream, which captures this exchange: dropping them when
    /// the response is over breaks that cycle (the rest of a request body is then dropped).
    private func dropCallbacks() {
        onBodyPiece = nil
        onBodyEnd = nil
        onWritable = nil
        onAbort = nil
    }
}
