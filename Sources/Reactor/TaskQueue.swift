import CSystem
import Glibc

/// The only door into a loop from other threads: a multi-producer, single-consumer queue of
/// closures guarded by a `Lock`, plus an eventfd that wakes the loop's epoll_wait. Producers write the eventfd only when
/// no wake-up is already pending, so a burst of submissions costs one write(2).
final class TaskQueue: @unchecked Sendable {  // state is guarded by `lock`; the eventfd is immutable
    private let lock = Lock()
    private var pending: [@Sendable () -> Void] = []
    private var wakeupPending = false
    private var isClosed = false
    let eventFD: Int32

    init() throws(SocketError) {
        let fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard fd >= 0 else { throw .errno("eventfd") }
        eventFD = fd
    }

    deinit {
        if !isClosed { Glibc.close(eventFD) }
    }

    /// Queues `task`; after `close()` the task is dropped (the loop is gone).
    func push(_ task: @escaping @Sendable () -> Void) {
        lock.withLock {
            guard !isClosed else { return }
            pending.append(task)
            // The eventfd is written under the lock so `close()` can never close it in between.
            if !wakeupPending {
                wakeupPending = true
                var one: UInt64 = 1
                _ = Glibc.write(eventFD, &one, 8)
            }
        }
    }

    /// Drops everything queued and refuses new tasks; closes the eventfd.
    func close() {
        lock.withLock {
            isClosed = true
            pending.removeAll()
            Glibc.close(eventFD)
        }
    }

    /// Takes every queued task; called by the loop after its eventfd fired.
    func drain() -> [@Sendable () -> Void] {
        var counter: UInt64 = 0
        _ = Glibc.read(eventFD, &counter, 8)
        return lock.withLock {
            let tasks = pending
            pending.removeAll(keepingCapacity: true)
            wakeupPending = false
            return tasks
        }
    }
}
