import Reactor

/// TLS over any other `ByteStream` (a TCP connection, a tunnelled connection, another TLS
/// stream, …), itself a `ByteStream`: plaintext lands in its own read ring for the handler.
///
/// Back-pressure passes through: a paused reader pauses the inner stream and decryption, and the
/// plaintext ring is bounded (`maxBufferedPlaintext`); writability is the inner stream's.
/// Small writes of one loop pass are gathered into records of up to 16 KiB, sealed when full or
/// when the pass ends (`coalescedWriteLimit`); a larger write is sealed at once, with what was
/// gathered before it. `shutdownWrite` sends close_notify and half-closes the inner stream;
/// the peer's close_notify, or the inner stream's EOF once everything received is decrypted,
/// is this stream's EOF.
public final class TLSStream: ByteStream, StreamHandler {
    /// Plaintext per TLS record at most.
    static let recordSize = 16 << 10

    public let inner: any ByteStream
    public let engine: TLSEngine
    private var handler: (any StreamHandler)?
    private var state = State.idle
    private var closeError: (any Error)?

    private var plaintext: RingBuffer
    private var readingPaused = false
    /// The inner stream ended (EOF): once the engine has nothing left to decrypt, so do we.
    private var innerEOF = false
    /// No more plaintext will come: close_notify, or the inner EOF with everything decrypted.
    private var inputEnded = false
    private var eofDelivered = false

    /// Writes of at most this many plaintext bytes wait until the record they fill is full or
    /// the loop pass ends, so one record and one write to the inner stream carry them all; a
    /// larger write goes out at once, with what waited. On by default: a record per small write
    /// costs 22–29 bytes of overhead, a seal and an inner write each.
    public var coalescedWriteLimit = TLSStream.recordSize
    /// Plaintext gathered into the next record.
    private var record: UnsafeMutableRawBufferPointer
    private var recordCount = 0
    /// The gathered plaintext and sealed records go to the inner stream when this pass ends.
    private var gatheredSendScheduled = false
    /// Records sealed and not yet handed to the inner stream, so they reach it in one write (a
    /// 64 KiB write is four records: one system call, not four).
    private var sealed: UnsafeMutableRawBufferPointer
    private var sealedCount = 0
    /// Four full records with their overhead (header, tag, content type: 22–29 bytes).
    static let sealedCapacity = 4 * (recordSize + 64)
    /// Plaintext written before the handshake finished.
    private var early: RingBuffer
    /// close_notify is sent: nothing more may be written.
    private var writeShutDown = false
    /// A close asked for during the handshake, done once it completes.
    private var closeAfterHandshake: CloseRequest?

    private enum State { case idle, handshaking, open, closing, closed }
    private enum CloseRequest { case shutdownWrite, closeAfterFlush }

    /// `inner` may be not yet started (it is started with this stream as its handler) or already
    /// started by a layer that hands it over (e.g. an HTTP server after a STARTTLS-style
    /// exchange): `start(handler:)` then takes it over with `inner.replaceHandler(self)`, and
    /// bytes the inner stream already buffered feed the handshake. Throws for what cannot work
    /// at all, e.g. a client with neither a server name nor `insecureSkipVerify`.
    public init(wrapping inner: any ByteStream, context: TLSContext, role: TLSRole, serverName: String? = nil,
                maxBufferedPlaintext: Int = 256 << 10) throws(TLSError) {
        self.inner = inner
        engine = try TLSEngine(context: context, role: role, serverName: serverName, path: .direct)
        plaintext = RingBuffer(minimumCapacity: 4096, maximumCapacity: max(maxBufferedPlaintext, Self.recordSize))
        early = RingBuffer(minimumCapacity: 1024, maximumCapacity: 4 << 20)
        record = .allocate(byteCount: Self.recordSize, alignment: 16)
        sealed = .allocate(byteCount: Self.sealedCapacity, alignment: 16)
        engine.ciphertextSink = { [weak self] in self?.stage($0) ?? false }
    }

