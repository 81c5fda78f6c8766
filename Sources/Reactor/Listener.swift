import CSystem
import Glibc

/// Options for a listening socket.
public struct ListenOptions: Sendable {
    public var backlog: Int32 = 1024
    public var reuseAddress = true
    /// Lets several sockets (one per loop) bind the same port; the kernel spreads connections.
    public var reusePort = false
    /// For an IPv6 address: accept IPv6 only (no v4-mapped connections).
    public var ipv6Only = false
    /// Options for every accepted connection.
    public var connection = ConnectionOptions()
    /// Accepts per readiness event before the loop moves on.
    public var acceptsPerEvent = 64

    public init() {}
}

/// A listening TCP socket on one loop. Accepted sockets are handed to `onAccept` as raw fds, so
/// the owner decides which loop adopts each one.
public final class Listener: IOEventHandler {
    public let loop: EventLoop
    /// The bound address (with the real port when asked for port 0).
    public let address: SocketAddress
    private let options: ListenOptions
    private var fd: Int32
    private var id: SocketID?
    private let onAccept: (Int32) -> Void
    /// Set while accepting is suspended after running out of fds (EMFILE/ENFILE).
    private var backoffTimer: TimerID?
    /// Set while the owner holds accepting off (e.g. at its connection limit).
    public private(set) var isAcceptingPaused = false

    init(loop: EventLoop, address: SocketAddress, options: ListenOptions, onAccept: @escaping (Int32) -> Void) throws(SocketError) {
        loop.assertInLoop()
        let fd = try Syscall.tcpSocket(family: address.family).get()
        if options.reuseAddress { Syscall.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1) }
        if options.reusePort { Syscall.setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1) }
        if address.family == AF_INET6 { Syscall.setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, options.ipv6Only ? 1 : 0) }
        let bound = address.withSockAddr { bind(fd, $0, $1) }
        guard bound == 0, Glibc.listen(fd, options.backlog) == 0 else {
            let error = SocketError.errno(bound == 0 ? "listen" : "bind")
            Glibc.close(fd)
            throw error
        }
        self.loop = loop
        self.fd = fd
        self.options = options
        self.onAccept = onAccept
        self.address = Syscall.localAddress(fd) ?? address
        do {
            id = try loop.register(fd: fd, interest: .read, handler: self)
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    public var isOpen: Bool { fd >= 0 }

    func handleIOEvent(_ events: UInt32) {
        for _ in 0..<options.acceptsPerEvent {
            guard fd >= 0, !isAcceptingPaused else { return }
            let accepted = csystem_accept4(fd, nil, nil, Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue))
            if accepted >= 0 {
                onAccept(accepted)
                continue
            }
            switch errno {
            case EINTR, ECONNABORTED, EPROTO: continue
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                // Out of resources: stop accepting for a moment instead of spinning on a level-
                // triggered listener that stays readable.
                suspendAccepting()
                return
            default:
                return  // EAGAIN: the backlog is empty
            }
        }
    }

    private func suspendAccepting() {
        guard let id, backoffTimer == nil else { return }
        loop.setInterest(id, [])
        backoffTimer = loop.scheduleTimer(after: .milliseconds(100)) { [weak self] in
            guard let self else { return }
            self.backoffTimer = nil
            self.updateInterest()
        }
    }

    /// Stops accepting (EPOLLIN off): new connections wait in the kernel's backlog.
    public func pauseAccepting() {
        loop.assertInLoop()
        isAcceptingPaused = true
        updateInterest()
    }

    public func resumeAccepting() {
        loop.assertInLoop()
        isAcceptingPaused = false
        updateInterest()
    }

    private func updateInterest() {
        guard fd >= 0, let id else { return }
        loop.setInterest(id, isAcceptingPaused || backoffTimer != nil ? [] : .read)
    }

    /// Stops listening; already accepted connections are unaffected.
    public func close() {
        loop.assertInLoop()
        guard fd >= 0 else { return }
        if let backoffTimer { loop.cancelTimer(backoffTimer) }
        if let id { loop.deregister(id) }
        Glibc.close(fd)
        fd = -1
    }

    func closeForShutdown() { close() }
}

extension EventLoop {
    /// Listens on `address`; every accepted connection is created on this loop and passed to
    /// `onAccept`, which starts it (`connection.start(handler:)`), possibly later.
    public func listen(on address: SocketAddress, options: ListenOptions = ListenOptions(),
                       onAccept: @escaping (Connection) -> Void) throws(SocketError) -> Listener {
        try Listener(loop: self, address: address, options: options) { [weak self] fd in
            guard let self else { Glibc.close(fd); return }  // no loop to own the socket
            onAccept(Connection(loop: self, fd: fd, options: options.connection))
        }
    }
}
