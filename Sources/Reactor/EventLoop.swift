import CSystem
import Glibc

/// Something registered with a loop's epoll set: a connection, a listener, a pending connect.
protocol IOEventHandler: AnyObject {
    /// Called on the loop thread with the epoll event bits for this registration.
    func handleIOEvent(_ events: UInt32)
    /// The loop is shutting down: release the fd and tell whoever owns this (once).
    func closeForShutdown()
}

/// The identity of one registration: a slot in the loop's socket table plus the slot's generation
/// at registration time. Both travel in epoll's user data, so an event (or a handle) that outlives
/// its registration is recognised as stale even when the kernel has reused the fd number.
struct SocketID: Hashable, Sendable, CustomStringConvertible {
    let slot: UInt32
    let generation: UInt32

    var epollData: UInt64 { UInt64(generation) << 32 | UInt64(slot) }
    init(slot: UInt32, generation: UInt32) { self.slot = slot; self.generation = generation }
    init(epollData: UInt64) { self.init(slot: UInt32(truncatingIfNeeded: epollData), generation: UInt32(epollData >> 32)) }

    var description: String { "\(slot).\(generation)" }
}

/// Epoll interest bits, as the reactor uses them.
struct Interest: OptionSet, Sendable {
    let rawValue: UInt32
    init(rawValue: UInt32) { self.rawValue = rawValue }
    static let read = Interest(rawValue: EPOLLIN.rawValue)
    static let write = Interest(rawValue: EPOLLOUT.rawValue)
}

/// One event loop: one thread, one epoll set, and every piece of state reachable from it —
/// the socket table, timers and the loop-local task list — touched from that thread only.
///
/// **Level-triggered.** A readable socket is read a bounded number of times per wake-up and then
/// the loop moves on, so one busy peer cannot starve the others, and leftover data simply
/// re-reports next time. Turning EPOLLIN off is how back-pressure stops a peer (no drained-or-not
/// bookkeeping that edge-triggering would need). Interest changes cost an epoll_ctl only when
/// the bits really change.
///
/// Other threads reach the loop only through `execute` / `schedule` (an MPSC queue + eventfd).
public final class EventLoop: @unchecked Sendable {  // loop-confined state is checked by assertInLoop(); cross-thread entry points go through TaskQueue
    private struct Slot {
        var generation: UInt32 = 0
        var fd: Int32 = -1
        var interest: UInt32 = 0
        /// Whether the fd is in the epoll set: an fd with no interest is removed, because epoll
        /// reports EPOLLHUP/EPOLLERR whatever the mask, which would spin a paused socket.
        var inEpoll = false
        var handler: IOEventHandler?
    }

    /// Epoll user data for the task queue's eventfd; never a valid slot.
    private static let wakeupToken: UInt64 = UInt64(UInt32.max)
    private static let maxEventsPerWait = 256

    public let name: String
    private let epollFD: Int32
    private let tasks: TaskQueue
    private var slots: [Slot] = []
    private var freeSlots: [UInt32] = []
    private var timers = TimerHeap()
    private var nextTimerID: UInt64 = 1
    private var soon: [() -> Void] = []
    /// Holders whose buffers drained since the last sweep (SpareBufferRelease.swift).
    var spareBuffers = SpareBufferSweep()
    private var stopRequested = false
    /// Bytes this loop's connections read from and wrote to their sockets: shows which thread
    /// moved a transfer's bytes (tests of cross-loop serving) and feeds per-loop metrics.
    public internal(set) var socketBytesRead = 0
    public internal(set) var socketBytesWritten = 0
    private var isShutDown = false
    /// Set once by the loop thread before any task runs (publication ordered by the starter's
    /// semaphore), read-only afterwards.
    private var threadID: pthread_t?
    /// Where every connection of this loop reads while it has no bytes of its own waiting (see
    /// Connection.readFromSocket): one buffer per loop instead of one per connection, so an idle
    /// connection holds no read memory. Loop-confined; used by one read and its delivery at a time.
    private var readScratchStorage: UnsafeMutableRawBufferPointer?
    static let readScratchSize = 256 * 1024