    /// A session that moved here from another loop (`migrate(to:then:)`): its handshake is done,
    /// so `start` finds it open at once; `plaintext` is what was decrypted there and not consumed.
    private init(resuming engine: TLSEngine, plaintext: consuming RingBuffer, over inner: any ByteStream) {
        self.inner = inner
        self.engine = engine
        self.plaintext = plaintext
        early = RingBuffer(minimumCapacity: 1024, maximumCapacity: 4 << 20)
        record = .allocate(byteCount: Self.recordSize, alignment: 16)
        sealed = .allocate(byteCount: Self.sealedCapacity, alignment: 16)
        engine.ciphertextSink = { [weak self] in self?.stage($0) ?? false }
    }

    deinit {
        record.deallocate()
        sealed.deallocate()
    }

    public var loop: EventLoop { inner.loop }
    public var isOpen: Bool { state == .handshaking || state == .open }
    public var isStarted: Bool { state != .idle }
    public var bufferedBytes: Int { inner.bufferedBytes + plaintext.capacity + early.capacity + record.count + sealed.count }
    public func limitUnsentBytes(_ bytes: Int) { inner.limitUnsentBytes(bytes) }
    /// False until the handshake is done (writes before it are held, bounded), then the inner stream's.
    public var isWritable: Bool { state == .open && !writeShutDown && inner.isWritable }
    public var negotiatedALPN: String? { engine.negotiatedALPN }
    /// The peer's verified certificate once the handshake is done (see `TLSEngine.peerCertificate`).
    public var peerCertificate: TLSPeerCertificate? { engine.peerCertificate }

    /// Starts the handshake (see `init` for an inner stream that is already started).
    public func start(handler: any StreamHandler) {
        loop.assertInLoop()
        precondition(state == .idle, "TLSStream started twice")
        self.handler = handler
        state = .handshaking
        if !inner.isStarted {
            inner.start(handler: self)
        } else if inner.isOpen {
            inner.replaceHandler(self)
        } else {
            state = .closing
            return streamDidClose(inner, error: TLSError("the stream to secure is already closed"))
        }
        advanceHandshake()
    }

    public func replaceHandler(_ handler: any StreamHandler) {
        loop.assertInLoop()
        precondition(state != .idle, "replaceHandler before start")
        self.handler = handler
        // Later: the ring may be lent to the old handler's call that is handing us over.
        loop.runSoon { [self] in decrypt() }
    }

    // MARK: Reading

