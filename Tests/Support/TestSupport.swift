import Dispatch
import Glibc
import Reactor

// Helpers shared by the test targets (a plain library target: test targets cannot depend on
// each other).

/// Echoes everything back, pausing its reads while its own write side is full.
public final class EchoHandler: StreamHandler {
    public init() {}
    public func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        buffer.withReadableRegions { a, b in _ = stream.write(a, b) }
        buffer.consume(buffer.readableBytes)
        if !stream.isWritable { stream.pauseReading() }
    }
    public func streamWritabilityDidChange(_ stream: any ByteStream, isWritable: Bool) {
        if isWritable { stream.resumeReading() }
    }
    public func streamDidReadEOF(_ stream: any ByteStream) { stream.closeAfterFlush() }
    public func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {}
}

/// Number of open file descriptors of this process.
public func openFileDescriptorCount() -> Int {
    guard let dir = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(dir) }
    var count = 0
    while readdir(dir) != nil { count += 1 }
    return count - 3  // ".", "..", and the directory stream itself
}

/// Whether this process still holds the TCP socket between `localPort` and `remotePort`
/// (loopback): its inode from /proc/net/tcp{,6}, matched against our fds. Unlike a descriptor
/// count, other tests' sockets closing late cannot disturb it.
public func holdsTCPSocket(localPort: UInt16, remotePort: UInt16) -> Bool {
    var inodes = Set<String>()
    if let dir = opendir("/proc/self/fd") {
        defer { closedir(dir) }
        var target = [CChar](repeating: 0, count: 64)
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            let count = readlink("/proc/self/fd/\(name)", &target, target.count - 1)
            guard count > 0 else { continue }
            let link = String(decoding: target[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if link.hasPrefix("socket:[") { inodes.insert(String(link.dropFirst(8).dropLast())) }
        }
    }
    func port(_ field: Substring) -> UInt16? { field.split(separator: ":").last.flatMap { UInt16($0, radix: 16) } }
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        guard let file = fopen(table, "r") else { continue }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0, let line {
            let fields = String(cString: line).split(separator: " ")
            guard fields.count > 9, port(fields[1]) == localPort, port(fields[2]) == remotePort else { continue }
            if inodes.contains(String(fields[9])) { return true }
        }
    }
    return false
}

/// The open descriptor count once it has held still for 200 ms (at most `seconds`): a baseline
/// not disturbed by an earlier test's loops and sockets still being released.
public func settledFileDescriptorCount(seconds: Double = 3) -> Int {
    var last = openFileDescriptorCount()
    var steady = 0
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while steady < 4 && ContinuousClock.now < deadline {
        usleep(50_000)
        let now = openFileDescriptorCount()
        steady = now == last ? steady + 1 : 0
        last = now
    }
    return last
}

/// Ways to cut `bytes` into pieces: one byte at a time, and in two at every cut point.
public func cuttings(_ bytes: [UInt8]) -> [[[UInt8]]] {
    var result: [[[UInt8]]] = [bytes.map { [$0] }]
    for cut in 0...bytes.count { result.append([Array(bytes[..<cut]), Array(bytes[cut...])]) }
    return result
}

/// A blocking loopback TCP connection to `port`, or nil if nothing accepts there.
public func connectLoopback(port: UInt16) -> Int32? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else { close(fd); return nil }
    return fd
}

/// A loopback port nobody listens on right now (bound, read, released).
public func freePort() -> UInt16 {
    let (fd, port) = listenOnLoopback()
    close(fd)
    return port
}

/// A listening socket on 127.0.0.1 with a port the kernel picked.
public func listenOnLoopback() -> (fd: Int32, port: UInt16) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    listen(fd, 1024)
    return (fd, UInt16(bigEndian: address.sin_port))
}

/// The test byte pattern: byte `i` of a stream is `i % 251`, so any position can be checked.
public enum TestPattern {
    static let chunk: [UInt8] = (0..<(64 << 10)).map(byte(at:))

    public static func byte(at position: Int) -> UInt8 { UInt8(position % 251) }

    /// Writes pattern bytes `sent..<total` while `stream` is writable; returns the new `sent`.
    public static func write(to stream: any ByteStream, from sent: Int, upTo total: Int) -> Int {
        var sent = sent
        while sent < total && stream.isWritable {
            let offset = sent % 251  // the chunk is 64 KiB; stay below its end while keeping the phase
            let count = min(total - sent, chunk.count - 251)
            chunk.withUnsafeBytes { _ = stream.write(UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + count)])) }
            sent += count
        }
        return sent
    }
}

