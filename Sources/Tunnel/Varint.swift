/// Go's `encoding/binary` signed varint: zigzag, then unsigned LEB128 (7 bits a byte, low bits
/// first, high bit = more), at most 10 bytes.
public enum Varint {
    public static let maxLength = 10

    @inline(__always)
    static func zigzag(_ value: Int64) -> UInt64 {
        UInt64(bitPattern: (value << 1) ^ (value >> 63))
    }

    @inline(__always)
    static func unzigzag(_ value: UInt64) -> Int64 {
        Int64(bitPattern: value >> 1) ^ -Int64(bitPattern: value & 1)
    }

    /// Writes `value` at `destination` (which has room for `maxLength` bytes); returns the length.
    @inline(__always)
    public static func encode(_ value: Int64, into destination: UnsafeMutableRawPointer) -> Int {
        var remaining = zigzag(value)
        var length = 0
        while remaining >= 0x80 {
            destination.storeBytes(of: UInt8(truncatingIfNeeded: remaining) | 0x80, toByteOffset: length, as: UInt8.self)
            remaining >>= 7
            length += 1
        }
        destination.storeBytes(of: UInt8(remaining), toByteOffset: length, as: UInt8.self)
        return length + 1
    }

    /// The encoding as bytes (for tests and small messages).
    public static func encode(_ value: Int64) -> [UInt8] {
        withUnsafeTemporaryAllocation(byteCount: maxLength, alignment: 1) { buffer in
            let length = encode(value, into: buffer.baseAddress!)
            return Array(UnsafeRawBufferPointer(rebasing: buffer[..<length]))
        }
    }
}

/// Decodes one varint a byte at a time, so input may arrive in pieces. Mirrors Go's
/// `binary.ReadVarint` outcomes, including its error texts.
struct VarintDecoder {
    private var value: UInt64 = 0
    private var shift: UInt64 = 0
    private(set) var bytesRead = 0

    enum Step { case needMore, done(Int64) }

    mutating func feed(_ byte: UInt8) throws(TunnelDecodingError) -> Step {
        if byte < 0x80 {
            if bytesRead == Varint.maxLength - 1 && byte > 1 { throw .varintOverflow }
            let result = value | UInt64(byte) << shift
            self = VarintDecoder()
            return .done(Varint.unzigzag(result))
        }
        if bytesRead == Varint.maxLength - 1 { throw .varintOverflow }
        value |= UInt64(byte & 0x7F) << shift
        shift += 7
        bytesRead += 1
        return .needMore
    }

    /// The error for input that ends now: nothing of this varint read → EOF, some → unexpected EOF.
    var endOfInputError: TunnelDecodingError { bytesRead == 0 ? .endOfInput : .unexpectedEndOfInput }
}
