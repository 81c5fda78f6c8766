/// Per-connection limits and socket options; every bound is explicit.
public struct ConnectionOptions: Sendable {
    /// Read ring size allocated on first read and kept when shrinking.
    public var readBufferMinimum = 4096
    /// The read ring never grows past this; a consumer that leaves this much unconsumed stops reading.
    public var readBufferMaximum = 256 * 1024
    /// The first read takes at most this much: a connection's first bytes are usually a
    /// protocol head, and its owner may decide from it (e.g. move the socket to another loop)
    /// before more of the stream lands in this loop's memory.
    public var firstReadMaximum = 4096
    /// `isWritable` turns false when the write queue holds more than this.
    public var writeHighWatermark = 256 * 1024
    /// `isWritable` turns true again when the write queue drains below this.
    public var writeLowWatermark = 64 * 1024
    /// Hard cap on queued bytes: a write past it closes the connection with `.writeQueueFull`.
    public var writeQueueLimit = 64 << 20
    /// How many times one readiness event may read before the loop moves on (fairness).
    public var readsPerEvent = 4
    public var noDelay = true

    public init() {}
}