    var readScratch: UnsafeMutableRawBufferPointer {
        if let readScratchStorage { return readScratchStorage }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.readScratchSize, alignment: 16)
        readScratchStorage = buffer
        return buffer
    }

    public init(name: String = "reactor") throws(SocketError) {
        self.name = name
        Self.ignoreBrokenPipes
        let fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard fd >= 0 else { throw .errno("epoll_create1") }
        epollFD = fd
        do {
            tasks = try TaskQueue()
        } catch {
            Glibc.close(fd)
            throw error
        }
        var event = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(u64: Self.wakeupToken))
        guard epoll_ctl(epollFD, EPOLL_CTL_ADD, tasks.eventFD, &event) == 0 else {
            Glibc.close(fd)
            throw .errno("epoll_ctl")
        }
    }

    deinit {
        if !isShutDown { Glibc.close(epollFD) }
        readScratchStorage?.deallocate()
    }

    /// sendfile(2) has no MSG_NOSIGNAL: a peer that hangs up mid-file would kill the process
    /// with SIGPIPE. Ignored once per process, as SwiftNIO does; writes then report EPIPE.
    private static let ignoreBrokenPipes: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    // MARK: Thread confinement

    /// True when called on this loop's thread.
    public var inEventLoop: Bool {
        guard let threadID else { return false }
        return pthread_equal(threadID, pthread_self()) != 0
    }

    /// Loop-confined API guard: a programming error traps in debug builds, costs nothing in release.
    @inline(__always)
    public func assertInLoop(_ function: StaticString = #function) {
        assert(inEventLoop, "\(function) must be called on the loop thread of \(name)")
    }

    // MARK: Cross-thread submission

    /// Runs `task` on the loop thread, from any thread. Tasks submitted after shutdown are dropped.
    public func execute(_ task: @escaping @Sendable () -> Void) {
        tasks.push(task)
    }

    /// Runs `task` on the loop thread after `delay`, from any thread.
    public func schedule(after delay: Duration, _ task: @escaping @Sendable () -> Void) {
        execute { [weak self] in self?.scheduleTimer(after: delay, task) }
    }

    // MARK: Loop-local scheduling

    /// Runs `body` on this loop after the current batch of events: for callbacks that must not
    /// re-enter the caller (close notifications, completions that should always be asynchronous).
    public func runSoon(_ body: @escaping () -> Void) {
        assertInLoop()
        soon.append(body)
    }

    /// Starts a timer; `repeating` re-arms it with that period until cancelled.
    @discardableResult
    public func scheduleTimer(after delay: Duration, repeating interval: Duration? = nil,
                              _ body: @escaping () -> Void) -> TimerID {
        scheduleTimer(deadline: MonotonicClock.now() + delay.nanosecondsClamped, repeating: interval, body)
    }

    /// Starts a timer at an absolute `MonotonicClock` deadline (nanoseconds).
    @discardableResult
    public func scheduleTimer(deadline: UInt64, repeating interval: Duration? = nil,
                              _ body: @escaping () -> Void) -> TimerID {
        assertInLoop()
        let id = nextTimerID
        nextTimerID += 1
        let period = interval.map { max($0.nanosecondsClamped, 1) }
        let slot = timers.insert(id: id, deadline: deadline, interval: period, callback: body)
        return TimerID(raw: id, slot: slot)
    }

    /// Cancels a timer; returns whether it was still pending.
    @discardableResult
    public func cancelTimer(_ id: TimerID) -> Bool {
        assertInLoop()
        return timers.cancel(id: id.raw, slot: id.slot)
    }

    public var pendingTimerCount: Int { timers.count }

    // MARK: Socket table

    /// Adds `fd` to the epoll set with `interest`, dispatching its events to `handler`.
    func register(fd: Int32, interest: Interest, handler: IOEventHandler) throws(SocketError) -> SocketID {
        assertInLoop()
        let slot: UInt32
        if let reused = freeSlots.popLast() {
            slot = reused
        } else {
            slot = UInt32(slots.count)
            slots.append(Slot())
        }
        let id = SocketID(slot: slot, generation: slots[Int(slot)].generation)
        if !interest.isEmpty {
            var event = epoll_event(events: interest.rawValue, data: epoll_data_t(u64: id.epollData))
            guard epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) == 0 else {
                let error = SocketError.errno("epoll_ctl")
                freeSlots.append(slot)
                throw error
            }
        }
        slots[Int(slot)].fd = fd
        slots[Int(slot)].interest = interest.rawValue
        slots[Int(slot)].inEpoll = !interest.isEmpty
        slots[Int(slot)].handler = handler
        return id
    }

    /// Changes a registration's interest; a no-op for a stale id or unchanged bits. An empty
    /// interest takes the fd out of the epoll set until interest returns.
    func setInterest(_ id: SocketID, _ interest: Interest) {
        assertInLoop()
        guard isLive(id), slots[Int(id.slot)].interest != interest.rawValue else { return }
        let fd = slots[Int(id.slot)].fd
        var event = epoll_event(events: interest.rawValue, data: epoll_data_t(u64: id.epollData))
        let operation = interest.isEmpty ? EPOLL_CTL_DEL : slots[Int(id.slot)].inEpoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD
        if epoll_ctl(epollFD, operation, fd, &event) == 0 {
            slots[Int(id.slot)].interest = interest.rawValue
            slots[Int(id.slot)].inEpoll = !interest.isEmpty
        }
    }

    /// Removes a registration (before its fd is closed). The slot's generation moves on, so any
    /// event or handle still carrying the old id is ignored.
    func deregister(_ id: SocketID) {
        assertInLoop()
        guard isLive(id) else { return }
        if slots[Int(id.slot)].inEpoll {
            var unused = epoll_event()
            _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, slots[Int(id.slot)].fd, &unused)
        }
        slots[Int(id.slot)] = Slot(generation: id.generation &+ 1)
        freeSlots.append(id.slot)
    }

    func isLive(_ id: SocketID) -> Bool {
        Int(id.slot) < slots.count && slots[Int(id.slot)].generation == id.generation && slots[Int(id.slot)].handler != nil
    }

    /// Number of live registrations (sockets, listeners, pending connects).
    public var registrationCount: Int { slots.count - freeSlots.count }

    // MARK: Running

    /// Runs the loop on the calling thread until `stop()`; then closes every registration and the
    /// loop's own fds. A loop runs once.
    public func run() {
        // A group's starter adopted the thread already and published the id: written once only.
        if threadID == nil { threadID = pthread_self() }
        runUntilStopped()
        shutDownRegistrations()
    }

    /// Makes the calling thread the loop's thread, runs `setup` on it (listen, connect, watch
    /// signals: loop-confined calls, no crossing threads), then runs the loop until `stop()`.
    /// How a program's main thread becomes its loop.
    public func run(setup: () throws -> Void) rethrows {
        adoptCurrentThread()
        try setup()
        run()
    }

    /// Marks the current thread as the loop's thread without running; `run()` does this itself.
    /// For the group starter, which must publish the id before anyone can submit work.
    func adoptCurrentThread() {
        threadID = pthread_self()
    }

    /// Asks the loop to stop after its current iteration; callable from any thread.
    public func stop() {
        execute { [weak self] in self?.stopRequested = true }
    }

    private func runUntilStopped() {
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: Self.maxEventsPerWait)
        defer { events.deallocate() }
        while !stopRequested {
            let count = epoll_wait(epollFD, events, Int32(Self.maxEventsPerWait), waitTimeoutMilliseconds())
            if count < 0 && errno != EINTR { fatalError("epoll_wait: \(SocketError.errno("epoll_wait"))") }
            for index in 0..<max(0, Int(count)) {
                let event = events[index]
                if event.data.u64 == Self.wakeupToken {
                    for task in tasks.drain() { task() }
                    continue
                }
                let id = SocketID(epollData: event.data.u64)
                // A handler earlier in this batch may have closed this one: skip stale ids.
                guard isLive(id), let handler = slots[Int(id.slot)].handler else { continue }
                handler.handleIOEvent(event.events)
            }
            runDueTimers()
            runSoonTasks()
        }
    }

    private func waitTimeoutMilliseconds() -> Int32 {
        if !soon.isEmpty { return 0 }
        guard let deadline = timers.nextDeadline() else { return -1 }
        let now = MonotonicClock.now()
        if deadline <= now { return 0 }
        // Round up so a timer is never woken for early and re-waited with a zero timeout.
        return Int32(min((deadline - now + 999_999) / 1_000_000, UInt64(Int32.max)))
    }

    private func runDueTimers() {
        guard let deadline = timers.nextDeadline(), deadline <= MonotonicClock.now() else { return }
        for callback in timers.takeExpired(now: MonotonicClock.now()) { callback() }
    }

    private func runSoonTasks() {
        // Tasks queued by these tasks run in the same pass (bounded so a task that keeps
        // re-queueing itself cannot starve I/O).
        var rounds = 0
        while !soon.isEmpty && rounds < 16 {
            let batch = soon
            soon.removeAll(keepingCapacity: true)
            for body in batch { body() }
            rounds += 1
        }
    }

    private func shutDownRegistrations() {
        for task in tasks.drain() { task() }
        for slot in slots.indices {
            slots[slot].handler?.closeForShutdown()
        }
        runSoonTasks()
        soon.removeAll()
        tasks.close()
        Glibc.close(epollFD)
        isShutDown = true
    }
}
