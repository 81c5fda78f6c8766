import Reactor

/// TLS over any other `ByteStream` (a TCP connection, a tunnelled connection, …), itself a
/// `ByteStream`: plaintext lands in its own read ring for the handler; writes are encrypted in
/// records of up to 16 KiB. Back-pressure passes through: a paused reader pauses the inner
/// stream (no unbounded decryption), and writability is the inner stream's.
public final class TLSStream: ByteStream, StreamHandler {
    /// Plaintext per TLS record at most; writes are gathered into records this size.
    static let recordSize = 16 << 10

    public let inner: any ByteStream
    public let engine: TLSEngine
    private var handler: (any StreamHandler)?
    private var plaintext: RingBuffer
    /// Small pieces gathered into one record.
    private var recordScratch = [UInt8](repeating: 0, count: TLSStream.recordSize)
    /// Ciphertext on its way from the engine to the inner stream.
    private var cipherScratch = [UInt8](repeating: 0, count: 64 << 10)
    private var readingPaused = false
    private var state = State.idle
    /// Plaintext written before the handshake finished.
    private var early: RingBuffer
    private var closeAfterFlushRequested = false
    private var peerClosed = false

    private enum State { case idle, handshaking, open, closed }

    public init(wrapping inner: any ByteStream, context: TLSContext, role: TLSRole, serverName: String? = nil,
                maxBufferedPlaintext: Int = 256 << 10) throws(TLSError) {
        self.inner = inner
        engine = try TLSEngine(context: context, role: role, serverName: serverName)
        plaintext = RingBuffer(minimumCapacity: 4096, maximumCapacity: maxBufferedPlaintext)
        early = RingBuffer(minimumCapacity: 1024, maximumCapacity: 4 << 20)
    }

    public var loop: EventLoop { inner.loop }
    public var isOpen: Bool { state == .handshaking || state == .open }
    public var isStarted: Bool { state != .idle }
    /// False until the handshake is done (writes before it are held, bounded), then the inner stream's.
    public var isWritable: Bool { state == .open && inner.isWritable }
    public var negotiatedALPN: String? { engine.negotiatedALPN }

    /// Starts the handshake. An inner stream that is already started (it carried something
    /// before, e.g. STARTTLS-style upgrades) is taken over with `replaceHandler`.
    public func start(handler: any StreamHandler) {
        loop.assertInLoop()
        precondition(state == .idle, "TLSStream started twice")
        self.handler = handler
        state = .handshaking
        if inner.isStarted { inner.replaceHandler(self) } else { inner.start(handler: self) }
        advanceHandshake()
    }

    public func replaceHandler(_ handler: any StreamHandler) {
        loop.assertInLoop()
        self.handler = handler
        // Checked later: the ring may be lent to the old handler's call that is handing us over.
        loop.runSoon { [self] in if !plaintext.isEmpty { deliver() } }
    }

    // MARK: Reading

