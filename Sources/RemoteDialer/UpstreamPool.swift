import Reactor
import Tunnel

/// Idle kept-alive tunnelled connections of the `/client/...` route, so that a request reuses
/// one to the same target instead of dialling (a Connect, and a new TCP connection from the
/// client to the target) every time: Go's `http.Transport` idle pool, for our route.
///
/// One per `RemoteDialerServer`, confined to its loop (no locks). Connections are grouped by
/// `Target` (client key, scheme, host); each belongs to exactly one session, and one whose
/// session ended is closed (the session ends its connections) and never handed out
/// (`TunnelConnection.canCarryMore` is checked again when taking one).
///
/// While idle, a connection's handler is an `IdleUpstream`: any byte, EOF, close or error takes
/// it out of the pool and closes it (a byte nobody asked for is never read as the next
/// response), and a timer closes it after `idleTimeout`. Bounded per target and in total; the
/// oldest idle connection makes room when the total is reached.
final class UpstreamPool {
    /// Hashed once, when made: a request looks its target up four times (take, and put's
    /// count and append), and hashing three strings each time cost about 2k instructions.
    struct Target: Hashable {
        let clientKey: String
        let scheme: String
        let address: String
        private let precomputedHash: Int

        init(clientKey: String, scheme: String, address: String) {
            self.clientKey = clientKey
            self.scheme = scheme
            self.address = address
            var hasher = Hasher()
            hasher.combine(clientKey)
            hasher.combine(scheme)
            hasher.combine(address)
            precomputedHash = hasher.finalize()
        }

        func hash(into hasher: inout Hasher) { hasher.combine(precomputedHash) }
    }

    let loop: EventLoop
    let maxIdlePerTarget: Int
    let maxIdleTotal: Int
    let idleTimeout: Duration
    /// Oldest first; taken from the end (the most recently used is the least likely to have
    /// been closed by its target).
    private var idle: [Target: [IdleUpstream]] = [:]
    /// Idle connections held now, all targets together.
    private(set) var count = 0
    /// Requests that took an idle connection instead of dialling.
    private(set) var reused = 0
    private var nextSequence: UInt64 = 0
    /// After `closeAll` (drain, shutdown) connections are no longer kept.
    private var stopped = false

    init(loop: EventLoop, maxIdlePerTarget: Int, maxIdleTotal: Int, idleTimeout: Duration) {
        self.loop = loop
        self.maxIdlePerTarget = maxIdlePerTarget
        self.maxIdleTotal = maxIdleTotal
        self.idleTimeout = idleTimeout
    }

    /// False when pooling is off (a per-target cap of 0).
    var isEnabled: Bool { maxIdlePerTarget > 0 && maxIdleTotal > 0 }

    /// Idle connections held for `target`.
    func idleCount(for target: Target) -> Int { idle[target]?.count ?? 0 }

    /// An idle connection to `target`, taken out of the pool (its handler still the pool's
    /// until the caller replaces it, at once); nil when there is none.
    func take(_ target: Target) -> TunnelConnection? {
        loop.assertInLoop()
        while let entry = idle[target]?.popLast() {
            if idle[target]?.isEmpty == true { idle[target] = nil }
            count -= 1
            entry.detach()
            if entry.connection.canCarryMore {
                reused += 1
                return entry.connection
            }
            entry.connection.close()
        }
        return nil
    }

    /// Takes over `stream`, which just ended a response and can carry another request (the
    /// caller checked that), or closes it when the caps leave no room.
    func put(_ stream: any ByteStream, for target: Target) {
        loop.assertInLoop()
        guard isEnabled, !stopped, let connection = stream as? TunnelConnection, connection.canCarryMore,
              idleCount(for: target) < maxIdlePerTarget else { return stream.close() }
        if count >= maxIdleTotal { evictOldest() }
        guard count < maxIdleTotal else { return stream.close() }
        nextSequence += 1
        let entry = IdleUpstream(connection: connection, target: target, sequence: nextSequence, pool: self)
        idle[target, default: []].append(entry)
        count += 1
        entry.start(timeout: idleTimeout)
    }

    /// Closes every idle connection and keeps none from now on (drain, shutdown).
    func closeAll() {
        stopped = true
        let all = idle.values.joined()
        idle.removeAll()
        count = 0
        for entry in all {
            entry.detach()
            entry.connection.close()
        }
    }

    /// `entry` closed or saw something while idle: out of the pool (if still in it).
    fileprivate func remove(_ entry: IdleUpstream) {
        guard let index = idle[entry.target]?.firstIndex(where: { $0 === entry }) else { return }
        idle[entry.target]?.remove(at: index)
        if idle[entry.target]?.isEmpty == true { idle[entry.target] = nil }
        count -= 1
        entry.detach()
    }

    private func evictOldest() {
        guard let oldest = idle.values.compactMap(\.first).min(by: { $0.sequence < $1.sequence }) else { return }
        remove(oldest)
        oldest.connection.close()
    }
}

/// The handler of a tunnelled connection while it waits in the pool.
private final class IdleUpstream: StreamHandler {
    let connection: TunnelConnection
    let target: UpstreamPool.Target
    let sequence: UInt64
    /// Weak: the pool (and its server) may go first; the connection then just closes on its own.
    private weak var pool: UpstreamPool?
    private var timer: TimerID?

    init(connection: TunnelConnection, target: UpstreamPool.Target, sequence: UInt64, pool: UpstreamPool) {
        self.connection = connection
        self.target = target
        self.sequence = sequence
        self.pool = pool
    }

    func start(timeout: Duration) {
        connection.replaceHandler(self)
        // The exchange may have paused reading; idle, we must see any byte or EOF at once.
        connection.resumeReading()
        timer = connection.loop.scheduleTimer(after: timeout) { [weak self] in
            guard let self else { return }
            timer = nil
            evict()
        }
    }

    /// Out of the pool: the timer stops; the connection goes on (taken) or is closed by the caller.
    func detach() {
        if let timer { connection.loop.cancelTimer(timer) }
        timer = nil
        pool = nil
    }

    private func evict() {
        pool?.remove(self)
        detach()
        connection.close()
    }

    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        // Nobody asked: a late part of the last response, or garbage. Never the next answer.
        buffer.consume(buffer.readableBytes)
        evict()
    }

    func streamDidReadEOF(_ stream: any ByteStream) { evict() }

    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {
        pool?.remove(self)
        detach()
    }
}
