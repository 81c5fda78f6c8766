/// Splices two streams of one loop together, both ways, with back-pressure: bytes read from
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

    private final class Side: StreamHandler {
        /// Strong: the connections own their sides, the sides keep the relay alive until it ends.
        let relay: StreamRelay
        let isA: Bool
        var eof = false
        init(relay: StreamRelay, isA: Bool) { self.relay = relay; self.isA = isA }

        func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
            relay.forward(from: stream, isA: isA, &buffer)
        }
        func streamDidReadEOF(_ stream: any ByteStream) {
            eof = true
            relay.peer(of: isA).shutdownWrite()
            relay.finishIfDone()
        }
        func streamWritabilityDidChange(_ stream: any ByteStream, isWritable: Bool) {
            if isWritable { relay.stream(isA: !isA).resumeReading() }
        }
        func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {
            relay.closed(error: error)
        }
    }

    public let a: any ByteStream
    public let b: any ByteStream
    public private(set) var statistics = Statistics()
    private var sides: [Side] = []
    private var onFinish: (((any Error)?) -> Void)?

    /// Starts relaying between two streams of the same loop. A stream already started (handed
    /// over by an HTTP upgrade, or watched while a dial was pending) is taken over with
    /// `replaceHandler` and its reading resumed; its buffered bytes are relayed soon after.
    /// `onFinish` runs once, with the first error if either side failed.
    public init(_ a: any ByteStream, _ b: any ByteStream, onFinish: @escaping ((any Error)?) -> Void = { _ in }) {
        precondition(a.loop === b.loop, "StreamRelay needs both streams on one loop")
        self.a = a
        self.b = b
        self.onFinish = onFinish
        sides = [Side(relay: self, isA: true), Side(relay: self, isA: false)]
        for (stream, side) in [(a, sides[0]), (b, sides[1])] {
            if stream.isStarted {
                stream.replaceHandler(side)
                stream.resumeReading()
            } else {
                stream.start(handler: side)
            }
        }
    }

    private func stream(isA: Bool) -> any ByteStream { isA ? a : b }
    private func peer(of isA: Bool) -> any ByteStream { isA ? b : a }

    private func forward(from source: any ByteStream, isA: Bool, _ buffer: inout RingBuffer) {
        let destination = peer(of: isA)
        let count = buffer.readableBytes
        buffer.withReadableRegions { first, second in _ = destination.write(first, second) }
        buffer.consume(count)
        if isA { statistics.bytes.aToB += count } else { statistics.bytes.bToA += count }
        if let connection = destination as? Connection {
            statistics.maxQueued = max(statistics.maxQueued, connection.queuedWriteBytes)
        }
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

    private func closed(error: (any Error)?) {
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
