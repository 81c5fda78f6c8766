/// XORs payload bytes with the 4-byte masking key, 8 bytes at a time (RFC 6455 §5.3).
/// `offset` is the payload position of `bytes[0]`, so a payload unmasked in pieces (across a
/// ring's wrap point or reads) lines up with the key.
public enum Masking {
    public static func apply(key: UInt32, offset: Int, to bytes: UnsafeMutableRawBufferPointer) {
        guard bytes.count > 0 else { return }
        // The key as stored on the wire (big-endian bytes), rotated so byte 0 lines up with `offset`.
        let wire = key.bigEndian
        let rotation = UInt32((offset & 3) * 8)
        let rotated = rotation == 0 ? wire : (wire >> rotation) | (wire << (32 - rotation))
        let word = UInt64(rotated) | (UInt64(rotated) << 32)
        let base = bytes.baseAddress!
        var index = 0
        while index + 8 <= bytes.count {
            let value = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            base.storeBytes(of: value ^ word, toByteOffset: index, as: UInt64.self)
            index += 8
        }
        var tail = word
        while index < bytes.count {
            base.storeBytes(of: base.load(fromByteOffset: index, as: UInt8.self) ^ UInt8(truncatingIfNeeded: tail), toByteOffset: index, as: UInt8.self)
            tail >>= 8
            index += 1
        }
    }

    /// Copies `source` to `destination` masked (the client's one unavoidable copy).
    public static func copy(_ source: UnsafeRawBufferPointer, to destination: UnsafeMutableRawPointer, key: UInt32, offset: Int) {
        guard source.count > 0 else { return }
        destination.copyMemory(from: source.baseAddress!, byteCount: source.count)
        apply(key: key, offset: offset, to: UnsafeMutableRawBufferPointer(start: destination, count: source.count))
    }
}
