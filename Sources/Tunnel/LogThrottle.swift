/// At most one log line per `interval` for one kind of event a peer can repeat at will (refused
/// Connects, Data for unknown ids): the rest are counted and the count goes out with the next
/// line, so a flood costs a bounded amount of log.
public struct LogThrottle: Sendable {
    public let interval: UInt64
    private var nextAllowedAt: UInt64 = 0
    private var suppressed = 0

    public init(interval: Duration = .seconds(1)) {
        self.interval = interval.nanosecondsClamped
    }

    /// nil: stay quiet. Otherwise log now, mentioning how many were suppressed since the last line.
    public mutating func admit(now: UInt64) -> Int? {
        guard now >= nextAllowedAt else {
            suppressed += 1
            return nil
        }
        nextAllowedAt = now &+ interval
        defer { suppressed = 0 }
        return suppressed
    }
}
