/// A reliable, ordered byte stream owned by one loop: a TCP `Connection`, a TLS session over any
/// other stream, or a connection tunnelled through a WebSocket. Protocol layers (TLS, HTTP,
/// WebSocket) are written against this, so they stack over any of them.
///
/// Loop-confined: every member is used on `loop`'s thread.
public protocol ByteStream: AnyObject {
    var loop: EventLoop { get }
    /// False while the stream's outgoing buffer is above its high watermark.
    var isWritable: Bool { get }
    var isOpen: Bool { get }
    /// True once `start(handler:)` was called: a layer taking the stream over then uses
    /// `replaceHandler` instead.
    var isStarted: Bool { get }
    /// Starts delivering events to `handler`; nothing is read before.
    func start(handler: any StreamHandler)
    /// Hands a started stream to another handler (a protocol upgrade, e.g. HTTP → WebSocket).
    /// Bytes already buffered are offered to the new handler soon after, on the loop.
    func replaceHandler(_ handler: any StreamHandler)
    /// Writes two pieces in order (either may be empty), copying only what cannot go out now.
    /// Returns false if the stream is closed or its write side is ending (`shutdownWrite`,
    /// `closeAfterFlush`).
    @discardableResult
    func write(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> Bool
    /// Writes of at most this many bytes wait for the end of the loop pass, so the small writes
    /// of one pass (a tunnel's messages for many connections) leave together: one send, one TLS
    /// record. 0: every write goes out at once. A stream that cannot hold writes back keeps the
    /// default, which reads 0 and ignores what is set.
    var coalescedWriteLimit: Int { get set }
    func pauseReading()
    func resumeReading()
    /// Half-close once everything queued is written.
    func shutdownWrite()
    /// Close once everything queued is written; no write is taken meanwhile.
    func closeAfterFlush()
    /// Close now, dropping anything queued; the handler hears `streamDidClose(error: nil)` soon after.
    func close()
    /// Close now because of `error`, which the handler hears.
    func close(error: any Error)
    /// Bytes this stream holds in its buffers now (read and write side), for memory caps.
    var bufferedBytes: Int { get }
    /// Keeps at most about `bytes` of what was written waiting unsent in the kernel; the rest waits
    /// in the stream's own queue, where writability (and so flow control) sees it at once.
    func limitUnsentBytes(_ bytes: Int)
}

extension ByteStream {
    public var bufferedBytes: Int { 0 }
    /// A stream with no kernel send queue of its own (a tunnelled connection) has nothing to limit.
    public func limitUnsentBytes(_ bytes: Int) {}

    public var coalescedWriteLimit: Int {
        get { 0 }
        set {}
    }

    @discardableResult
    public func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        write(bytes, UnsafeRawBufferPointer(start: nil, count: 0))
    }

    @discardableResult
    public func write(_ bytes: some Collection<UInt8>) -> Bool {
        if let done = bytes.withContiguousStorageIfAvailable({ write(UnsafeRawBufferPointer($0)) }) { return done }
        return Array(bytes).withUnsafeBytes { write($0) }
    }
}

/// What a stream tells its owner, always on the stream's loop thread.
public protocol StreamHandler: AnyObject {
    /// New bytes are in `buffer` (the stream's read ring, borrowed for the call). Consume what
    /// you can with `buffer.consume(_:)`; the rest stays for the next call. If the ring is at its
    /// maximum and nothing is consumed, reading stops until `resumeReading()`.
    /// Do not reach the stream's read buffer any other way during this call.
    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer)
    /// The peer shut down its sending side. The default closes the stream.
    func streamDidReadEOF(_ stream: any ByteStream)
    /// The outgoing buffer rose above its high watermark (`false`) or drained below its low one (`true`).
    func streamWritabilityDidChange(_ stream: any ByteStream, isWritable: Bool)
    /// The stream is closed; `error` is nil for a local or clean close. Called once, never
    /// re-entrantly from inside a call you made on the stream.
    func streamDidClose(_ stream: any ByteStream, error: (any Error)?)
}

extension StreamHandler {
    public func streamDidReadEOF(_ stream: any ByteStream) { stream.close() }
    public func streamWritabilityDidChange(_ stream: any ByteStream, isWritable: Bool) {}
}
