import CSystem
import Glibc

/// Delivers POSIX signals (SIGINT, SIGTERM, …) as ordinary loop events through a signalfd, so a
/// program can shut down gracefully on its loop instead of inside an async-signal handler.
///
/// The signals are blocked in the calling thread; create the source before starting other threads
/// (a `ReactorGroup`) so they inherit the mask and the signal can only arrive through the fd.
public final class SignalSource: IOEventHandler {
    private let loop: EventLoop
    private var fd: Int32
    private var id: SocketID?
    private let handler: (Int32) -> Void

    /// Blocks `signals` for this thread (and threads it starts later) and returns the signal set,
    /// to pass to `EventLoop.watchSignals`.
    public static func block(_ signals: [Int32]) -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        return set
    }

    init(loop: EventLoop, signals: sigset_t, handler: @escaping (Int32) -> Void) throws(SocketError) {
        var set = signals
        let fd = signalfd(-1, &set, Int32(SFD_NONBLOCK | SFD_CLOEXEC))
        guard fd >= 0 else { throw .errno("signalfd") }
        self.loop = loop
        self.fd = fd
        self.handler = handler
        do {
            id = try loop.register(fd: fd, interest: .read, handler: self)
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    func handleIOEvent(_ events: UInt32) {
        var info = signalfd_siginfo()
        while fd >= 0 && Glibc.read(fd, &info, MemoryLayout<signalfd_siginfo>.size) == MemoryLayout<signalfd_siginfo>.size {
            handler(Int32(info.ssi_signo))
        }
    }

    public func close() {
        guard fd >= 0 else { return }
        if let id { loop.deregister(id) }
        Glibc.close(fd)
        fd = -1
    }

    func closeForShutdown() { close() }
}

extension EventLoop {
    /// Calls `handler` on this loop for each of the blocked `signals` that arrives.
    public func watchSignals(_ signals: sigset_t, _ handler: @escaping (Int32) -> Void) throws(SocketError) -> SignalSource {
        assertInLoop()
        return try SignalSource(loop: self, signals: signals, handler: handler)
    }
}
