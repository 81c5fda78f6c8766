/// The async/await face of any `ByteStream` (a TCP connection, TLS, a tunnelled connection), for
/// code that prefers tasks to loop callbacks. Inbound bytes are an `AsyncSequence` of chunks
/// whose consumption drives back-pressure: while more than `maxBufferedBytes` wait unconsumed,
/// the stream stops reading (and so the peer is slowed); it reads again once the consumer has
/// taken them down to `resumeBelowBytes`. `write` suspends while the stream is not writable.
///
/// The callback API stays the zero-overhead path: this façade copies each inbound chunk once, to
/// hand it across threads.
public final class AsyncByteStream: @unchecked Sendable {  // reader state is guarded by `lock`; the stream and writer state are touched only on `loop`
    public struct Options: Sendable {
        public var maxBufferedBytes = 1 << 20
        public var resumeBelowBytes = 256 * 1024
        public init() {}
    }

    public enum StreamError: Error, Equatable {
        /// Write on a stream that is closed or whose write side is shut down.
        case closed
        /// Another task is already waiting in `read()`.
        case concurrentRead
    }

    public let loop: EventLoop
    private let options: Options
    private let stream: any ByteStream
    private let lock = Lock()
    // Reader state (any thread, under `lock`).
    private var chunks: [[UInt8]] = []
    private var chunkHead = 0
    private var bufferedBytes = 0
    private var readerWaiting: CheckedContinuation<[UInt8]?, any Error>?
    private var endOfInput = false
    private var failure: (any Error)?
    private var readingPaused = false
    // Writer state (loop only).
    private var writersWaiting: [CheckedContinuation<Void, any Error>] = []
    private var isClosed = false

    /// Wraps a stream that has not been started; call on the stream's loop.
    public init(_ stream: any ByteStream, options: Options = Options()) {
        stream.loop.assertInLoop()
        self.loop = stream.loop
        self.stream = stream
        self.options = options
        stream.start(handler: Handler(owner: self))
    }

    /// Connects to `address` from `loop` and wraps the connection.
    public static func connect(to address: SocketAddress, on loop: EventLoop,
                               options: ConnectOptions = ConnectOptions(),
                               streamOptions: Options = Options()) async throws -> AsyncByteStream {
        try await loop.submit(completing: { complete in
            loop.connect(to: address, options: options) { result in
                complete(result.map { AsyncByteStream($0, options: streamOptions) }.mapError { $0 })
            }
        })
    }

    /// Inbound bytes received but not yet consumed (bounded by back-pressure).
    public var bufferedByteCount: Int { lock.withLock { bufferedBytes } }

    // MARK: Reading

    /// The next chunk of inbound bytes; nil at the end of the stream. Throws the stream's error.
    public func read() async throws -> [UInt8]? {
        try await withCheckedThrowingContinuation { continuation in
            let immediate: Result<[UInt8]?, any Error>? = lock.withLock {
                if let chunk = popChunkLocked() { return .success(chunk) }
                if let failure { return .failure(failure) }
                if endOfInput { return .success(nil) }
                if readerWaiting != nil { return .failure(StreamError.concurrentRead) }
                readerWaiting = continuation
                return nil
            }
            if let immediate { continuation.resume(with: immediate) }
        }
    }

    /// Inbound chunks until the end of the stream.
    public var inbound: Chunks { Chunks(stream: self) }

    public struct Chunks: AsyncSequence, Sendable {
        public typealias Element = [UInt8]
        let stream: AsyncByteStream
        public struct AsyncIterator: AsyncIteratorProtocol {
            let stream: AsyncByteStream
            public mutating func next() async throws -> [UInt8]? { try await stream.read() }
        }
        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(stream: stream) }
    }

    private func popChunkLocked() -> [UInt8]? {
        guard chunkHead < chunks.count else { return nil }
        let chunk = chunks[chunkHead]
        chunkHead += 1
        if chunkHead == chunks.count {
            chunks.removeAll(keepingCapacity: true)
            chunkHead = 0
        }
        bufferedBytes -= chunk.count
        if readingPaused && bufferedBytes < options.resumeBelowBytes {
            readingPaused = false
            // Re-checked on the loop: a delivery may have paused again in between.
            loop.execute { [self] in
                if !lock.withLock({ readingPaused }) { stream.resumeReading() }
            }
        }
        return chunk
    }

    /// On the loop: a chunk arrived.
    private func deliver(_ chunk: [UInt8]) {
        let waiter: CheckedContinuation<[UInt8]?, any Error>? = lock.withLock {
            if let waiter = readerWaiting {
                readerWaiting = nil
                return waiter
            }
            chunks.append(chunk)
            bufferedBytes += chunk.count
            if !readingPaused && bufferedBytes > options.maxBufferedBytes {
                readingPaused = true
                stream.pauseReading()
            }
            return nil
        }
        waiter?.resume(returning: chunk)
    }

    /// On the loop: no more input, cleanly (`error == nil`) or not.
    private func finishInput(error: (any Error)?) {
        let waiter: CheckedContinuation<[UInt8]?, any Error>? = lock.withLock {
            endOfInput = true
            if failure == nil { failure = error }
            defer { readerWaiting = nil }
            return readerWaiting
        }
        if let error { waiter?.resume(throwing: error) } else { waiter?.resume(returning: nil) }
    }

    // MARK: Writing

    /// Writes `bytes`; returns once they are written or queued below the high watermark.
    public func write(_ bytes: [UInt8]) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            loop.execute { [self] in
                guard !isClosed, stream.write(bytes) else { return continuation.resume(throwing: StreamError.closed) }
                if stream.isWritable { continuation.resume() } else { writersWaiting.append(continuation) }
            }
        }
    }

    private func resumeWriters(throwing error: (any Error)?) {
        let waiting = writersWaiting
        writersWaiting.removeAll()
        for writer in waiting {
            if let error { writer.resume(throwing: error) } else { writer.resume() }
        }
    }

    // MARK: Closing

    /// Half-close: no more writes; reading continues until the peer ends.
    public func shutdownWrite() {
        loop.execute { [self] in stream.shutdownWrite() }
    }

    /// Closes once everything written has been sent.
    public func close() {
        loop.execute { [self] in stream.closeAfterFlush() }
    }

    private final class Handler: StreamHandler {
        let owner: AsyncByteStream
        init(owner: AsyncByteStream) { self.owner = owner }

        func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
            owner.deliver(buffer.bytes())
            buffer.consume(buffer.readableBytes)
        }

        func streamDidReadEOF(_ stream: any ByteStream) {
            owner.finishInput(error: nil)
        }

        func streamWritabilityDidChange(_ stream: any ByteStream, isWritable: Bool) {
            if isWritable { owner.resumeWriters(throwing: nil) }
        }

        func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {
            owner.isClosed = true
            owner.finishInput(error: error)
            owner.resumeWriters(throwing: error ?? StreamError.closed)
        }
    }
}
