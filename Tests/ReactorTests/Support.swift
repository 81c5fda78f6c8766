import Dispatch
import Glibc
import Reactor
@_exported import TestSupport

/// A position-independent checksum (Fletcher over 64-bit words, bytes carried across calls), so
/// the same stream gives the same value however it was chunked.
struct StreamChecksum: Equatable {
    private var a: UInt64 = 0
    private var b: UInt64 = 0
    private var pending: UInt64 = 0
    private var pendingCount = 0
    private(set) var count = 0

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var index = 0
        while pendingCount != 0 && index < bytes.count {
            absorb(bytes[index])
            index += 1
        }
        while index + 8 <= bytes.count {
            mix(bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            index += 8
        }
        while index < bytes.count {
            absorb(bytes[index])
            index += 1
        }
        count += bytes.count
    }

    private mutating func absorb(_ byte: UInt8) {
        pending |= UInt64(byte) << (8 * UInt64(pendingCount))
        pendingCount += 1
        if pendingCount == 8 {
            mix(pending)
            pending = 0
            pendingCount = 0
        }
    }

    private mutating func mix(_ word: UInt64) {
        a &+= word
        b &+= a
    }

    var value: [UInt64] { [a, b, pending, UInt64(pendingCount), UInt64(count)] }
}

/// Deterministic pseudo-random bytes (xorshift64*), filled a word at a time.
struct RandomBytes {
    private var state: UInt64

    init(seed: UInt64) { state = seed | 1 }

    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        var index = 0
        while index < buffer.count {
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            var word = state &* 2685821657736338717
            let n = min(8, buffer.count - index)
            withUnsafeBytes(of: &word) { buffer.baseAddress!.advanced(by: index).copyMemory(from: $0.baseAddress!, byteCount: n) }
            index += n
        }
    }
}


/// A one-shot value handed from a loop thread to a waiting test thread.
final class Outcome<Value: Sendable>: @unchecked Sendable {  // guarded by the semaphore's ordering and `lock`
    private let semaphore = DispatchSemaphore(value: 0)
    private let lock = PThreadLock()
    private var stored: Value?

    func set(_ value: Value) {
        lock.withLock {
            guard stored == nil else { return }
            stored = value
            semaphore.signal()
        }
    }

    /// Waits up to `seconds`; nil on timeout.
    func wait(seconds: Double = 60) -> Value? {
        guard semaphore.wait(timeout: .now() + seconds) == .success else { return nil }
        return lock.withLock { stored }
    }
}

/// A pthread mutex (Foundation-free).
final class PThreadLock: @unchecked Sendable {  // the mutex itself is the synchronisation
    private let mutex: UnsafeMutablePointer<pthread_mutex_t> = {
        let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(m, nil)
        return m
    }()
    deinit { pthread_mutex_destroy(mutex); mutex.deallocate() }
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}


/// Blocking loopback client socket for tests that need a peer outside the reactor.
func blockingConnect(port: UInt16) -> Int32 {
    guard let fd = connectLoopback(port: port) else { preconditionFailure("connect failed: \(errno)") }
    return fd
}

/// Runs `body` on another thread; returns a semaphore signalled when it is done.
func spawnThread(_ body: @escaping @Sendable () -> Void) -> DispatchSemaphore {
    let done = DispatchSemaphore(value: 0)
    Thread.detach { body(); done.signal() }
    return done
}

/// A dedicated pthread, for blocking peers that must not occupy Dispatch's limited pool.
enum Thread {
    private final class Body: @unchecked Sendable {  // owned by exactly one new thread
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    static func detach(_ body: @escaping @Sendable () -> Void) {
        var thread = pthread_t()
        let box = Unmanaged.passRetained(Body(body)).toOpaque()
        pthread_create(&thread, nil, { raw in
            Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue().run()
            return nil
        }, box)
        pthread_detach(thread)
    }
}
