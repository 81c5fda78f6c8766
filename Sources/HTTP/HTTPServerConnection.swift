import Reactor

/// Serves HTTP/1.1 on one stream (TCP or TLS): parses heads within limits, streams request
/// bodies, runs one exchange at a time (pipelined requests wait in the read buffer, answered in
/// order), keeps the connection alive when both sides allow it, and ends it when a phase takes
/// longer than its timeout (`HTTPTimeouts`).
public final class HTTPServerConnection: StreamHandler {
    public typealias Responder = (HTTPServerExchange) -> Void

    /// What the connection is doing; each phase has its own deadline.
    private enum Phase {
        /// Waiting for a request head: from the start (or a later request's first byte).
        case awaitingHead(since: UInt64, sawBytes: Bool)
        /// Kept alive between requests, nothing received yet.
        case keptAlive(since: UInt64)
        /// Serving `exchange` (its body, the wait for its answer, the response).
        case serving(HTTPServerExchange, since: UInt64)
        /// Answered with a final refusal or timeout: flushing, then closed.
        case closing(since: UInt64)
        /// Handed over by an upgrade, or closed: no HTTP any more.
        case done
    }

    let stream: any ByteStream
    public let remoteAddress: SocketAddress?
    private let limits: HTTPLimits
    private let timeouts: HTTPTimeouts
    private let respond: Responder
    private var parser: HTTPHeadParser
    private var phase: Phase
    private var body: HTTPBodyDecoder?
    private var bodyPaused = false
    /// Last time the request body moved (or we resumed it), for the body idle timeout.
    private var bodyActivityAt: UInt64 = 0
    /// Since when the peer has not taken our response bytes (write queue above its watermark).
    private var unwritableSince: UInt64?
    private var timer: TimerID?
    /// When `timer` fires.
    private var timerDeadline: UInt64 = 0
    var keepAlive = true
    /// False once `stopKeepingAlive()`: no request after the current one.
    private var keepAliveAllowed = true
    /// Runs once when an upgrade hands the stream over: from then on nothing here is needed,
    /// and an owner that lets go of this handler saves its memory for the stream's whole life.
    var onUpgraded: (() -> Void)?

    public init(stream: any ByteStream, remoteAddress: SocketAddress? = nil, limits: HTTPLimits = HTTPLimits(),
                timeouts: HTTPTimeouts = HTTPTimeouts(), respond: @escaping Responder) {
        self.stream = stream
        self.remoteAddress = remoteAddress ?? (stream as? Connection)?.remoteAddress
        self.limits = limits
        self.timeouts = timeouts
        self.respond = respond
        parser = HTTPHeadParser(limits: limits)
        phase = .awaitingHead(since: MonotonicClock.now(), sawBytes: false)
    }

    /// Starts serving (the stream must not be started yet). The head timeout runs from now, so
    /// it covers a TLS handshake under the stream too.
    public func start() {
        stream.start(handler: self)
        enter(.awaitingHead(since: MonotonicClock.now(), sawBytes: false))
    }

