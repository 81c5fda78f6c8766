import Reactor

/// Builds frame headers on the stack and, for the client role, masks payload while copying it
/// into a reusable send buffer (RFC 6455 requires client frames masked; that copy is the only
/// one on the send path).
struct FrameWriter {
    let role: WebSocketRole
    /// Reused across frames so masking does not allocate per message; at most `maskingChunk`
    /// bytes, larger frames go through it in chunks (what the stream cannot send at once it
    /// queues anyway, so a message-sized buffer would only hold memory).
    private(set) var scratch: [UInt8] = []
    private var maskingKeys = MaskingKeySource()
    static let maxHeaderLength = 14
    /// Room for a 64 KiB payload (the tunnel's largest Data message by default), its frame header
    /// and the tunnel's message header, so such a message is one write, not two.
    static let maskingChunk = (64 << 10) + 64

    init(role: WebSocketRole) { self.role = role }

    /// Writes one frame whose payload is `first` then `second` to `stream`, gathered.
    mutating func write(to stream: any ByteStream, opcode: WebSocketOpcode, fin: Bool,
                        _ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> Bool {
        let length = first.count + second.count
        var header: (UInt64, UInt64) = (0, 0)
        return withUnsafeMutableBytes(of: &header) { raw in
            var count = 2
            raw[0] = (fin ? 0x80 : 0) | opcode.rawValue
            let maskBit: UInt8 = role == .client ? 0x80 : 0
            if length < 126 {
                raw[1] = maskBit | UInt8(length)
            } else if length <= 0xFFFF {
                raw[1] = maskBit | 126
                raw[2] = UInt8(length >> 8)
                raw[3] = UInt8(length & 0xFF)
                count = 4
            } else {
                raw[1] = maskBit | 127
                for index in 0..<8 { raw[2 + index] = UInt8((UInt64(length) >> (56 - 8 * UInt64(index))) & 0xFF) }
                count = 10
            }
            if role == .client {
                let key = maskingKeys.next()
                for index in 0..<4 { raw[count + index] = UInt8((key >> (24 - 8 * UInt32(index))) & 0xFF) }
                count += 4
                let capacity = min(count + length, Self.maskingChunk)
                if scratch.count < capacity { scratch = [UInt8](repeating: 0, count: min(max(capacity, scratch.count * 2), Self.maskingChunk)) }
                return scratch.withUnsafeMutableBytes { buffer in
                    let base = buffer.baseAddress!
                    base.copyMemory(from: raw.baseAddress!, byteCount: count)
                    var filled = count
                    var offset = 0
                    while true {
                        let end = offset + min(buffer.count - filled, length - offset)
                        // The chunk's payload range [offset, end) may span both pieces.
                        let inFirst = max(0, min(end, first.count) - offset)
                        if inFirst > 0 {
                            Masking.copy(UnsafeRawBufferPointer(rebasing: first[offset..<offset + inFirst]), to: base + filled, key: key, offset: offset)
                        }
                        let secondStart = max(offset, first.count)
                        if end > secondStart {
                            Masking.copy(UnsafeRawBufferPointer(rebasing: second[(secondStart - first.count)..<(end - first.count)]),
                                         to: base + filled + inFirst, key: key, offset: secondStart)
                        }
                        filled += end - offset
                        offset = end
                        guard stream.write(UnsafeRawBufferPointer(start: base, count: filled)) else { return false }
                        if offset == length { return true }
                        filled = 0
                    }
                }
            }
            // Server: a small first piece (the tunnel's message header) joins the frame header so
            // the frame goes out as two pieces in one gathered write.
            if first.count <= 64 {
                return withUnsafeTemporaryAllocation(byteCount: count + first.count, alignment: 8) { joined in
                    joined.baseAddress!.copyMemory(from: raw.baseAddress!, byteCount: count)
                    if first.count > 0 { (joined.baseAddress! + count).copyMemory(from: first.baseAddress!, byteCount: first.count) }
                    return stream.write(UnsafeRawBufferPointer(joined), second)
                }
            }
            return stream.write(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(raw)[..<count]), first)
                && stream.write(second)
        }
    }
}
