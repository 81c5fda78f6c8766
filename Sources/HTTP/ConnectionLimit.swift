import Reactor

/// Something that accepts connections and can hold off for a while: an HTTP server, a listener.
public protocol AcceptingMember: AnyObject {
    var loop: EventLoop { get }
    func setAcceptingPaused(_ paused: Bool)
}

extension Listener: AcceptingMember {
    public func setAcceptingPaused(_ paused: Bool) {
        if paused { pauseAccepting() } else { resumeAccepting() }
    }
}

/// A cap on open connections shared by every way into a server (the HTTP servers of several
/// loops, the SOCKS5 and port-forward listeners), so that a server holds at most `maximum` in
/// all, as one listener on one loop would. Each member counts its sockets here (a lock per
/// accept and close, not per byte); at the cap every member stops accepting (new connections
/// wait in the kernel's backlog), below it they all resume. Members on other loops hear it
/// through their loop's task queue, so each may accept a few more meanwhile.
public final class ConnectionLimit: Sendable {
    public let maximum: Int
    private let lock = Lock()
    private nonisolated(unsafe) var open = 0  // guarded by `lock`, as are the two below
    private nonisolated(unsafe) var atCap = false
    private nonisolated(unsafe) var members: [Member] = []

    public init(maximum: Int) {
        precondition(maximum > 0, "a connection limit must be positive")
        self.maximum = maximum
    }

    /// Connections open in all member servers.
    public var openConnections: Int { lock.withLock { open } }

    /// Adds a member, paused at once if the cap is reached. Call it on the member's loop.
    public func join(_ accepting: some AcceptingMember) {
        let member = Member(accepting)
        let paused = lock.withLock {
            members.append(member)
            return atCap
        }
        if paused { accepting.setAcceptingPaused(true) }
    }

    public func leave(_ accepting: some AcceptingMember) {
        let id = ObjectIdentifier(accepting)
        lock.withLock { members.removeAll { $0.id == id } }
    }

    /// Counts `connection` (just accepted, not started) until it closes: the limit takes the
    /// connection's `onClosed`.
    public func track(_ connection: Connection) {
        precondition(connection.onClosed == nil, "a tracked connection's onClosed is the limit's")
        opened()
        connection.onClosed = { [self] in closed() }
    }

    func opened() { change(+1) }
    func closed() { change(-1) }

    private func change(_ delta: Int) {
        let (flip, everyone): (Bool?, [Member]) = lock.withLock {
            open += delta
            let now = open >= maximum
            guard now != atCap else { return (nil, []) }
            atCap = now
            return (now, members)
        }
        guard let pause = flip else { return }
        for member in everyone {
            if member.loop.inEventLoop { member.setAcceptingPaused(pause) } else { member.loop.execute { member.setAcceptingPaused(pause) } }
        }
    }
}

/// A member, reached only on its loop; weak, so a closed one is not kept.
private final class Member: @unchecked Sendable {  // `accepting` is only dereferenced on `loop`
    let loop: EventLoop
    let id: ObjectIdentifier
    private weak var accepting: (any AcceptingMember)?

    init(_ accepting: any AcceptingMember) {
        loop = accepting.loop
        id = ObjectIdentifier(accepting)
        self.accepting = accepting
    }

    func setAcceptingPaused(_ paused: Bool) { accepting?.setAcceptingPaused(paused) }
}
