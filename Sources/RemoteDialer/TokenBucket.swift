/// A token bucket in bytes: `rate` bytes a second flow in, up to `burst`. Taking may drive it
/// into debt (bytes already read or sent must be paid for); the caller then waits `wait(now:)`
/// until it is back at half a burst, so it toggles a few times a second, not once per read.
/// Pure state; times are monotonic nanoseconds.
struct TokenBucket {
    private(set) var rate: Int
    private(set) var burst: Int
    private(set) var tokens: Int
    private var updatedAt: UInt64

    /// A tenth of a second's worth, at least 64 KiB (one read).
    static func burst(for rate: Int) -> Int { max(rate / 10, 64 << 10) }

    init(rate: Int, now: UInt64) {
        precondition(rate > 0, "rate must be positive")
        self.rate = rate
        burst = Self.burst(for: rate)
        tokens = burst
        updatedAt = now
    }

    var isEmpty: Bool { tokens <= 0 }

    mutating func setRate(_ rate: Int, now: UInt64) {
        refill(now: now)
        self.rate = rate
        burst = Self.burst(for: rate)
        tokens = min(tokens, burst)
    }

    mutating func take(_ bytes: Int, now: UInt64) {
        refill(now: now)
        tokens -= bytes
    }

    /// Nanoseconds until the bucket holds half a burst again.
    func wait(now: UInt64) -> UInt64 {
        let missing = burst / 2 - tokens
        guard missing > 0 else { return 0 }
        return UInt64((Double(missing) / Double(rate) * 1e9).rounded(.up))
    }

    mutating func refill(now: UInt64) {
        guard now > updatedAt else { return }
        let earned = Double(now - updatedAt) * Double(rate) / 1e9
        tokens = Int(min(Double(burst), Double(tokens) + earned))
        updatedAt = now
    }
}
