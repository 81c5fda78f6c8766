import Reactor

/// A connection multiplexed over a session, usable as any other `ByteStream` (so HTTP or TLS
/// stack on it). Inbound Data goes one of two ways:
/// - **piped** (`pipe(to:)`, what a dialled Connect uses): each Data piece is written straight
///   from the WebSocket's read buffer to the target stream — no copy of ours on the way;
/// - **handled** (`start(handler:)`): pieces are appended to this connection's read ring, which
///   the handler parses in place like a socket's.
/// Flow control (Pause/Resume, both directions) lives in FlowControl.swift.
///
/// Loop-confined: every member is used on the session's loop.
public final class TunnelConnection: ByteStream, SpareBufferHolder {
    enum Consumer {
        /// Not started yet: inbound bytes wait in `inbound`.
        case none
        case handler(any StreamHandler)
        case pipe(any ByteStream)
    }

    public let id: Int64
    public let target: ConnectTarget
    let session: TunnelSession
    var consumer = Consumer.none
    /// Inbound bytes no consumer has taken yet.
    var inbound: RingBuffer
    /// Outbound bytes written while the remote had us paused.
    var pendingOutbound: RingBuffer
    public internal(set) var isOpen = true
    var readingPaused = false
    var inboundEOF = false
    var closeAfterFlushRequested = false
    /// Whether we told the remote Pause (and not yet Resume).
    var inboundPause = InboundPause()
    /// The remote told us Pause and has not yet told us Resume.
    var remotePaused = false
    /// Last writability reported to the handler.
    var reportedWritable = true
    public var isAwaitingSpareBufferSweep = false
    public internal(set) var statistics = Statistics()
    let createdAt = MonotonicClock.now()
    /// Nanoseconds since the connection was registered.
    var age: UInt64 { MonotonicClock.now() &- createdAt }

    public struct Statistics: Sendable {
        public var bytesReceived = 0
        public var bytesSent = 0
        public var pausesSent = 0
        public var pausesReceived = 0
        /// Most inbound bytes held at once (unconsumed by the handler, or piped but not yet taken).
        public var maxBufferedInbound = 0
    }

    init(id: Int64, target: ConnectTarget, session: TunnelSession) {
        self.id = id
        self.target = target
        self.session = session
        let options = session.options
        inbound = RingBuffer(minimumCapacity: 4096, maximumCapacity: options.maxBufferedInbound)
        pendingOutbound = RingBuffer(minimumCapacity: 4096, maximumCapacity: options.maxBufferedInbound)
    }

    public var loop: EventLoop { session.loop }
    /// Open, its session too, the remote has not ended it and no close is pending: fit to carry
    /// another request (what a pool of kept-alive connections checks before reusing one).
    public var canCarryMore: Bool { isOpen && !inboundEOF && !closeAfterFlushRequested && session.isOpen }
    public var isStarted: Bool { if case .none = consumer { false } else { true } }
    public var bufferedBytes: Int { inbound.capacity + pendingOutbound.capacity }

    // MARK: Consumers

    public func start(handler: any StreamHandler) {
        loop.assertInLoop()
        guard case .none = consumer else { preconditionFailure("TunnelConnection started twice") }
        consumer = .handler(handler)
        if isOpen { offerInbound() }
    }

    public func replaceHandler(_ handler: any StreamHandler) {
        loop.assertInLoop()
        guard case .handler = consumer else { preconditionFailure("replaceHandler before start") }
        consumer = .handler(handler)
        // Checked later: the ring may be lent to the old handler's call that is handing us over.
        loop.runSoon { [self] in if isOpen && !inbound.isEmpty { offerInbound() } }
    }

    /// Splices this connection with `stream` (not yet started) both ways, zero-copy inbound.
    /// Both end together; errors travel to the remote as Error messages.
    public func pipe(to stream: any ByteStream) {
        loop.assertInLoop()
        guard case .none = consumer else { preconditionFailure("TunnelConnection started twice") }
        guard isOpen else { return stream.close() }
        consumer = .pipe(stream)
        stream.start(handler: PipeEnd(connection: self))
        if !inbound.isEmpty {
            let written = inbound.withReadableRegions { stream.write($0, $1) }
            inbound.discardAll()
            if !written { return }
        }
        if inboundEOF { return stream.closeAfterFlush() }
        if remotePaused || !session.transportIsWritable { stream.pauseReading() }
        updateInboundPressure()
    }

    // MARK: Inbound (from the session)

    /// A piece of a Data message for this connection, borrowed from the WebSocket's buffer.
    func receive(_ piece: UnsafeRawBufferPointer) {
        guard isOpen, !inboundEOF else { return }
        statistics.bytesReceived += piece.count
        if case .pipe(let stream) = consumer, inbound.isEmpty {
            stream.write(piece)  // the socket takes it, or its write queue copies what it cannot
        } else if case .handler(let handler) = consumer, inbound.isEmpty, !readingPaused, piece.count > 0 {
            // The handler parses the piece where it lies in the WebSocket's buffer; only what it
            // leaves unconsumed is copied into `inbound` (was: every byte, then offered).
            var lent = RingBuffer(borrowing: UnsafeMutableRawBufferPointer(mutating: piece), maximumCapacity: inbound.maximumCapacity)
            handler.streamDidRead(self, &lent)
            guard isOpen else { return }
            let kept = lent.withReadableRegions { inbound.append($0) && inbound.append($1) }
            if !kept { return fail(TunnelError.inboundBufferExceeded(limit: inbound.maximumCapacity), notifyRemote: true) }
            statistics.maxBufferedInbound = max(statistics.maxBufferedInbound, inbound.readableBytes)
            updateInboundPressure()
            return
        } else if !inbound.append(piece) {
            return fail(TunnelError.inboundBufferExceeded(limit: inbound.maximumCapacity), notifyRemote: true)
        }
        statistics.maxBufferedInbound = max(statistics.maxBufferedInbound, inbound.readableBytes)
        updateInboundPressure()
        if case .handler = consumer, !readingPaused { offerInbound() }
    }

