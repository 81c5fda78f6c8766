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
