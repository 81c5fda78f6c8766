import Glibc

/// A byte ring, used as every socket's read buffer and write queue.
///
/// Readable bytes occupy at most two contiguous regions (before and after the wrap point), and so
/// do the free bytes; both are exposed as borrowed pointers so parsers work in place and `readv`
/// / `writev` move bytes without an intermediate copy. Capacity grows up to `maximumCapacity`
/// (see `capacity(toHold:growingFrom:)`) and can shrink back towards `minimumCapacity`; storage
/// is allocated lazily so an idle connection holds none.
public struct RingBuffer: ~Copyable {
    private var storage: UnsafeMutableRawPointer?
    /// Current capacity in bytes: zero, a power of two up to `largeCapacity`, past it a multiple of
    /// `largeGrowthUnit`.
    public private(set) var capacity: Int
    /// Index of the first readable byte (always < capacity when capacity > 0).
    private var head: Int
    /// Number of readable bytes.
    public private(set) var readableBytes: Int
    public let minimumCapacity: Int
    public let maximumCapacity: Int
    /// False while the ring lends bytes it does not own (`init(borrowing:)`): those are never
    /// freed, and the first write or resize moves what is readable into storage of its own.
    private var ownsStorage = true

    /// - Parameters:
    ///   - minimumCapacity: capacity allocated on first use and kept when shrinking.
    ///   - maximumCapacity: capacity is never grown past this (rounded up to a power of two).
    public init(minimumCapacity: Int = 4096, maximumCapacity: Int = 1 << 20) {
        precondition(minimumCapacity > 0 && maximumCapacity >= minimumCapacity)
        self.minimumCapacity = Self.powerOfTwo(atLeast: minimumCapacity)
        self.maximumCapacity = Self.powerOfTwo(atLeast: maximumCapacity)
        self.storage = nil
        self.capacity = 0
        self.head = 0
        self.readableBytes = 0
    }

    /// A ring whose readable bytes are `bytes`, in place (no copy): for handing a piece that
    /// already lies in another buffer to code that parses a `RingBuffer`. The caller keeps
    /// `bytes` alive and unchanged for the ring's life and takes over what is left readable.
    public init(borrowing bytes: UnsafeMutableRawBufferPointer, maximumCapacity: Int = 1 << 20) {
        precondition(bytes.count > 0)
        minimumCapacity = 4096
        self.maximumCapacity = Self.powerOfTwo(atLeast: max(maximumCapacity, 4096))
        storage = bytes.baseAddress
        capacity = bytes.count
        head = 0
        readableBytes = bytes.count
        ownsStorage = false
    }

    deinit {
        if ownsStorage { free(storage) }
    }

    /// Moves the readable bytes out with their storage (no copy), leaving this ring empty: for
    /// handing a socket's unread bytes to another loop along with the socket.
    public mutating func take() -> RingBuffer {
        precondition(ownsStorage, "a ring lending bytes it does not own cannot give them away")
        var taken = RingBuffer(minimumCapacity: minimumCapacity, maximumCapacity: maximumCapacity)
        (taken.storage, taken.capacity, taken.head, taken.readableBytes) = (storage, capacity, head, readableBytes)
        (storage, capacity, head, readableBytes) = (nil, 0, 0, 0)
        return taken
    }

    public var isEmpty: Bool { readableBytes == 0 }
    public var writableBytes: Int { capacity - readableBytes }
    /// Bytes that could still be appended if the ring grew to its maximum.
    public var remainingCapacity: Int { maximumCapacity - readableBytes }

    static func powerOfTwo(atLeast n: Int) -> Int {
        n <= 1 ? 1 : 1 << (Int.bitWidth - (n - 1).leadingZeroBitCount)
    }

    /// Past this a ring grows by a quarter, not by doubling.
    static let largeCapacity = 1 << 20
    static let largeGrowthUnit = 64 << 10

    /// The capacity to grow to from `current` so that `needed` bytes fit: doubling while small
    /// (few resizes, cheap copies), then by a quarter in 64 KiB units. A ring's pages all become
    /// resident as its contents wrap around, so doubling past a few MiB cost up to twice what was
    /// held: a tunnelled connection that takes ~4.3-6.3 MB in flight after its Pause (1 GiB bulk
    /// on loopback) held an 8 MiB ring, 4 MiB of the server's peak RSS.
    static func capacity(toHold needed: Int, growingFrom current: Int) -> Int {
        if needed <= largeCapacity { return powerOfTwo(atLeast: needed) }
        let target = max(needed, current + current / 4)
        return (target + largeGrowthUnit - 1) / largeGrowthUnit * largeGrowthUnit
    }

