import Reactor

/// Writes one chunk of a chunked body (RFC 9112 §7.1): size line, data, CRLF. The size line
/// is built on the stack, so framing costs no allocation per piece.
enum ChunkedEncoding {
    static let lastChunk: [UInt8] = Array("0\r\n\r\n".utf8)

    static func write(_ bytes: UnsafeRawBufferPointer, to stream: any ByteStream) -> Bool {
        guard bytes.count > 0 else { return stream.isOpen }
        return withUnsafeTemporaryAllocation(byteCount: 18, alignment: 1) { line in
            var digits = 0
            var value = bytes.count
            repeat { digits += 1; value >>= 4 } while value > 0
            value = bytes.count
            for index in stride(from: digits - 1, through: 0, by: -1) {
                let digit = UInt8(value & 0xF)
                line[index] = digit < 10 ? 48 + digit : 87 + digit  // '0'…'9', 'a'…'f'
                value >>= 4
            }
            line[digits] = 13
            line[digits + 1] = 10
            return stream.write(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(line)[..<(digits + 2)]), bytes)
                && stream.write(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(line)[digits..<(digits + 2)]))
        }
    }
}
