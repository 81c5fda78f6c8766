import CSystem
import Glibc

/// A nonblocking TCP stream owned by one loop: a read ring the handler parses in place, a write
/// queue, and read interest that the owner (or back-pressure from elsewhere) can switch off.
///
/// Loop-confined: every method must be called on `loop`'s thread.
public final class Connection: ByteStream, IOEventHandler, SpareBufferHolder {
    private enum State { case idle, open, closed }

    public let loop: EventLoop
    public let options: ConnectionOptions
    private(set) var id: SocketID?
    public let remoteAddress: SocketAddress?
    public let localAddress: SocketAddress?
    private var fd: Int32
    private var state: State = .idle
    private var handler: (any StreamHandler)?
    private var readBuffer: RingBuffer
    private var writeQueue: WriteQueue
    private var readingPaused = false
    /// Reading stopped because the ring is at its maximum and the handler left it full.
    private var readBufferFull = false
    private var readEOF = false
    /// Handed to another loop (`migrate`): closed here, its unread bytes kept for the move.
    private var migrating = false
    /// Past the first read (see `ConnectionOptions.firstReadMaximum`).
    private var hasRead = false
    /// How the write side ends: open, or ending once the queue has drained (no write is taken
    /// once an ending is asked for).
    private enum WriteSide {
        case open
        /// `shutdownWrite`: FIN once the queue is empty; reading goes on.
        case finAfterFlush
        case finSent
        /// `closeAfterFlush`: close once the queue is empty.
        case closeAfterFlush
    }
    private var writeSide: WriteSide = .open
    /// Writes queued for the end of this loop pass (`coalescedWriteLimit`) wait for it.
    private var coalescedFlushPending = false
    /// Writes of at most this many bytes wait in the queue until the end of the loop pass (see
    /// `ByteStream.coalescedWriteLimit`). 0 (the default): every write is attempted at once.
    public var coalescedWriteLimit = 0
    public var isAwaitingSpareBufferSweep = false

    /// TCP_NOTSENT_LOWAT: the kernel takes writes only while fewer than `bytes` of them are unsent
    /// (not yet within the peer's window), and reports the socket writable only below that.
    public func limitUnsentBytes(_ bytes: Int) {
        guard state != .closed else { return }
        Syscall.setOption(fd, Int32(IPPROTO_TCP), TCP_NOTSENT_LOWAT, Int32(clamping: bytes))
    }

    /// The kernel's TCP_NOTSENT_LOWAT for this socket, as `limitUnsentBytes` left it.
    public var unsentBytesLimit: Int? { state == .closed ? nil : Syscall.option(fd, Int32(IPPROTO_TCP), TCP_NOTSENT_LOWAT).map(Int.init) }
    /// A file being sent with sendfile(2) once the write queue is empty.
    private var fileSend: FileSend?

    private struct FileSend {
        let fd: Int32
        var offset: Int
        var remaining: Int
        /// Queued bytes written before the file, still to go ahead of it; what is queued past
        /// them was written after it and waits for it.
        var bytesAhead: Int
        let completion: (Result<Void, SocketError>) -> Void
    }
    /// Runs once when the socket is closed (its fd released), whoever the handler is by then:
    /// for owners that count open sockets, e.g. a server's connection limit.
    public var onClosed: (() -> Void)?

