import Reactor

public struct WebSocketOptions: Sendable {
    /// A message larger than this is refused with close code 1009.
    public var maxMessageSize = 64 << 20
    /// Split outgoing messages into frames of at most this payload (nil: never split).
    public var maxFrameSize: Int? = nil
    /// How long a close handshake may wait for the peer's Close before the stream is dropped.
    public var closeTimeout: Duration = .seconds(5)

    public init() {}
}

/// A WebSocket over any stream whose handshake is done (TCP, TLS, …), owned by the stream's loop.
/// Frames are parsed in place in the stream's read ring; message payload reaches the handler as
/// borrowed pieces.
public final class WebSocketConnection: StreamHandler {
    private enum State { case idle, open, closing, closed }

    public let stream: any ByteStream
    public let role: WebSocketRole
    public let options: WebSocketOptions
    public var loop: EventLoop { stream.loop }
    /// Monotonic nanoseconds when the last frame of any kind arrived.
    public private(set) var lastReceivedAt = MonotonicClock.now()
    private var parser: FrameParser
    private var writer: FrameWriter
    private var handler: (any WebSocketHandler)?
    private var state = State.idle
    private var readingPaused = false
    private var closeTimer: TimerID?
    /// Why we are closing (sent in our Close), reported to the handler at the end.
    private var closeError: (any Error)?

    public init(stream: any ByteStream, role: WebSocketRole, options: WebSocketOptions = WebSocketOptions()) {
        self.stream = stream
        self.role = role
        self.options = options
        parser = FrameParser(role: role, maxMessageSize: options.maxMessageSize)
        writer = FrameWriter(role: role)
    }

    /// Starts reading frames. A stream that carried the HTTP handshake is already started and is
    /// taken over with `replaceHandler`, keeping any frame bytes that followed the handshake.
    public func start(handler: any WebSocketHandler) {
        loop.assertInLoop()
        precondition(state == .idle, "WebSocketConnection started twice")
        self.handler = handler
        state = .open
        lastReceivedAt = MonotonicClock.now()
        if stream.isStarted { stream.replaceHandler(self) } else { stream.start(handler: self) }
    }

    public var isOpen: Bool { state == .open }
    public var isWritable: Bool { stream.isWritable }
    /// Bytes held under this WebSocket (its stream's buffers).
    public var bufferedBytes: Int { stream.bufferedBytes }

    // MARK: Sending

    /// Sends one message whose payload is `first` then `second`. False if closed.
    @discardableResult
    public func send(_ opcode: WebSocketOpcode, _ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) -> Bool {
        loop.assertInLoop()
        guard state == .open else { return false }
        let total = first.count + second.count
        guard let frameSize = options.maxFrameSize, total > frameSize, frameSize > 0 else {
            return writer.write(to: stream, opcode: opcode, fin: true, first, second)
        }
        // Fragmented: walk both pieces in frame-sized slices.
        var offset = 0
        var frameOpcode = opcode
        while offset < total {
            let end = min(total, offset + frameSize)
            let a = slice(first, offset, end)
            let b = slice(second, max(0, offset - first.count), max(0, end - first.count))
            guard writer.write(to: stream, opcode: frameOpcode, fin: end == total, a, b) else { return false }
            frameOpcode = .continuation
            offset = end
        }
        return true
    }

    private func slice(_ piece: UnsafeRawBufferPointer, _ from: Int, _ to: Int) -> UnsafeRawBufferPointer {
        let lower = min(max(0, from), piece.count), upper = min(max(0, to), piece.count)
        return lower < upper ? UnsafeRawBufferPointer(rebasing: piece[lower..<upper]) : UnsafeRawBufferPointer(start: nil, count: 0)
    }

    @discardableResult
    public func sendPing(_ payload: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) -> Bool {
        loop.assertInLoop()
        guard state == .open, payload.count <= 125 else { return false }
        return writer.write(to: stream, opcode: .ping, fin: true, payload, UnsafeRawBufferPointer(start: nil, count: 0))
    }

    // MARK: Closing

