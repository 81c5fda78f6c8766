import Glibc

/// The bytes a socket could not take yet, kept in a ring so a flush gathers at most two regions
/// with one `sendmsg`, with high/low watermark crossing detection for back-pressure.
struct WriteQueue: ~Copyable {
    private var ring: RingBuffer
    let highWatermark: Int
    let lowWatermark: Int
    /// False from the moment queued bytes exceed the high watermark until they drop below the low one.
    private(set) var isWritable = true

    init(options: ConnectionOptions) {
        ring = RingBuffer(minimumCapacity: 4096, maximumCapacity: options.writeQueueLimit)
        highWatermark = options.writeHighWatermark
        lowWatermark = min(options.writeLowWatermark, options.writeHighWatermark)
    }

    var queuedBytes: Int { ring.readableBytes }
    /// The ring's storage: what the queue holds in memory, drained or not.
    var capacity: Int { ring.capacity }
    var isEmpty: Bool { ring.isEmpty }

    /// Queues `bytes`; false if the hard limit would be exceeded (nothing queued then).
    mutating func append(_ bytes: UnsafeRawBufferPointer) -> Bool {
        ring.append(bytes)
    }

    /// Writes as much as the socket takes of the first `limit` queued bytes; returns bytes
    /// written, 0 on EAGAIN, or the errno.
    mutating func flush(to fd: Int32, limit: Int = .max) -> Result<Int, SocketError> {
        let result = ring.withReadableRegions(from: 0, count: min(limit, ring.readableBytes)) { first, second in
            Syscall.send(fd, first, second)
        }
        if case .success(let written) = result { ring.consume(written) }
        return result
    }

    /// Frees the ring's storage if nothing is queued (kept until then: see `SpareBufferSweep`).
    mutating func releaseIfEmpty() {
        if ring.isEmpty { ring.shrink(releaseWhenEmpty: true) }
    }

    /// Re-evaluates the watermarks; returns the new writability when it changed.
    mutating func writabilityChange() -> Bool? {
        if isWritable && ring.readableBytes > highWatermark {
            isWritable = false
            return false
        }
        if !isWritable && ring.readableBytes < lowWatermark {
            isWritable = true
            return true
        }
        return nil
    }

    mutating func discardAll() {
        ring.discardAll()
    }
}