    /// `index` (< 2 × capacity) wrapped into the ring.
    @inline(__always)
    private func wrapped(_ index: Int) -> Int { index >= capacity ? index - capacity : index }

    // MARK: Reading

    /// The byte at `offset` from the start of the readable bytes.
    @inline(__always)
    public func byte(at offset: Int) -> UInt8 {
        precondition(offset >= 0 && offset < readableBytes, "RingBuffer offset out of range")
        return storage!.load(fromByteOffset: wrapped(head + offset), as: UInt8.self)
    }

    /// Calls `body` with the readable bytes `[offset, offset+count)` as at most two regions, in
    /// order; the second is empty unless the range crosses the wrap point.
    @inline(__always)
    public func withReadableRegions<R>(
        from offset: Int = 0, count: Int? = nil,
        _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> R
    ) rethrows -> R {
        let (first, second) = regions(from: offset, count: count ?? (readableBytes - offset))
        return try body(UnsafeRawBufferPointer(first), UnsafeRawBufferPointer(second))
    }

    /// Like `withReadableRegions`, but mutable: lets a parser rewrite bytes in place (unmasking).
    @inline(__always)
    public mutating func withMutableReadableRegions<R>(
        from offset: Int, count: Int,
        _ body: (UnsafeMutableRawBufferPointer, UnsafeMutableRawBufferPointer) throws -> R
    ) rethrows -> R {
        let (first, second) = regions(from: offset, count: count)
        return try body(first, second)
    }

    private func regions(from offset: Int, count: Int) -> (UnsafeMutableRawBufferPointer, UnsafeMutableRawBufferPointer) {
        precondition(offset >= 0 && count >= 0 && offset + count <= readableBytes, "RingBuffer range out of bounds")
        guard count > 0, let base = storage else { return (.init(start: nil, count: 0), .init(start: nil, count: 0)) }
        let start = wrapped(head + offset)
        let firstCount = min(count, capacity - start)
        return (UnsafeMutableRawBufferPointer(start: base + start, count: firstCount),
                UnsafeMutableRawBufferPointer(start: base, count: count - firstCount))
    }

    /// Copies `destination.count` readable bytes starting at `offset` into `destination`.
    public func copyBytes(from offset: Int = 0, into destination: UnsafeMutableRawBufferPointer) {
        withReadableRegions(from: offset, count: destination.count) { a, b in
            if a.count > 0 { destination.baseAddress!.copyMemory(from: a.baseAddress!, byteCount: a.count) }
            if b.count > 0 { (destination.baseAddress! + a.count).copyMemory(from: b.baseAddress!, byteCount: b.count) }
        }
    }

