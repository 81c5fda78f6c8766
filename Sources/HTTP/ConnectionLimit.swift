import Reactor

/// A cap on open connections shared by the HTTP servers of several loops, so that a server on N
/// loops holds at most `maximum` in all, as on one. Each server counts its sockets here (a lock
/// per accept and close, not per byte); at the cap every member stops accepting (new
/// connections wait in the kernel's backlog), below it they all resume. Members on other loops
/// hear it through their loop's task queue, so each may accept a few more meanwhile.
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

    func join(_ server: HTTPServer) {
        let member = Member(server)
        lock.withLock { members.append(member) }
    }

    func leave(_ server: HTTPServer) {
        let id = ObjectIdentifier(server)
        lock.withLock { members.removeAll { $0.id == id } }
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

/// A member server, reached only on its loop; weak, so a closed server is not kept.
private final class Member: @unchecked Sendable {  // `server` is only dereferenced on `loop`
    let loop: EventLoop
    let id: ObjectIdentifier
    private weak var server: HTTPServer?

    init(_ server: HTTPServer) {
        loop = server.loop
        id = ObjectIdentifier(server)
        self.server = server
    }

    func setAcceptingPaused(_ paused: Bool) { server?.setAcceptingPaused(paused) }
}