    /// Starts the close handshake: sends Close, waits (bounded) for the peer's, then closes.
    public func close(code: WebSocketCloseCode = .normalClosure, reason: String = "") {
        loop.assertInLoop()
        guard state == .open else { return }
        if code != .normalClosure && code != .goingAway { closeError = WebSocketError(code, reason) }
        sendClose(code, reason)
        state = .closing
        closeTimer = loop.scheduleTimer(after: options.closeTimeout) { [weak self] in self?.stream.close() }
    }

    /// Closes the stream now; the handler hears `error`.
    public func abort(error: any Error) {
        loop.assertInLoop()
        guard state != .closed else { return }
        closeError = error
        stream.close(error: error)
    }

    public func pauseReading() {
        loop.assertInLoop()
        readingPaused = true
        stream.pauseReading()
    }

    public func resumeReading() {
        loop.assertInLoop()
        readingPaused = false
        stream.resumeReading()
    }

    private func sendClose(_ code: WebSocketCloseCode, _ reason: String) {
        var payload = [UInt8(code.rawValue >> 8), UInt8(code.rawValue & 0xFF)]
        // At most 123 bytes of reason, cut at a character boundary so it stays valid UTF-8.
        var shortened = ""
        for character in reason {
            guard shortened.utf8.count + character.utf8.count <= 123 else { break }
            shortened.append(character)
        }
        payload += shortened.utf8
        _ = payload.withUnsafeBytes { writer.write(to: stream, opcode: .close, fin: true, $0, UnsafeRawBufferPointer(start: nil, count: 0)) }
    }

    /// A protocol violation by the peer: Close with its code, then drop the stream.
    private func fail(_ error: WebSocketError) {
        guard state == .open || state == .closing else { return }
        closeError = error
        if state == .open { sendClose(error.code, error.reason) }
        state = .closing
        stream.closeAfterFlush()
    }

    // MARK: StreamHandler

    public func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        guard state == .open || state == .closing else { return buffer.consume(buffer.readableBytes) }
        lastReceivedAt = MonotonicClock.now()
        do {
            try parser.parse(&buffer) { event in handle(event) }
        } catch {
            fail(error)
        }
    }

    /// Returns false to stop parsing (paused or closed).
    private func handle(_ event: FrameEvent) -> Bool {
        guard let handler, state == .open || state == .closing else { return false }
        switch event {
        case .messageBegin(let opcode):
            handler.webSocket(self, didBeginMessage: opcode)
        case .messagePiece(let piece):
            handler.webSocket(self, didReceiveMessagePiece: piece)
        case .messageEnd:
            handler.webSocketDidEndMessage(self)
        case .ping(let payload):
            if state == .open { payload.withUnsafeBytes { _ = writer.write(to: stream, opcode: .pong, fin: true, $0, UnsafeRawBufferPointer(start: nil, count: 0)) } }
        case .pong(let payload):
            payload.withUnsafeBytes { handler.webSocket(self, didReceivePong: $0) }
        case .close(let code, let reason):
            if state == .open {
                // Echo the peer's code, as RFC 6455 §5.5.1 suggests.
                sendClose(code == .noStatus ? .normalClosure : code, "")
                if ![WebSocketCloseCode.normalClosure, .goingAway, .noStatus].contains(code) { closeError = WebSocketError(code, reason) }
            }
            state = .closing
            stream.closeAfterFlush()
            return false
        }
        return state == .open && !readingPaused
    }

    public func streamDidReadEOF(_ stream: any ByteStream) {
        if state == .open { closeError = WebSocketError(.abnormalClosure, "connection closed without a close frame") }
        stream.close()
    }

    public func streamWritabilityDidChange(_ stream: any ByteStream, isWritable: Bool) {
        handler?.webSocketWritabilityDidChange(self, isWritable: isWritable)
    }

    public func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {
        guard state != .closed else { return }
        if state == .open && error == nil && closeError == nil {
            closeError = WebSocketError(.abnormalClosure, "connection closed without a close frame")
        }
        state = .closed
        if let closeTimer { loop.cancelTimer(closeTimer) }
        let handler = self.handler
        self.handler = nil
        handler?.webSocketDidClose(self, error: closeError ?? error)
    }
}
