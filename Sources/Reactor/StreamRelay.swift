/// Splices two connections of one loop together, both ways, with back-pressure: bytes read from
/// one side are written to the other straight from the read ring, and a side whose peer's write
/// queue is above its high watermark stops being read until that queue drains. Half-closes are
/// passed on; the relay ends when both directions have ended or either side fails.
public final class StreamRelay {
    public struct Statistics: Sendable {
        public var bytes: (aToB: Int, bToA: Int) = (0, 0)
        /// Times a side was paused because the other could not keep up.
        public var pauses = 0
        /// Highest write-queue depth seen on either side, in bytes.
        public var maxQueued = 0
    }

    private final class Side: ConnectionHandler {
        /// Strong: the connections own their sides, the sides keep the relay alive until it ends.
        let relay: StreamRelay
        let isA: Bool
        var eof = false
        init(relay: StreamRelay, isA: Bool) { self.relay = relay; self.isA = isA }

        func connectionDidRead(_ connection: Connection, _ buffer: inout RingBuffer) {
            relay.forward(from: connection, isA: isA, &buffer)
        }
        func connectionDidReadEOF(_ connection: Connection) {
            eof = true
            relay.peer(of: isA).shutdownWrite()
            relay.finishIfDone()
        }
        func connectionWritabilityDidChange(_ connection: Connection, isWritable: Bool) {
            if isWritable { relay.connection(isA: !isA).resumeReading() }
        }
        func connectionDidClose(_ connection: Connection, error: SocketError?) {
            relay.closed(error: error)
        }
    }

    public let a: Connection
    public let b: Connection
    public private(set) var statistics = Statistics()
    private var sides: [Side] = []
    private var onFinish: ((SocketError?) -> Void)?

    /// Starts relaying between two not-yet-started connections of the same loop.
    /// `onFinish` runs once, with the first error if either side failed.
    public init(_ a: Connection, _ b: Connection, onFinish: @escaping (SocketError?) -> Void = { _ in }) {
        precondition(a.loop === b.loop, "StreamRelay needs both connections on one loop")
        self.a = a
        self.b = b
        self.onFinish = onFinish
        sides = [Side(relay: self, isA: true), Side(relay: self, isA: false)]
        a.start(handler: sides[0])
        b.start(handler: sides[1])
    }

    private func connection(isA: Bool) -> Connection { isA ? a : b }
    private func peer(of isA: Bool) -> Connection { isA ? b : a }

    private func forward(from source: Connection, isA: Bool, _ buffer: inout RingBuffer) {
        let destination = peer(of: isA)
        let count = buffer.readableBytes
        buffer.withReadableRegions { first, second in _ = destination.write(first, second) }
        buffer.consume(count)
        if isA { statistics.bytes.aToB += count } else { statistics.bytes.bToA += count }
        statistics.maxQueued = max(statistics.maxQueued, destination.queuedWriteBytes)
        if !destination.isWritable {
            source.pauseReading()
            statistics.pauses += 1
        }
    }

    private func finishIfDone() {
        if sides.count == 2 && sides.allSatisfy(\.eof) {
            a.closeAfterFlush()
            b.closeAfterFlush()
        }
    }

    private func closed(error: SocketError?) {
        // One side gone means the relay is over: the other goes too (after flushing, if clean).
        if error != nil {
            a.close()
            b.close()
        } else {
            a.closeAfterFlush()
            b.closeAfterFlush()
        }
        sides.removeAll()  // breaks the relay ↔ side cycle; the connections release the sides
        if let onFinish {
            self.onFinish = nil
            onFinish(error)
        }
    }
}
