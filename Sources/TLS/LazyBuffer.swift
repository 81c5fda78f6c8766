/// A fixed-size byte buffer allocated on first use and freed by `release()`, so a stream that
/// sits idle holds none (a TLS stream's record and sealing buffers: 80 KiB per connection).
struct LazyBuffer: ~Copyable {
    let size: Int
    private var storage: UnsafeMutableRawBufferPointer?

    init(size: Int) { self.size = size }

    deinit { storage?.deallocate() }

    /// Bytes allocated now: `size` or 0.
    var allocatedBytes: Int { storage?.count ?? 0 }

    /// The buffer, allocated if it is not.
    mutating func bytes() -> UnsafeMutableRawBufferPointer {
        if let storage { return storage }
        let allocated = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        storage = allocated
        return allocated
    }

    /// Frees the buffer; what it held is gone.
    mutating func release() {
        storage?.deallocate()
        storage = nil
    }
}