    /// Wraps a connected, nonblocking socket; nothing is read until `start(handler:)`.
    init(loop: EventLoop, fd: Int32, options: ConnectionOptions, unread: consuming RingBuffer? = nil) {
        self.loop = loop
        self.fd = fd
        self.options = options
        self.readBuffer = unread.take() ?? RingBuffer(minimumCapacity: options.readBufferMinimum, maximumCapacity: options.readBufferMaximum)
        self.writeQueue = WriteQueue(options: options)
        self.remoteAddress = Syscall.peerAddress(fd)
        self.localAddress = Syscall.localAddress(fd)
        if options.noDelay { Syscall.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1) }
    }

    deinit {
        // A connection dropped without ever being started still owns its fd.
        if fd >= 0 { Glibc.close(fd) }
    }

    /// Registers with the loop and starts delivering events to `handler`.
    public func start(handler: any StreamHandler) {
        loop.assertInLoop()
        precondition(state == .idle, "Connection started twice")
        self.handler = handler
        do {
            // A handler may have paused reading before the connection started.
            id = try loop.register(fd: fd, interest: readingPaused ? [] : .read, handler: self)
            state = .open
            // Bytes read on another loop before the socket moved here (`migrate(to:)`).
            if !readBuffer.isEmpty { offerBufferedBytesSoon() }
        } catch {
            state = .open
            fail(error)
        }
    }

    public func replaceHandler(_ handler: any StreamHandler) {
        loop.assertInLoop()
        precondition(state != .idle, "replaceHandler before start")
        guard state == .open else { return }
        self.handler = handler
        offerBufferedBytesSoon()
    }

    private func offerBufferedBytesSoon() {
        loop.runSoon { [self] in
            if state == .open && !readingPaused && !readBuffer.isEmpty { deliverBufferedBytes() }
        }
    }

    public var isOpen: Bool { state == .open }
    public var isStarted: Bool { state != .idle }
    /// False while the write queue is above its high watermark (until it drains below the low one).
    public var isWritable: Bool { writeQueue.isWritable }
    public var queuedWriteBytes: Int { writeQueue.queuedBytes }
    public var isReadingPaused: Bool { readingPaused }
    /// Bytes currently held by the read ring and write queue (for memory accounting and tests).
    public var bufferedBytes: Int { readBuffer.capacity + writeQueue.capacity }

    // MARK: Reading

    /// Stops reading (EPOLLIN off): the kernel's receive window fills and the peer is slowed.
    public func pauseReading() {
        loop.assertInLoop()
        readingPaused = true
        updateInterest()
    }

    /// Starts reading again; also lifts a stop caused by a full read ring.
    public func resumeReading() {
        loop.assertInLoop()
        readingPaused = false
        readBufferFull = false
        updateInterest()
        // Bytes may be waiting in the ring from before the pause: offer them again. Checked
        // later, not here: the ring may be lent to a handler call that is resuming us.
        if state == .open { offerBufferedBytesSoon() }
    }

    private func updateInterest() {
        guard state == .open, let id else { return }
        var interest: Interest = []
        if !readingPaused && !readBufferFull && !readEOF { interest.insert(.read) }
        if !writeQueue.isEmpty || fileSend != nil { interest.insert(.write) }
        loop.setInterest(id, interest)
    }

    func handleIOEvent(_ events: UInt32) {
        if events & EPOLLOUT.rawValue != 0 { flushWriteQueue() }
        if events & (EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 && state == .open {
            if events & EPOLLERR.rawValue != 0 {
                let code = Syscall.pendingError(fd)
                if code != 0 { return fail(.errno("read", code)) }
            }
            // Not reading (paused, or EOF seen): a hang-up here leaves any unread bytes in the
            // kernel for when reading resumes; a failed write will report the error.
            if readingPaused || readBufferFull || readEOF { return }
            readFromSocket()
        }
    }

    private func readFromSocket() {
        for _ in 0..<options.readsPerEvent {
            guard state == .open, !readingPaused, !readEOF else { return }
            let drained: Bool
            if readBuffer.isEmpty && handler != nil {
                guard let (read, limit) = readIntoLoopScratch() else { return }
                drained = read < limit
            } else {
                guard let (read, free) = readIntoRing() else { return }
                drained = read < free
            }
            // A short read means the socket is drained: let other sockets have their turn.
            if drained { return }
        }
    }

    /// Nothing of ours is waiting: reads into the loop's shared buffer and lends what arrived to
    /// the handler in place; only what it leaves unconsumed (a partial header, say) is copied
    /// into this connection's ring. Returns (bytes read, bytes asked for), nil when reading stops.
    private func readIntoLoopScratch() -> (Int, Int)? {
        let scratch = loop.readScratch
        let limit = min(scratch.count, readBuffer.maximumCapacity, hasRead ? .max : options.firstReadMaximum)
        hasRead = true
        let target = UnsafeMutableRawBufferPointer(rebasing: scratch[..<limit])
        guard let n = handleReadResult(Syscall.read(fd, target, UnsafeMutableRawBufferPointer(start: nil, count: 0))) else { return nil }
        var lent = RingBuffer(borrowing: UnsafeMutableRawBufferPointer(rebasing: scratch[..<n]), maximumCapacity: readBuffer.maximumCapacity)
        handler?.streamDidRead(self, &lent)
        // Moving to another loop (`migrate`), what the handler left goes along in the ring.
        guard state == .open || migrating else { return nil }
        if !lent.isEmpty {
            lent.withReadableRegions { first, second in
                readBuffer.append(first)
                readBuffer.append(second)
            }
            if state == .open { stopIfRingFull() }
        }
        return state == .open ? (n, limit) : nil
    }

    /// Bytes of ours are waiting (the handler left them): appends to the ring, so the handler
    /// sees them contiguously with what follows. Returns (bytes read, free space), nil when
    /// reading stops.
    private func readIntoRing() -> (Int, Int)? {
        if readBuffer.writableBytes == 0 && !readBuffer.grow() {
            readBufferFull = true
            updateInterest()
            return nil
        }
        var result: Result<Int?, SocketError> = .success(nil)
        let free = readBuffer.writableBytes
        _ = readBuffer.withWritableRegions { first, second in
            result = Syscall.read(fd, first, second)
            if case .success(let n?) = result { return n }
            return 0
        }
        guard let n = handleReadResult(result) else { return nil }
        deliverBufferedBytes()
        guard state == .open else { return nil }
        // A ring that filled is grown for the next read (a consumer keeping a backlog, or a
        // large message being assembled).
        if n == free { readBuffer.grow() }
        return (n, free)
    }

    /// A read's outcome: the byte count, or nil after an error, EAGAIN or EOF (handled here).
    private func handleReadResult(_ result: Result<Int?, SocketError>) -> Int? {
        switch result {
        case .failure(let error):
            fail(error)
            return nil
        case .success(nil):
            return nil
        case .success(0?):
            readEOF = true
            updateInterest()
            handler?.streamDidReadEOF(self)
            return nil
        case .success(let n?):
            loop.socketBytesRead += n
            return n
        }
    }

    private func deliverBufferedBytes() {
        guard let handler else { return }
        handler.streamDidRead(self, &readBuffer)
        guard state == .open else { return }
        // Drained: the next read lands in the loop's buffer again, and the memory goes back at
        // the loop's next sweep unless bytes are left over again by then.
        if readBuffer.isEmpty { loop.releaseWhenIdle(self) } else { stopIfRingFull() }
    }

    public func releaseSpareBuffers() {
        guard state == .open else { return }
        if readBuffer.isEmpty { readBuffer.shrink(releaseWhenEmpty: true) }
        writeQueue.releaseIfEmpty()
    }

    /// A handler that leaves the ring at its maximum full stops reading until it consumes.
    private func stopIfRingFull() {
        if readBuffer.writableBytes == 0 && readBuffer.capacity >= readBuffer.maximumCapacity {
            readBufferFull = true
            updateInterest()
        }
    }

    // MARK: Writing

    /// Writes `bytes` now if the socket takes them, queueing (copying) only what it does not.
    /// Returns false if the connection is closed or its write side is ending (`shutdownWrite`,
    /// `closeAfterFlush`); a write past the queue's hard limit closes the connection with
    /// `.writeQueueFull`.
    /// Gathers two pieces (e.g. a frame header and its payload) into one system call.
    @discardableResult
    public func write(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> Bool {
        loop.assertInLoop()
        guard state != .closed, writeSide == .open else { return false }
        if first.count + second.count <= coalescedWriteLimit && fileSend == nil && state == .open {
            return enqueueForPassEnd(first, second)
        }
        var written = 0
        if writeQueue.isEmpty && fileSend == nil && state == .open {
            switch Syscall.send(fd, first, second) {
            case .success(let n): written = n; loop.socketBytesWritten += n
            case .failure(let error):
                fail(error)
                return false
            }
        }
        return enqueueUnwritten(first, second, skipping: written)
    }

    /// Gathers any number of pieces (e.g. header + payload split at a ring's wrap point).
    @discardableResult
    public func write(gathering pieces: [UnsafeRawBufferPointer]) -> Bool {
        loop.assertInLoop()
        guard state != .closed, writeSide == .open else { return false }
        var written = 0
        if writeQueue.isEmpty && fileSend == nil && state == .open {
            let result = withUnsafeTemporaryAllocation(of: iovec.self, capacity: pieces.count) { vector in
                for (index, piece) in pieces.enumerated() {
                    vector[index] = iovec(iov_base: UnsafeMutableRawPointer(mutating: piece.baseAddress), iov_len: piece.count)
                }
                return Syscall.send(fd, vector: vector)
            }
            switch result {
            case .success(let n): written = n; loop.socketBytesWritten += n
            case .failure(let error):
                fail(error)
                return false
            }
        }
        for piece in pieces {
            let skip = min(written, piece.count)
            written -= skip
            guard enqueueUnwritten(piece, UnsafeRawBufferPointer(start: nil, count: 0), skipping: skip) else { return false }
        }
        return true
    }

    private func enqueueUnwritten(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer, skipping written: Int) -> Bool {
        let total = first.count + second.count
        guard written < total else { return true }
        let wasEmpty = writeQueue.isEmpty
        let firstSkip = min(written, first.count)
        let ok = writeQueue.append(UnsafeRawBufferPointer(rebasing: first[firstSkip...]))
            && writeQueue.append(UnsafeRawBufferPointer(rebasing: second[(written - firstSkip)...]))
        guard ok else {
            fail(SocketError(.writeQueueFull, operation: "write"))
            return false
        }
        if wasEmpty { updateInterest() }
        notifyWritabilityChange()
        return true
    }

    /// Queues a small write to go out with the others of this pass (`coalescedWriteLimit`).
    private func enqueueForPassEnd(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> Bool {
        guard writeQueue.append(first) && writeQueue.append(second) else {
            fail(SocketError(.writeQueueFull, operation: "write"))
            return false
        }
        notifyWritabilityChange()
        if !coalescedFlushPending {
            coalescedFlushPending = true
            loop.runSoon { [weak self] in self?.flushCoalescedWrites() }
        }
        return true
    }

    private func flushCoalescedWrites() {
        coalescedFlushPending = false
        flushWriteQueue()
        // The socket took only part: wait for it to drain, as a write attempted at once would.
        if !writeQueue.isEmpty { updateInterest() }
    }

    /// Closing now: coalesced writes would have been sent already had they not waited for the
    /// pass to end, so send what the socket takes before the rest is dropped.
    private func sendCoalescedWritesBeforeClose() {
        guard coalescedFlushPending, state == .open else { return }
        while queuedBytesFreeToGo > 0, case .success(let written) = flushFreeBytes(), written > 0 {}
    }

    /// Queued bytes that may go now: all of them, or while a file is pending those written before it.
    private var queuedBytesFreeToGo: Int { fileSend?.bytesAhead ?? writeQueue.queuedBytes }

    /// Sends what the socket takes of the bytes free to go now, and counts them.
    private func flushFreeBytes() -> Result<Int, SocketError> {
        let result = writeQueue.flush(to: fd, limit: queuedBytesFreeToGo)
        if case .success(let written) = result {
            loop.socketBytesWritten += written
            fileSend?.bytesAhead -= written
        }
        return result
    }

    private func flushWriteQueue() {
        guard state == .open else { return }
        repeat {
            while queuedBytesFreeToGo > 0 {
                switch flushFreeBytes() {
                case .failure(let error):
                    return fail(error)
                case .success(0):
                    notifyWritabilityChange()
                    return
                case .success:
                    continue
                }
            }
            guard sendFilePortion() else { return }
        } while state == .open && !writeQueue.isEmpty  // bytes written behind the file, now free to go
        guard state == .open else { return }
        loop.releaseWhenIdle(self)
        updateInterest()
        notifyWritabilityChange()
        // The writability callback may have queued more: finish only on a really empty queue.
        guard state == .open, writeQueue.isEmpty else { return }
        switch writeSide {
        case .closeAfterFlush: close()
        case .finAfterFlush: sendFIN()
        case .open, .finSent: break
        }
    }

    /// Sends `count` bytes of the open file `fileFD` from `offset` with sendfile(2), after
    /// everything already written: the kernel copies from the page cache, we never touch the
    /// bytes. Writes made before `completion` queue behind the file (one queue, the file's place
    /// in it marked by `FileSend.bytesAhead`). `completion` runs on the loop once all is sent,
    /// or with the error; the caller keeps and closes `fileFD`.
    public func sendFile(_ fileFD: Int32, offset: Int, count: Int, completion: @escaping (Result<Void, SocketError>) -> Void) {
        loop.assertInLoop()
        precondition(fileSend == nil, "one sendFile at a time")
        guard state == .open, writeSide == .open else { return loop.runSoon { completion(.failure(SocketError(.closed, operation: "sendfile"))) } }
        fileSend = FileSend(fd: fileFD, offset: offset, remaining: count, bytesAhead: writeQueue.queuedBytes, completion: completion)
        if writeQueue.isEmpty { flushWriteQueue() } else { updateInterest() }
    }

    /// Moves file bytes while the socket takes them, once no queued byte is ahead of the file;
    /// true once no file is pending.
    private func sendFilePortion() -> Bool {
        guard var file = fileSend else { return true }
        guard file.bytesAhead == 0 else { return false }
        while file.remaining > 0 {
            var offset = Int64(file.offset)
            let sent = csystem_sendfile(fd, file.fd, &offset, UInt(min(file.remaining, 1 << 20)))
            if sent > 0 {
                file.offset = Int(offset)
                file.remaining -= sent
            } else if sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                fileSend = file
                updateInterest()
                return false
            } else {
                fileSend = nil
                let error = sent == 0 ? SocketError(.closed, operation: "sendfile: file shorter than announced") : SocketError.errno("sendfile")
                file.completion(.failure(error))
                fail(error)
                return false
            }
        }
        fileSend = nil
        file.completion(.success(()))
        return fileSend == nil
    }

    private func notifyWritabilityChange() {
        if let isWritable = writeQueue.writabilityChange() {
            handler?.streamWritabilityDidChange(self, isWritable: isWritable)
        }
    }

    // MARK: Closing

    /// Half-close: sends FIN once everything queued has been written; reading continues.
    public func shutdownWrite() {
        loop.assertInLoop()
        guard state == .open, writeSide == .open else { return }
        writeSide = .finAfterFlush
        if writeQueue.isEmpty { sendFIN() }
    }

    private func sendFIN() {
        writeSide = .finSent
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    /// Closes once everything queued has been written (or at once if nothing is); takes no
    /// more writes meanwhile.
    public func closeAfterFlush() {
        loop.assertInLoop()
        guard state != .closed else { return }
        if writeQueue.isEmpty || state == .idle { close() } else { writeSide = .closeAfterFlush }
    }

    /// Closes now, dropping anything queued. The handler hears `streamDidClose(error: nil)` soon after.
    public func close() {
        sendCoalescedWritesBeforeClose()
        teardown(error: nil)
    }

    /// Closes with `error` (delivered to the handler).
    public func close(error: any Error) {
        sendCoalescedWritesBeforeClose()
        teardown(error: error)
    }

    private func fail(_ error: SocketError) {
        teardown(error: error)
    }

    func closeForShutdown() {
        sendCoalescedWritesBeforeClose()
        teardown(error: SocketError(.closed, operation: "shutdown"))
    }

    // MARK: Moving to another loop

    /// True while the socket can move to another loop: open, started, nothing queued to write
    /// (a queued response would have to be copied across threads) and no close under way.
    public var isMigratable: Bool {
        state != .closed && writeQueue.isEmpty && !coalescedFlushPending && fileSend == nil && writeSide == .open && !readEOF
    }

    /// Hands the socket to `target`: it stops being watched here at once (this connection counts
    /// as closed: `onClosed` runs, its handler hears nothing more), and on `target` a new
    /// Connection for the same fd, holding the bytes read here but not yet consumed (their
    /// storage moves, nothing is copied), is passed to `then`, not yet started. So a request can
    /// be served on the loop that owns what it needs and no byte of it crosses threads afterwards.
    /// Returns false, changing nothing, unless `isMigratable`.
    @discardableResult
    public func migrate(to target: EventLoop, then: @escaping @Sendable (Connection) -> Void) -> Bool {
        loop.assertInLoop()
        guard isMigratable else { return false }
        state = .closed
        migrating = true
        if let id { loop.deregister(id) }
        let socket = fd
        fd = -1
        handler = nil
        if let onClosed {
            self.onClosed = nil
            onClosed()
        }
        let options = options
        // The ring may be lent to the handler call that asked for the move: take it afterwards.
        loop.runSoon { [self] in
            let unread = MovedRing(readBuffer.take())
            target.execute {
                then(Connection(loop: target, fd: socket, options: options, unread: unread.take()))
            }
        }
        return true
    }

    private func teardown(error: (any Error)?) {
        loop.assertInLoop()
        guard state != .closed else { return }
        state = .closed
        if let id { loop.deregister(id) }
        Glibc.close(fd)
        fd = -1
        writeQueue.discardAll()
        if let onClosed {
            self.onClosed = nil
            onClosed()
        }
        if let file = fileSend {
            fileSend = nil
            let reason = (error as? SocketError) ?? SocketError(.closed, operation: "sendfile")
            loop.runSoon { file.completion(.failure(reason)) }
        }
        // The read ring may be borrowed by a handler call on the stack right now: free it later.
        loop.runSoon { [self] in
            readBuffer.discardAll()
            let handler = self.handler
            self.handler = nil  // breaks the usual handler ↔ connection cycle
            handler?.streamDidClose(self, error: error)
        }
    }
}

/// Carries a socket's unread bytes to the loop the socket moves to.
private final class MovedRing: @unchecked Sendable {  // filled by the sending loop, emptied once by the receiving one
    private var ring: RingBuffer?
    init(_ ring: consuming RingBuffer) { self.ring = consume ring }
    func take() -> RingBuffer? { ring.take() }
}
