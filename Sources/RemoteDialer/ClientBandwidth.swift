import Reactor

/// One client id's bandwidth limit, both directions separately, shared by all its sessions:
/// when a direction's bucket runs dry every session of the client stops reading from the
/// client (EPOLLIN off) or stops taking data for it (its transport reports unwritable, which
/// pauses the producers), until a timer sees the bucket refilled. Back-pressure, no buffering.
final class ClientBandwidth {
    enum Direction: CaseIterable {
        case toClient
        case fromClient
    }

    private let loop: EventLoop
    private var buckets: [Direction: TokenBucket] = [:]
    private var refillTimers: [Direction: TimerID] = [:]
    /// The client's sessions' transports (an array: a one-entry dictionary costs twice as much,
    /// and a client has a few sessions).
    private var transports: [Weak] = []

    private struct Weak {
        weak var transport: ThrottledTransport?
    }

    /// Bytes per second each way; nil: unlimited.
    private(set) var rate: Int?

    init(loop: EventLoop, rate: Int?) {
        self.loop = loop
        setRate(rate)
    }

    func setRate(_ rate: Int?) {
        guard rate != self.rate || buckets.isEmpty else { return }
        self.rate = rate
        let now = MonotonicClock.now()
        for direction in Direction.allCases {
            if let rate {
                if buckets[direction] == nil { buckets[direction] = TokenBucket(rate: rate, now: now) } else { buckets[direction]!.setRate(rate, now: now) }
            } else {
                buckets[direction] = nil
                refilled(direction)
            }
        }
    }

    func register(_ transport: ThrottledTransport) {
        transports.removeAll { $0.transport == nil }
        transports.append(Weak(transport: transport))
    }

    func isPaused(_ direction: Direction) -> Bool { refillTimers[direction] != nil }

    /// Accounts `bytes` that went `direction`; an emptied bucket pauses the client's sessions.
    func charge(_ direction: Direction, bytes: Int) {
        guard rate != nil, var bucket = buckets[direction] else { return }
        let now = MonotonicClock.now()
        bucket.take(bytes, now: now)
        buckets[direction] = bucket
        guard bucket.isEmpty, refillTimers[direction] == nil else { return }
        refillTimers[direction] = loop.scheduleTimer(deadline: now &+ bucket.wait(now: now)) { [weak self] in
            self?.refillTimers[direction] = nil
            self?.refilled(direction)
        }
        for entry in transports { entry.transport?.bandwidthDidChange(direction, paused: true) }
    }

    private func refilled(_ direction: Direction) {
        if let timer = refillTimers.removeValue(forKey: direction) { loop.cancelTimer(timer) }
        for entry in transports { entry.transport?.bandwidthDidChange(direction, paused: false) }
    }
}
