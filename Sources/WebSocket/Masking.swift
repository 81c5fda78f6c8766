import Digest

/// XORs payload bytes with the 4-byte masking key (RFC 6455 §5.3), 64 bytes per step as vectors,
/// then 8, then single bytes for the tail. `offset` is the payload position of `bytes[0]`, so a payload
/// unmasked in pieces (across a ring's wrap point or reads) lines up with the key.
public enum Masking {
    public static func apply(key: UInt32, offset: Int, to bytes: UnsafeMutableRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        xor(from: UnsafeRawPointer(base), to: base, count: bytes.count, word: keyWord(key, offset: offset))
    }

    /// Copies `source` to `destination` masked, in one pass (the client's one unavoidable copy).
    public static func copy(_ source: UnsafeRawBufferPointer, to destination: UnsafeMutableRawPointer, key: UInt32, offset: Int) {
        guard let from = source.baseAddress, source.count > 0 else { return }
        xor(from: from, to: destination, count: source.count, word: keyWord(key, offset: offset))
    }

    /// The key as its bytes lie on the wire, rotated so the first byte lines up with `offset`,
    /// repeated to 8 bytes, as a word whose memory order is that byte order.
    @inline(__always)
    static func keyWord(_ key: UInt32, offset: Int) -> UInt64 {
        let wire = key.byteSwapped  // the wire bytes read little-endian
        let rotation = UInt32((offset & 3) * 8)
        let rotated = rotation == 0 ? wire : (wire >> rotation) | (wire << (32 - rotation))
        return UInt64(littleEndian: UInt64(rotated) | (UInt64(rotated) << 32))
    }

    /// destination[i] = source[i] ^ key byte, for i in 0..<count (the pointers may be equal).
    @inline(__always)
    private static func xor(from source: UnsafeRawPointer, to destination: UnsafeMutableRawPointer, count: Int, word: UInt64) {
        var index = 0
        // Vector types, not four UInt64s: the compiler left those scalar (12 instructions per 32
        // bytes under callgrind); these become 16-byte loads, XORs and stores.
        let vector = SIMD4<UInt64>(repeating: word)
        while index + 64 <= count {
            let a = source.loadUnaligned(fromByteOffset: index, as: SIMD4<UInt64>.self)
            let b = source.loadUnaligned(fromByteOffset: index + 32, as: SIMD4<UInt64>.self)
            destination.storeBytes(of: a ^ vector, toByteOffset: index, as: SIMD4<UInt64>.self)
            destination.storeBytes(of: b ^ vector, toByteOffset: index + 32, as: SIMD4<UInt64>.self)
            index += 64
        }
        while index + 8 <= count {
            let value = source.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            destination.storeBytes(of: value ^ word, toByteOffset: index, as: UInt64.self)
            index += 8
        }
        var tail = UInt64(littleEndian: word)  // low byte = next key byte
        while index < count {
            destination.storeBytes(of: source.load(fromByteOffset: index, as: UInt8.self) ^ UInt8(truncatingIfNeeded: tail),
                                   toByteOffset: index, as: UInt8.self)
            tail >>= 8
            index += 1
        }
    }
}

/// Masking keys for the frames a client sends: unpredictable (RFC 6455 §5.3: from a strong
/// source of entropy), drawn from the kernel's CSPRNG 64 at a time rather than with one
/// getrandom(2) per frame.
struct MaskingKeySource {
    private var keys: [UInt32] = []  // made on first use: a server's frames carry no key
    private var used = 0

    mutating func next() -> UInt32 {
        if used == keys.count {
            if keys.isEmpty { keys = [UInt32](repeating: 0, count: 64) }
            keys.withUnsafeMutableBytes { Digest.randomBytes($0) }
            used = 0
        }
        defer { used += 1 }
        return keys[used]
    }
}