    /// OpenSSL reads the ciphertext where it lies in the inner stream's ring. What it does not
    /// take (decryption stopped: our ring full, reading paused, closed) stays there; the inner
    /// stream is paused then, and offers it again on resume.
    public func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        let taken = buffer.withReadableRegions { first, second in
            let took = lend(first)
            return took == first.count ? took + lend(second) : took
        }
        buffer.consume(taken)
    }

    /// Lets OpenSSL read `region` while the handshake or decryption advances; the bytes it took.
    private func lend(_ region: UnsafeRawBufferPointer) -> Int {
        guard !region.isEmpty else { return 0 }
        return engine.lendingCiphertext(region) {
            if state == .handshaking { advanceHandshake() } else { decrypt() }
        }
    }

    private func advanceHandshake() {
        switch engine.handshake() {
        case .done:
            state = .open
            flushSealed()
            if !early.isEmpty {
                let pending = early.bytes()
                early.discardAll()
                _ = pending.withUnsafeBytes { send($0, UnsafeRawBufferPointer(start: nil, count: 0)) }
            }
            switch closeAfterHandshake {
            case .shutdownWrite?: shutdownWrite()
            case .closeAfterFlush?: closeAfterFlush()
            case nil: if inner.isWritable { handler?.streamWritabilityDidChange(self, isWritable: true) }
            }
            decrypt()
        case .wantRead:
            flushSealed()
        case .closed:
            fail(TLSError("peer closed the connection during the handshake"))
        case .failed(let error):
            flushSealed()  // the alert, if any
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
        flushSealed()  // reads can produce protocol replies (key updates, alerts)
    }

    /// Decrypts until the engine needs more ciphertext or the ring is full (returns true then).
    private func fillPlaintext() -> Bool {
        while !inputEnded {
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
            case .closed: inputEnded = true
            case .wantRead: inputEnded = innerEOF  // EOF without close_notify: many peers skip it
            case .failed(let error): fail(error)
            case .done: break
            }
            return false
        }
        return false
    }

    private func deliver() {
        guard state == .open, !readingPaused, let handler else { return }
        if !plaintext.isEmpty {
            handler.streamDidRead(self, &plaintext)
            // A full ring the handler did not drain: stop reading the inner stream until resumed.
            if plaintext.remainingCapacity == 0 { inner.pauseReading() }
        }
        if inputEnded && plaintext.isEmpty && !eofDelivered && state == .open && !readingPaused {
            eofDelivered = true
            handler.streamDidReadEOF(self)
        }
    }

    public func streamDidReadEOF(_ stream: any ByteStream) {
        if state == .handshaking { return fail(TLSError("connection closed during the TLS handshake")) }
        innerEOF = true
        decrypt()
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
        loop.runSoon { [self] in decrypt() }
    }

    // MARK: Writing

    @discardableResult
    public func write(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> Bool {
        loop.assertInLoop()
        guard isOpen, !writeShutDown, closeAfterHandshake == nil else { return false }
        if state == .handshaking {
            guard early.append(first), early.append(second) else { fail(TLSError("too much data before the handshake")); return false }
            return true
        }
        return send(first, second)
    }

    /// Gathers a write: one of at most `coalescedWriteLimit` bytes waits for the end of the pass,
    /// a larger one goes to the inner stream now, with everything gathered before it.
    private func send(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> Bool {
        guard gather(first), gather(second) else { return false }
        if first.count + second.count > coalescedWriteLimit { return sendGathered() }
        scheduleGatheredSend()
        return true
    }

    /// Adds plaintext to the record being gathered; each record that fills is sealed (whole
    /// records of a large write at once, without a copy of ours), the rest waits in `record`.
    private func gather(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var rest = bytes
        if recordCount > 0 && !rest.isEmpty {
            let count = min(rest.count, Self.recordSize - recordCount)
            (record.baseAddress! + recordCount).copyMemory(from: rest.baseAddress!, byteCount: count)
            recordCount += count
            rest = UnsafeRawBufferPointer(rebasing: rest[count...])
            if recordCount == Self.recordSize { guard sealRecord() else { return false } }
        }
        let whole = rest.count - rest.count % Self.recordSize
        if whole > 0 {
            guard seal(UnsafeRawBufferPointer(rebasing: rest[..<whole])) else { return false }
            rest = UnsafeRawBufferPointer(rebasing: rest[whole...])
        }
        if !rest.isEmpty {
            record.baseAddress!.copyMemory(from: rest.baseAddress!, byteCount: rest.count)
            recordCount = rest.count
        }
        return true
    }

    private func scheduleGatheredSend() {
        guard !gatheredSendScheduled, recordCount > 0 || sealedCount > 0 else { return }
        gatheredSendScheduled = true
        loop.runSoon { [self] in
            gatheredSendScheduled = false
            if state == .open { sendGathered() }
        }
    }

    /// Seals the gathered plaintext and hands every sealed record to the inner stream.
    @discardableResult
    private func sendGathered() -> Bool {
        sealRecord() && flushSealed()
    }

    @discardableResult
    private func sealRecord() -> Bool {
        guard recordCount > 0 else { return true }
        let count = recordCount
        recordCount = 0
        return seal(UnsafeRawBufferPointer(rebasing: record[..<count]))
    }

    /// Encrypts `bytes` into records, staged in `sealed` (see `stage`).
    private func seal(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if case .failed(let error) = engine.write(bytes) {
            fail(error)
            return false
        }
        return true
    }

    /// The engine's sink: a record, straight from OpenSSL's buffer into `sealed`.
    private func stage(_ ciphertext: UnsafeRawBufferPointer) -> Bool {
        if sealedCount + ciphertext.count > sealed.count { guard flushSealed() else { return false } }
        if ciphertext.count > sealed.count { return inner.write(ciphertext) }
        (sealed.baseAddress! + sealedCount).copyMemory(from: ciphertext.baseAddress!, byteCount: ciphertext.count)
        sealedCount += ciphertext.count
        return true
    }

    /// Hands the gathered records to the inner stream: written at once if the socket takes
    /// them, else queued there.
    @discardableResult
    private func flushSealed() -> Bool {
        guard sealedCount > 0 else { return true }
        let count = sealedCount
        sealedCount = 0
        return inner.write(UnsafeRawBufferPointer(rebasing: sealed[..<count]))
    }

    public func streamWritabilityDidChange(_ stream: any ByteStream, isWritable: Bool) {
        guard state == .open, !writeShutDown else { return }
        handler?.streamWritabilityDidChange(self, isWritable: isWritable)
    }

    // MARK: Closing

    /// Everything written, then close_notify, then a half-close of the inner stream; reading
    /// goes on until the peer's close_notify or EOF.
    public func shutdownWrite() {
        loop.assertInLoop()
        switch state {
        case .handshaking: if closeAfterHandshake == nil { closeAfterHandshake = .shutdownWrite }
        case .open:
            sendCloseNotify()
            inner.shutdownWrite()
        case .idle, .closing, .closed: break
        }
    }

    /// Everything written, then close_notify, then the inner stream closes once flushed.
    public func closeAfterFlush() {
        loop.assertInLoop()
        switch state {
        case .handshaking: closeAfterHandshake = .closeAfterFlush
        case .open:
            sendCloseNotify()
            inner.closeAfterFlush()
        case .idle, .closing, .closed: break
        }
    }

    /// Closes now: what the inner stream can send at once goes (gathered plaintext, close_notify),
    /// the rest is dropped.
    public func close() {
        loop.assertInLoop()
        switch state {
        case .open:
            sendCloseNotify()
            state = .closing
            inner.close()
        case .handshaking:
            state = .closing
            inner.close()
        case .idle, .closing, .closed: break
        }
    }

    /// Closes now because of `error`: what the inner stream can send at once goes (gathered
    /// plaintext would have been sent already had it not waited for the pass end), the rest is
    /// dropped.
    public func close(error: any Error) {
        loop.assertInLoop()
        if state == .open && !writeShutDown { sendGathered() }
        fail(error)
    }

    private func sendCloseNotify() {
        guard !writeShutDown else { return }
        writeShutDown = true
        sealRecord()
        engine.shutdown()
        flushSealed()
    }

    private func fail(_ error: any Error) {
        guard isOpen else { return }
        closeError = error
        state = .closing
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

extension TLSStream: MigratableStream {
    public var socket: Connection? { inner as? Connection }

    public var isMigratable: Bool {
        state == .open && recordCount == 0 && sealedCount == 0 && !gatheredSendScheduled && early.isEmpty && !writeShutDown && !innerEOF && !inputEnded
            && socket?.isMigratable == true
    }

    /// Moves the session (the engine, with whatever ciphertext it holds) and its socket; the
    /// stream on `target` starts already open.
    public func migrate(to target: EventLoop, then: @escaping @Sendable (any MigratableStream) -> Void) -> Bool {
        loop.assertInLoop()
        guard isMigratable, let socket else { return false }
        let carried = CarriedSession(engine)
        // Queued before the socket's own hand-off on this loop, so it runs first: the plaintext
        // ring may be lent to the handler call that asked for the move.
        loop.runSoon { [self] in carried.plaintext = plaintext.take() }
        let moved = socket.migrate(to: target) { (connection: Connection) in
            then(TLSStream(resuming: carried.engine, plaintext: carried.plaintext.take()!, over: connection))
        }
        precondition(moved, "a migratable socket refused to move")
        state = .closed
        handler = nil
        return true
    }
}

/// A TLS session on its way to another loop: used by the sending loop until the move, then only
/// by the receiving one.
private final class CarriedSession: @unchecked Sendable {  // handed over once, in order, through the loops' task queues
    let engine: TLSEngine
    var plaintext: RingBuffer?
    init(_ engine: TLSEngine) { self.engine = engine }
}
