import Glibc

/// A pthread mutex: the reactor's lock for the few cross-thread hand-offs (never the data path).
/// Chosen over Synchronization.Mutex because that one reports false races under ThreadSanitizer.
public final class Lock: @unchecked Sendable {  // the mutex itself is the synchronisation
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inline(__always)
    public func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