    /// The remote ended the connection: "EOF" is a clean end, anything else an error.
    func receiveRemoteClose(_ text: String) {
        guard isOpen else { return }
        session.forget(self)
        if text != "EOF" { return finish(error: TunnelError.remote(text), notifyRemote: false) }
        inboundEOF = true
        switch consumer {
        case .pipe(let stream): stream.closeAfterFlush()
        case .handler: if !readingPaused { offerInbound() }
        case .none: break  // the consumer hears EOF once it starts
        }
    }

    /// Hands buffered bytes (then EOF) to the handler.
    func offerInbound() {
        guard isOpen, case .handler(let handler) = consumer else { return }
        if !inbound.isEmpty {
            handler.streamDidRead(self, &inbound)
            guard isOpen else { return }
            // A burst grew the ring past one message's worth: give it back once drained
            // (rancher/remotedialer#41), at the loop's next sweep so the next burst reuses it.
            if inbound.isEmpty && inbound.capacity > session.options.maxDataPayload { loop.releaseWhenIdle(self) }
            updateInboundPressure()
        }
        if inboundEOF && inbound.isEmpty && !readingPaused {
            handler.streamDidReadEOF(self)
        }
    }

    public func releaseSpareBuffers() {
        guard isOpen, inbound.isEmpty, inbound.capacity > session.options.maxDataPayload else { return }
        inbound.shrink(releaseWhenEmpty: true)
    }

    // MARK: ByteStream writing

    public var isWritable: Bool { isOpen && !remotePaused && pendingOutbound.isEmpty && session.transportIsWritable }

    @discardableResult
    public func write(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> Bool {
        loop.assertInLoop()
        guard isOpen, !closeAfterFlushRequested else { return false }
        if remotePaused || !pendingOutbound.isEmpty {
            guard pendingOutbound.append(first), pendingOutbound.append(second) else {
                fail(TunnelError.inboundBufferExceeded(limit: pendingOutbound.maximumCapacity), notifyRemote: true)
                return false
            }
            return true
        }
        sendData(first)
        sendData(second)
        return true
    }

    func sendData(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        statistics.bytesSent += bytes.count
        session.sendData(connID: id, bytes)
    }

    public func pauseReading() {
        loop.assertInLoop()
        readingPaused = true
    }

    public func resumeReading() {
        loop.assertInLoop()
        guard readingPaused else { return }
        readingPaused = false
        loop.runSoon { [self] in
            guard isOpen && !readingPaused else { return }
            // Nothing buffered: still the moment to send the Resume our pause may have caused.
            if !inbound.isEmpty || inboundEOF { offerInbound() } else { updateInboundPressure() }
        }
    }

    // MARK: Closing

    /// There is no half-close on the wire: ends the connection once pending bytes are sent.
    public func shutdownWrite() { closeAfterFlush() }

    public func closeAfterFlush() {
        loop.assertInLoop()
        guard isOpen else { return }
        if pendingOutbound.isEmpty { finish(error: nil, notifyRemote: true) } else { closeAfterFlushRequested = true }
    }

    public func close() {
        loop.assertInLoop()
        finish(error: nil, notifyRemote: true)
    }

    public func close(error: any Error) {
        loop.assertInLoop()
        finish(error: error, notifyRemote: true)
    }

    func fail(_ error: any Error, notifyRemote: Bool) {
        finish(error: error, notifyRemote: notifyRemote)
    }

    /// Ends the connection once: tells the remote (Error "EOF" or the error's text) unless it
    /// ended it, leaves the session's table, and tells the consumer.
    func finish(error: (any Error)?, notifyRemote: Bool) {
        guard isOpen else { return }
        isOpen = false
        session.forget(self)
        if notifyRemote { session.sendError(connID: id, error.map { "\($0)" } ?? "EOF") }
        pendingOutbound.discardAll()
        // The inbound ring may be borrowed by a handler call on the stack: free it later.
        loop.runSoon { [self] in inbound.discardAll() }
        let consumer = self.consumer
        self.consumer = .none
        switch consumer {
        case .none: break
        case .pipe(let stream):
            if let error { stream.close(error: error) } else { stream.closeAfterFlush() }
        case .handler(let handler):
            // Never re-entrantly from inside a call the handler made on us.
            loop.runSoon { [self] in handler.streamDidClose(self, error: error) }
        }
    }

    /// The session ended under this connection (no message can be sent any more).
    func sessionDidEnd() {
        finish(error: TunnelError.tunnelDisconnect, notifyRemote: false)
    }
}

/// The target side of a piped connection: its bytes become Data messages, its end ends the
/// tunnelled connection.
final class PipeEnd: StreamHandler {
    let connection: TunnelConnection

    init(connection: TunnelConnection) { self.connection = connection }

    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        guard connection.isOpen else { return buffer.consume(buffer.readableBytes) }
        buffer.withReadableRegions { first, second in
            connection.sendData(first)
            connection.sendData(second)
        }
        buffer.consume(buffer.readableBytes)
        if !connection.session.transportIsWritable || connection.remotePaused { stream.pauseReading() }
    }

    func streamDidReadEOF(_ stream: any ByteStream) {
        connection.closeAfterFlush()
    }

    func streamWritabilityDidChange(_ stream: any ByteStream, isWritable: Bool) {
        connection.updateInboundPressure()
    }

    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {
        connection.finish(error: error, notifyRemote: true)
    }
}
