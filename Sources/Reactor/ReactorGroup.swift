import Dispatch
import Glibc
import Synchronization

/// How a group spreads accepted connections over its loops.
public enum AcceptDistribution: Sendable {
    /// One listener on the first loop hands each accepted socket to the next loop, round-robin.
    case handOff
    /// One SO_REUSEPORT listener per loop; the kernel spreads connections by flow hash.
    case reusePort
}

/// A fixed set of event loops, one thread each (default: one per core).
public final class ReactorGroup: Sendable {
    public let loops: [EventLoop]
    private let threads: Mutex<[pthread_t]>
    private let nextIndex = Atomic<Int>(0)

    public init(loopCount: Int = ReactorGroup.coreCount, name: String = "reactor") throws(SocketError) {
        precondition(loopCount > 0)
        var loops: [EventLoop] = []
        for index in 0..<loopCount { loops.append(try EventLoop(name: "\(name)-\(index)")) }
        self.loops = loops
        var started: [pthread_t] = []
        for loop in loops {
            let ready = DispatchSemaphore(value: 0)
            let body = ThreadBody {
                loop.adoptCurrentThread()
                ready.signal()
                loop.run()
            }
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue().run()
                return nil
            }, Unmanaged.passRetained(body).toOpaque())
            precondition(rc == 0, "pthread_create failed: \(rc)")
            ready.wait()
            started.append(thread)
        }
        threads = Mutex(started)
    }

    public static var coreCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// The next loop, round-robin: where to put a new independent unit of work.
    public func next() -> EventLoop {
        loops[nextIndex.wrappingAdd(1, ordering: .relaxed).oldValue % loops.count]
    }

    /// Listens on `address` and creates every accepted connection on one of the group's loops,
    /// passing it to `onAccept` on that loop (which starts it with `connection.start(handler:)`).
    /// Blocks until the listener(s) are bound; returns the group listener.
    public func listen(on address: SocketAddress, options: ListenOptions = ListenOptions(),
                       distribution: AcceptDistribution = .handOff,
                       onAccept: @escaping @Sendable (Connection) -> Void) throws(SocketError) -> GroupListener {
        switch distribution {
        case .handOff:
            let acceptor = loops[0]
            let listener = try acceptor.runBlocking { () throws(SocketError) in
                try Listener(loop: acceptor, address: address, options: options) { [self] fd in
                    let target = self.next()
                    if target === acceptor {
                        onAccept(Connection(loop: acceptor, fd: fd, options: options.connection))
                    } else {
                        target.execute { onAccept(Connection(loop: target, fd: fd, options: options.connection)) }
                    }
                }
            }
            return GroupListener(address: listener.address, listeners: [LoopBound(listener, loop: acceptor, unchecked: ())])
        case .reusePort:
            var options = options
            options.reusePort = true
            var bound = address
            var listeners: [LoopBound<Listener>] = []
            do {
                for loop in loops {
                    let listener = try loop.runBlocking { () throws(SocketError) in
                        try loop.listen(on: bound, options: options, onAccept: onAccept)
                    }
                    bound = listener.address  // later loops bind the port the first one got
                    listeners.append(LoopBound(listener, loop: loop, unchecked: ()))
                }
            } catch {
                GroupListener(address: bound, listeners: listeners).close()
                throw error
            }
            return GroupListener(address: bound, listeners: listeners)
        }
    }

    /// Stops every loop: listeners and connections are closed (handlers hear `.closed`), threads
    /// joined, epoll and eventfd fds released. Must not be called from one of the group's loops.
    public func shutdown() {
        precondition(!loops.contains { $0.inEventLoop }, "shutdown() called from a loop of the group")
        let joined = threads.withLock { threads -> [pthread_t] in
            let all = threads
            threads.removeAll()
            return all
        }
        guard !joined.isEmpty else { return }
        for loop in loops { loop.stop() }
        for thread in joined { pthread_join(thread, nil) }
    }
}

/// The listeners a group opened for one address; closing it stops accepting on every loop.
public struct GroupListener: Sendable {
    public let address: SocketAddress
    let listeners: [LoopBound<Listener>]

    /// Stops accepting; blocks until every listener is closed. Call it off the group's loops.
    public func close() {
        for bound in listeners {
            bound.loop.runBlocking { bound.value.close() }
        }
    }
}

/// A thread entry point (pthread_create takes a C function and one pointer).
private final class ThreadBody: @unchecked Sendable {  // handed to exactly one new thread, never shared
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

extension EventLoop {
    /// Runs `body` on the loop and waits for its result; for setup from outside the loop.
    /// Runs in place when already on the loop.
    public func runBlocking<T, E: Error>(_ body: @escaping () throws(E) -> T) throws(E) -> T {
        if inEventLoop { return try body() }
        let box = ResultBox<T, E>()
        let done = DispatchSemaphore(value: 0)
        let task = UncheckedSendable(body)
        execute {
            box.result = Result { () throws(E) -> T in try task.value() }
            done.signal()
        }
        done.wait()
        guard let result = box.result else { preconditionFailure("loop \(name) shut down during runBlocking") }
        return try result.get()
    }
}

/// Holds a blocking call's result; written by the loop before the semaphore signal, read after the wait.
private final class ResultBox<T, E: Error>: @unchecked Sendable {  // accesses are ordered by a semaphore
    var result: Result<T, E>?
}

/// Moves a non-Sendable value across to a loop that is the only one to use it.
struct UncheckedSendable<Value>: @unchecked Sendable {  // the sender gives the value up; only the receiving loop uses it
    let value: Value
    init(_ value: Value) { self.value = value }
}

extension LoopBound {
    /// For values created on `loop` by a blocking call and carried back to the caller's thread
    /// only to be handed to `loop` again.
    init(_ value: Value, loop: EventLoop, unchecked: Void) {
        self.init(uncheckedValue: value, loop: loop)
    }
}