    public func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        buffer.withReadableRegions { first, second in
            engine.feed(first)
            engine.feed(second)
        }
        buffer.consume(buffer.readableBytes)
        if state == .handshaking { advanceHandshake() }
        if state == .open { decrypt() }
    }

    private func advanceHandshake() {
        switch engine.handshake() {
        case .done:
            state = .open
            flushCiphertext()
            if !early.isEmpty {
                let pending = early.bytes()
                early.discardAll()
                _ = pending.withUnsafeBytes { encrypt($0) }
            }
            if inner.isWritable { handler?.streamWritabilityDidChange(self, isWritable: true) }
            decrypt()
        case .wantRead:
            flushCiphertext()
        case .closed:
            fail(TLSError("peer closed the connection during the handshake"))
        case .failed(let error):
            flushCiphertext()  // the alert, if any
            fail(error)
        }
    }

    /// Decrypts what the engine holds into the plaintext ring and hands it over, for as long as
    /// the handler keeps making room.
    private func decrypt() {
        while state == .open && !readingPaused {
            let ringFull = fillPlaintext()
            let before = plaintext.readableBytes
            deliver()
            guard ringFull && plaintext.readableBytes < before else { break }
        }
        flushCiphertext()  // reads can produce protocol replies (key updates, alerts)
    }

    /// Decrypts until the engine needs more ciphertext or the ring is full (returns true then).
    private func fillPlaintext() -> Bool {
        while !peerClosed {
            _ = plaintext.reserve(Self.recordSize)
            guard plaintext.writableBytes > 0 else { return true }
            var outcome = TLSEngine.Status.done
            let got = plaintext.withWritableRegions { first, _ in
                let (status, count) = engine.read(into: first)
                outcome = status
                return count
            }
            if got > 0 { continue }
            switch outcome {
            case .closed: peerClosed = true
            case .failed(let error): fail(error)
            case .done, .wantRead: break
            }
            return false
        }
        return false
    }

    private func deliver() {
        guard state == .open, let handler else { return }
        if !plaintext.isEmpty && !readingPaused {
            handler.streamDidRead(self, &plaintext)
            // A full ring the handler did not drain: stop reading the inner stream until resumed.
            if plaintext.remainingCapacity == 0 { inner.pauseReading() }
        }
        if peerClosed && plaintext.isEmpty && state == .open && !readingPaused {
            handler.streamDidReadEOF(self)
        }
    }

    public func streamDidReadEOF(_ stream: any ByteStream) {
        // Without close_notify: treated as EOF (many peers skip it); during a handshake, an error.
        if state == .handshaking { return fail(TLSError("connection closed during the TLS handshake")) }
        peerClosed = true
        deliver()
    }

    public func pauseReading() {
        loop.assertInLoop()
        readingPaused = true
        inner.pauseReading()
    }

    public func resumeReading() {
        loop.assertInLoop()
        readingPaused = false
        inner.resumeReading()
        loop.runSoon { [self] in if !readingPaused { decrypt() } }
    }

    // MARK: Writing

    @discardableResult
    public func write(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> Bool {
        loop.assertInLoop()
        guard isOpen, !closeAfterFlushRequested else { return false }
        if state == .handshaking {
            guard early.append(first), early.append(second) else { fail(TLSError("too much data before the handshake")); return false }
            return true
        }
        // Gather small pieces into one record rather than one record per piece.
        if first.count + second.count <= Self.recordSize {
            return recordScratch.withUnsafeMutableBytes { buffer in
                if first.count > 0 { buffer.baseAddress!.copyMemory(from: first.baseAddress!, byteCount: first.count) }
                if second.count > 0 { (buffer.baseAddress! + first.count).copyMemory(from: second.baseAddress!, byteCount: second.count) }
                return encrypt(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[..<(first.count + second.count)]))
            }
        }
        return encrypt(first) && encrypt(second)
    }

    @discardableResult
    private func encrypt(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count > 0 else { return true }
        if case .failed(let error) = engine.write(bytes) {
            fail(error)
            return false
        }
        return flushCiphertext()
    }

    /// Moves the engine's ciphertext to the inner stream.
    @discardableResult
    private func flushCiphertext() -> Bool {
        var ok = true
        while engine.pendingCiphertext > 0 {
            let count = cipherScratch.withUnsafeMutableBytes { engine.takeCiphertext(into: $0) }
            guard count > 0 else { break }
            ok = cipherScratch.withUnsafeBytes { inner.write(UnsafeRawBufferPointer(rebasing: $0[..<count])) } && ok
        }
        return ok
    }

    public func streamWritabilityDidChange(_ stream: any ByteStream, isWritable: Bool) {
        handler?.streamWritabilityDidChange(self, isWritable: isWritable)
    }

    // MARK: Closing

    public func shutdownWrite() { closeAfterFlush() }

    /// Sends close_notify after everything written, then closes the inner stream once flushed.
    public func closeAfterFlush() {
        loop.assertInLoop()
        guard isOpen else { return }
        if state == .open {
            engine.shutdown()
            flushCiphertext()
        }
        closeAfterFlushRequested = true
        inner.closeAfterFlush()
    }

    public func close() {
        loop.assertInLoop()
        guard isOpen else { return }
        if state == .open {
            engine.shutdown()
            flushCiphertext()
            inner.closeAfterFlush()
        } else {
            inner.close()
        }
    }

    public func close(error: any Error) {
        loop.assertInLoop()
        fail(error)
    }

    private var closeError: (any Error)?

    private func fail(_ error: any Error) {
        guard isOpen else { return }
        closeError = error
        inner.close(error: error)
    }

    public func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {
        guard state != .closed else { return }
        state = .closed
        let handler = self.handler
        self.handler = nil
        // The plaintext ring may be lent to a handler call on the stack: free it later.
        loop.runSoon { [self] in
            plaintext.discardAll()
            handler?.streamDidClose(self, error: closeError ?? error)
        }
    }
}