    public func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        while stream.isOpen {
            switch phase {
            case .done, .closing:
                return buffer.consume(buffer.readableBytes)
            case .serving(let exchange, _):
                guard readBody(exchange, &buffer) else { return }
                // Body done; the next request waits until this response ends.
                guard exchange.ended else { return }
                body = nil
                if buffer.isEmpty {
                    enter(.keptAlive(since: MonotonicClock.now()))
                } else {
                    // Not `enter`: the head usually parses at once; the timer waits until it does not.
                    phase = .awaitingHead(since: MonotonicClock.now(), sawBytes: true)
                }
            case .keptAlive:
                guard !buffer.isEmpty else { return }
                // As above: no timer work for a head that arrived whole.
                phase = .awaitingHead(since: MonotonicClock.now(), sawBytes: true)
            case .awaitingHead(let since, _):
                guard !buffer.isEmpty else { return }
                phase = .awaitingHead(since: since, sawBytes: true)
                let head: HTTPRequestHead
                do {
                    guard let parsed = try parser.parseRequest(&buffer) else { return armTimer() }
                    head = parsed
                } catch {
                    return refuse(error)
                }
                begin(head)
            }
        }
    }

    private func begin(_ head: HTTPRequestHead, moved: Bool = false) {
        let framing: HTTPBodyFraming
        do { framing = try HTTPBodyFraming.of(request: head) } catch { return refuse(error) }
        // Both Transfer-Encoding and Content-Length: read as chunked, then close, since a
        // peer on the way may have framed it by the length (RFC 9112 §6.3).
        keepAlive = keepAliveAllowed && head.keepAlive && !(framing == .chunked && head.headers["Content-Length"] != nil)
        let exchange = HTTPServerExchange(head: head, connection: self)
        exchange.wasMoved = moved
        body = HTTPBodyDecoder(framing: framing, limits: limits)
        if framing == .none { exchange.bodyComplete = true }
        bodyActivityAt = MonotonicClock.now()
        enter(.serving(exchange, since: bodyActivityAt))
        // An HTTP/1.0 client does not know 100 (RFC 9110 §10.1.1); a request that moved here
        // from another loop had its 100 there.
        if !moved && framing != .none && head.version == .http11 && head.headers["Expect"]?.lowercased() == "100-continue" {
            stream.write(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
        }
        respond(exchange)
    }

    /// Feeds body bytes to the exchange; true once the body is complete.
    private func readBody(_ exchange: HTTPServerExchange, _ buffer: inout RingBuffer) -> Bool {
        if exchange.bodyComplete { return true }
        guard !bodyPaused, var decoder = body else { return false }
        if !buffer.isEmpty { bodyActivityAt = MonotonicClock.now() }
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

    /// A malformed or oversized request: abandon the exchange it belongs to (its owner hears
    /// `onAbort`), answer the error's status if no response started, and close.
    private func refuse(_ error: HTTPParseError) {
        keepAlive = false
        if case .serving(let exchange, _) = phase {
            let responseStarted = exchange.headWritten
            exchange.abort(error: error)
            if responseStarted { return stream.close(error: error) }
        }
        finish(error.status, body: error.description + "\n")
    }

    /// Writes a final small response and closes once it is flushed (bounded by `bodyIdle`).
    private func finish(_ status: HTTPStatus, body text: String) {
        var response = HTTPResponseHead(status: status)
        response.headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        response.headers.add(name: "Content-Length", value: String(text.utf8.count))
        response.headers.add(name: "Connection", value: "close")
        stream.write(response.serialized + Array(text.utf8))
        closeAfterFlush()
    }

    private func closeAfterFlush() {
        enter(.closing(since: MonotonicClock.now()))
        stream.closeAfterFlush()
    }

    func exchangeDidEnd(_ ended: HTTPServerExchange) {
        guard case .serving(let exchange, _) = phase, exchange === ended else { return }
        guard keepAlive else { return closeAfterFlush() }
        if ended.bodyComplete {
            body = nil
            enter(.keptAlive(since: MonotonicClock.now()))
            // A pipelined request may already be buffered.
            stream.loop.runSoon { [weak self] in
                guard let self, case .keptAlive = phase, stream.isOpen else { return }
                stream.resumeReading()
            }
        }
        // Otherwise the rest of the request body is read and dropped, then the next request starts.
        if bodyPaused { resumeBody() }
    }

    func pauseBody() {
        bodyPaused = true
        stream.pauseReading()
    }

    func resumeBody() {
        bodyPaused = false
        bodyActivityAt = MonotonicClock.now()  // the wait was ours, not the peer's
        stream.resumeReading()
    }

    /// True while the connection still speaks HTTP (not upgraded, not closed): a request may be
    /// in progress or a response still flushing.
    public var isServingHTTP: Bool {
        if case .done = phase { return false }
        return true
    }

    /// No more keep-alive (a draining server): an idle kept-alive connection closes now, one
    /// serving a request closes once its response is flushed.
    public func stopKeepingAlive() {
        keepAliveAllowed = false
        keepAlive = false
        if case .keptAlive = phase { close() }
    }

    private func close() {
        enter(.done)
        stream.close()
    }

    /// Starts on a socket that moved here from another loop with `head` already parsed there;
    /// its body (if any) follows from the socket's unread bytes.
    func start(resuming head: HTTPRequestHead) {
        // The body bytes that came along must wait until the exchange exists.
        stream.pauseReading()
        stream.start(handler: self)
        begin(head, moved: true)
        if !bodyPaused { stream.resumeReading() }
    }

    /// The socket moved to another loop (`HTTPServerExchange.move`): stop serving it here.
    func handOff() {
        body = nil
        enter(.done)
    }

    func detach() -> any ByteStream {
        enter(.done)
        let onUpgraded = self.onUpgraded
        self.onUpgraded = nil
        onUpgraded?()
        return stream
    }

    public func streamDidReadEOF(_ stream: any ByteStream) {
        // The requester hung up (or half-closed, which Go's server treats the same): whatever
        // it was waiting for is abandoned now, not when the upstream answers.
        if case .serving(let exchange, _) = phase, !exchange.ended {
            enter(.done)
            exchange.abort(error: HTTPClientError.closedBeforeResponse)
        }
        stream.close()
    }

    public func streamWritabilityDidChange(_ stream: any ByteStream, isWritable: Bool) {
        unwritableSince = isWritable ? nil : MonotonicClock.now()
        guard case .serving(let exchange, _) = phase else { return }
        armTimer()
        if isWritable { exchange.onWritable?() }
    }

    public func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {
        let previous = phase
        enter(.done)
        if case .serving(let exchange, _) = previous { exchange.abort(error: error) }
    }

    // MARK: Timeouts

    private func enter(_ next: Phase) {
        phase = next
        armTimer()
    }

    /// The current phase's deadline; nil when there is none (`.done`).
    private func phaseDeadline() -> UInt64? {
        switch phase {
        case .done: return nil
        case .awaitingHead(let since, _): return since &+ timeouts.head.nanosecondsClamped
        case .keptAlive(let since): return since &+ timeouts.keepAliveIdle.nanosecondsClamped
        case .closing(let since): return since &+ timeouts.bodyIdle.nanosecondsClamped
        case .serving(let exchange, let since):
            let idle = timeouts.bodyIdle.nanosecondsClamped
            var next = MonotonicClock.now() &+ idle
            if !exchange.headWritten && exchange.asksUpgrade {
                next = min(next, since &+ timeouts.head.nanosecondsClamped)
            }
            if !exchange.bodyComplete && !bodyPaused { next = min(next, bodyActivityAt &+ idle) }
            if let unwritableSince { next = min(next, unwritableSince &+ idle) }
            return next
        }
    }

    /// One timer per connection, due no later than the current phase's deadline. A timer due
    /// earlier is kept: when it fires it finds the real deadline and re-arms, so the phases of a
    /// kept-alive request (each deadline later than the last) cost no timer work. Body and send
    /// stalls are checked the same way, so a moving body costs none per read either.
    private func armTimer() {
        guard let deadline = phaseDeadline() else {
            if let timer { stream.loop.cancelTimer(timer) }
            timer = nil
            return
        }
        if timer != nil && timerDeadline <= deadline { return }
        if let timer { stream.loop.cancelTimer(timer) }
        timerDeadline = deadline
        timer = stream.loop.scheduleTimer(deadline: deadline) { [weak self] in
            self?.timer = nil
            self?.deadlineReached()
        }
    }

    private func deadlineReached() {
        guard stream.isOpen, let deadline = phaseDeadline() else { return }
        let now = MonotonicClock.now()
        // Armed for an earlier phase; this one ends later.
        if now < deadline { return armTimer() }
        switch phase {
        case .done:
            return
        case .awaitingHead(_, let sawBytes):
            keepAlive = false
            if sawBytes { finish(HTTPStatus(408), body: "request head timeout\n") } else { close(HTTPTimeoutError.head) }
        case .keptAlive:
            close(HTTPTimeoutError.keepAliveIdle)
        case .closing:
            close(HTTPTimeoutError.bodyIdle)
        case .serving(let exchange, let since):
            let idle = timeouts.bodyIdle.nanosecondsClamped
            if !exchange.headWritten && exchange.asksUpgrade && now &- since >= timeouts.head.nanosecondsClamped {
                keepAlive = false
                exchange.abort(error: HTTPTimeoutError.head)
                return finish(HTTPStatus(408), body: "request head timeout\n")
            }
            let bodyStalled = !exchange.bodyComplete && !bodyPaused && now &- bodyActivityAt >= idle
            let sendStalled = unwritableSince.map { now &- $0 >= idle } ?? false
            guard bodyStalled || sendStalled else { return armTimer() }
            exchange.abort(error: HTTPTimeoutError.bodyIdle)
            close(HTTPTimeoutError.bodyIdle)
        }
    }

    private func close(_ error: HTTPTimeoutError) {
        enter(.done)
        stream.close(error: error)
    }
}
