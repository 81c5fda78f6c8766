import Reactor

/// A stream fed by a fuzzer: what it "receives" is what the input says; what it writes is
/// dropped. It behaves as a socket does towards its handler: paused reads wait, buffered bytes
/// are offered again after a resume or a handler change, a close is reported later (never
/// re-entrantly), writability changes when the input says so.
public final class MemoryStream: ByteStream {
    public let loop: EventLoop
    private var handler: (any StreamHandler)?
    private var ring = RingBuffer(minimumCapacity: 256, maximumCapacity: 1 << 16)
    public private(set) var isOpen = true
    public private(set) var isStarted = false
    private var paused = false
    private var writable = true
    public var isWritable: Bool { isOpen && writable }

    public init(loop: EventLoop) { self.loop = loop }

    public func start(handler: any StreamHandler) {
        self.handler = handler
        isStarted = true
    }

    public func replaceHandler(_ handler: any StreamHandler) {
        self.handler = handler
        loop.runSoon { [self] in deliver() }
    }

    public func write(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> Bool { isOpen }
    public func pauseReading() { paused = true }
    public func resumeReading() {
        paused = false
        loop.runSoon { [self] in deliver() }
    }
    public func shutdownWrite() {}
    public func closeAfterFlush() { teardown(nil) }
    public func close() { teardown(nil) }
    public func close(error: any Error) { teardown(error) }

    private func teardown(_ error: (any Error)?) {
        guard isOpen else { return }
        isOpen = false
        let handler = self.handler
        self.handler = nil
        loop.runSoon { [self] in
            ring.discardAll()
            handler?.streamDidClose(self, error: error)
        }
    }

    /// Bytes arriving from the peer (dropped when the ring is full, as a socket would stop reading).
    public func feed(_ bytes: UnsafeRawBufferPointer) {
        guard isOpen, ring.append(bytes) else { return }
        deliver()
    }

    public func feed(_ bytes: [UInt8]) { bytes.withUnsafeBytes { feed($0) } }

    public func setWritable(_ value: Bool) {
        guard isOpen, value != writable else { return }
        writable = value
        handler?.streamWritabilityDidChange(self, isWritable: value)
    }

    /// The peer shut down its sending side.
    public func end() {
        guard isOpen else { return }
        handler?.streamDidReadEOF(self)
    }

    private func deliver() {
        guard isOpen, !paused, let handler, !ring.isEmpty else { return }
        handler.streamDidRead(self, &ring)
    }
}