    /// The readable bytes `[offset, offset+count)` as a new array (for tests and small headers).
    public func bytes(from offset: Int = 0, count: Int? = nil) -> [UInt8] {
        let n = count ?? (readableBytes - offset)
        // Not through the initializer: at capacity 0 it writes the shared empty-array storage,
        // which ThreadSanitizer reports as a race between loops.
        guard n > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: n) { out, initialized in
            copyBytes(from: offset, into: UnsafeMutableRawBufferPointer(out))
            initialized = n
        }
    }

    /// Drops `count` bytes from the front.
    @inline(__always)
    public mutating func consume(_ count: Int) {
        precondition(count >= 0 && count <= readableBytes, "RingBuffer consume past readable bytes")
        readableBytes -= count
        // An empty ring restarts at 0 so the next read gets one contiguous free region.
        head = readableBytes == 0 ? 0 : wrapped(head + count)
    }

    // MARK: Writing

    /// Makes room for at least `count` more bytes. Returns false, changing nothing, when that would
    /// exceed `maximumCapacity`.
    @discardableResult
    public mutating func reserve(_ count: Int) -> Bool {
        let needed = readableBytes + count
        if needed <= capacity { return true }
        guard needed <= maximumCapacity else { return false }
        resize(to: min(maximumCapacity, max(minimumCapacity, Self.capacity(toHold: needed, growingFrom: capacity))))
        return true
    }

    /// Grows the capacity one step (bounded by the maximum); returns false if already at the
    /// maximum.
    @discardableResult
    public mutating func grow() -> Bool {
        guard capacity < maximumCapacity else { return false }
        reserve(capacity == 0 ? minimumCapacity : writableBytes + 1)
        return true
    }

    /// Halves the capacity while the readable bytes would still fit in a quarter of it, never
    /// below the minimum; frees the storage altogether when empty and `releaseWhenEmpty`.
    public mutating func shrink(releaseWhenEmpty: Bool = false) {
        if readableBytes == 0 && releaseWhenEmpty {
            if ownsStorage { free(storage) }
            storage = nil
            capacity = 0
            head = 0
            ownsStorage = true
            return
        }
        var target = capacity
        while target > minimumCapacity && readableBytes <= target / 4 { target = max(minimumCapacity, target / 2) }
        if target != capacity { resize(to: target) }
    }

    private mutating func resize(to newCapacity: Int) {
        if ownsStorage, let storage, newCapacity > capacity {
            return growInPlace(storage, to: newCapacity)
        }
        guard let newStorage = malloc(newCapacity) else { fatalError("RingBuffer: out of memory (\(newCapacity) bytes)") }
        copyBytes(into: UnsafeMutableRawBufferPointer(start: newStorage, count: readableBytes))
        if ownsStorage { free(storage) }
        ownsStorage = true
        storage = newStorage
        capacity = newCapacity
        head = 0
    }

    /// Grows with `realloc`, which moves a large block's pages (`mremap`) instead of copying them,
    /// so a growing ring never holds its old and new storage resident at once (a copy did: 4 MiB
    /// growing to 5 MiB peaked at 9 MiB). Of wrapped contents only the smaller piece moves.
    private mutating func growInPlace(_ old: UnsafeMutableRawPointer, to newCapacity: Int) {
        guard let base = realloc(old, newCapacity) else { fatalError("RingBuffer: out of memory (\(newCapacity) bytes)") }
        let oldCapacity = capacity
        let wrappedCount = head + readableBytes - oldCapacity  // bytes at [0, wrappedCount)
        if wrappedCount > 0 {
            let frontCount = oldCapacity - head                // bytes at [head, oldCapacity)
            if wrappedCount <= frontCount && wrappedCount <= newCapacity - oldCapacity {
                (base + oldCapacity).copyMemory(from: base, byteCount: wrappedCount)
            } else {
                let newHead = newCapacity - frontCount
                memmove(base + newHead, base + head, frontCount)
                head = newHead
            }
        }
        storage = base
        capacity = newCapacity
    }

    /// Appends `bytes`, growing as needed. Returns false, appending nothing, if they do not fit
    /// under `maximumCapacity`.
    @discardableResult
    public mutating func append(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count > 0 else { return true }
        guard reserve(bytes.count) else { return false }
        let written = withWritableRegions { a, b in
            let first = min(a.count, bytes.count)
            a.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: first)
            if bytes.count > first {
                b.baseAddress!.copyMemory(from: bytes.baseAddress! + first, byteCount: bytes.count - first)
            }
            return bytes.count
        }
        assert(written == bytes.count)
        return true
    }

    @discardableResult
    public mutating func append(_ bytes: some Collection<UInt8>) -> Bool {
        if let done = bytes.withContiguousStorageIfAvailable({ append(UnsafeRawBufferPointer($0)) }) { return done }
        return Array(bytes).withUnsafeBytes { append($0) }
    }

    /// Calls `body` with the free space as at most two regions, in order; `body` returns how many
    /// bytes it wrote (from the start of the first region onwards), which become readable.
    public mutating func withWritableRegions(
        _ body: (UnsafeMutableRawBufferPointer, UnsafeMutableRawBufferPointer) throws -> Int
    ) rethrows -> Int {
        if capacity == 0 { resize(to: minimumCapacity) }
        // The free space of a borrowed ring is not ours to write.
        if !ownsStorage { resize(to: max(minimumCapacity, capacity)) }
        let base = storage!
        let tail = wrapped(head + readableBytes)
        let free = capacity - readableBytes
        let firstCount = min(free, capacity - tail)
        let first = UnsafeMutableRawBufferPointer(start: base + tail, count: firstCount)
        let second = UnsafeMutableRawBufferPointer(start: base, count: free - firstCount)
        let written = try body(first, second)
        precondition(written >= 0 && written <= free, "RingBuffer: wrote more than the free space")
        readableBytes += written
        return written
    }
}

extension RingBuffer {
    /// Drops everything readable and frees the storage.
    public mutating func discardAll() {
        consume(readableBytes)
        shrink(releaseWhenEmpty: true)
    }
}