/// Polls `condition` until it holds or `seconds` pass; false on timeout. For waiting on a state
/// another thread or process reaches (never a fixed sleep standing in for it). Polls every
/// millisecond at first, backing off to every 50 ms.
public func waitUntil(seconds: Double = 30, _ condition: () -> Bool) -> Bool {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    let deadline = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9 + seconds
    var pause: UInt32 = 1_000
    while !condition() {
        clock_gettime(CLOCK_MONOTONIC, &now)
        if Double(now.tv_sec) + Double(now.tv_nsec) / 1e9 > deadline { return false }
        usleep(pause)
        pause = min(pause * 2, 50_000)
    }
    return true
}

/// A value handed once from one thread (usually a loop's) to a waiting test thread; later
/// values are ignored.
public final class OneShot<Value>: @unchecked Sendable {  // `lock` guards `stored`; the semaphore orders set before wait
    private let semaphore = DispatchSemaphore(value: 0)
    private let lock = PThreadLock()
    private var stored: Value?

    public init() {}

    public func set(_ value: Value) {
        lock.withLock {
            guard stored == nil else { return }
            stored = value
            semaphore.signal()
        }
    }

    /// Waits up to `seconds`; nil on timeout.
    public func wait(seconds: Double = 60) -> Value? {
        guard semaphore.wait(timeout: .now() + seconds) == .success else { return nil }
        semaphore.signal()  // a second wait sees the value too
        return lock.withLock { stored }
    }
}

/// A pthread mutex (Foundation-free; clean under ThreadSanitizer, unlike `Mutex`).
public final class PThreadLock: @unchecked Sendable {  // the mutex itself is the synchronisation
    private let mutex: UnsafeMutablePointer<pthread_mutex_t> = {
        let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(m, nil)
        return m
    }()
    public init() {}
    deinit { pthread_mutex_destroy(mutex); mutex.deallocate() }
    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// A small deterministic generator (xorshift64), so a random test can be replayed from its seed.
public struct Xorshift: RandomNumberGenerator {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed | 1 }  // zero is xorshift's fixed point

    /// Seeded from the environment's TEST_SEED if set, else at random; the seed is printed with
    /// the test's name so a failure can be replayed with `TEST_SEED=<seed> swift test --filter <test>`.
    public static func logged(_ test: String = #function) -> Xorshift {
        var seed = UInt64.random(in: 1...UInt64.max)
        if let text = getenv("TEST_SEED"), let given = UInt64(String(cString: text)) { seed = given }
        print("\(test): random seed \(seed) (replay: TEST_SEED=\(seed))")
        return Xorshift(seed: seed)
    }

    public mutating func next() -> UInt64 {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return state
    }

    /// A number in `0..<bound` (0 when `bound` is not positive).
    public mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(1, bound))) }
}

/// Sends all of `bytes` on a blocking socket; false if the connection failed.
public func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n <= 0 { return false }
        offset += n
    }
    return true
}

/// Reads a blocking socket until the peer closes it; nil if that takes more than `seconds`
/// (or the connection fails).
public func readToEnd(_ fd: Int32, seconds: Int = 10) -> [UInt8]? {
    var limit = timeval(tv_sec: seconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 64 << 10)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n == 0 { return received }
        if n < 0 { return nil }
        received += buffer[..<n]
    }
}

/// Sends `request` on a new loopback connection and returns everything received until the
/// server closes it; nil if it cannot connect or does not close within `seconds`.
public func rawExchange(port: UInt16, _ request: String, seconds: Int = 10) -> [UInt8]? {
    guard let fd = connectLoopback(port: port) else { return nil }
    defer { close(fd) }
    guard sendAll(fd, Array(request.utf8)) else { return nil }
    return readToEnd(fd, seconds: seconds)
}

/// Splits an HTTP message at the end of its head: the head's text (up to and including the
/// blank line) and every byte after it; nil if there is no complete head.
public func splitHead(_ bytes: some Collection<UInt8>) -> (head: String, rest: [UInt8])? {
    let bytes = Array(bytes)
    guard bytes.count >= 4, let end = (0...(bytes.count - 4)).first(where: { bytes[$0..<($0 + 4)].elementsEqual([13, 10, 13, 10]) }) else { return nil }
    return (String(decoding: bytes[..<(end + 4)], as: UTF8.self), Array(bytes[(end + 4)...]))
}

/// Closes `stream` unless the returned task is cancelled within `seconds`: a read loop that
/// would wait forever then ends, and the test's checks on what arrived fail.
public func closeAtDeadline(_ stream: AsyncByteStream, seconds: Int = 60) -> Task<Void, any Error> {
    Task {
        try await Task.sleep(for: .seconds(seconds))
        stream.close()
    }
}
