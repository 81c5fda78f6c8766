import Glibc
import Reactor
import WebSocket

// Parse + unmask throughput of the WebSocket frame parser, in place over the read ring, for
// client-to-server (masked) binary frames of 16 B, 1 KiB, 32 KiB and 1 MiB. Each batch is copied
// into the ring (timed separately: that memcpy is the baseline a socket read would cost), then
// parsed (timed); the payload pieces are only summed, as a consumer would touch them.
// Usage: frame-parser-bench [MiB per size, default 512]

let megabytes = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 512 : 512

func now() -> UInt64 { MonotonicClock.now() }

func maskedFrame(payloadSize: Int) -> [UInt8] {
    var bytes: [UInt8] = [0x82]
    if payloadSize < 126 { bytes.append(0x80 | UInt8(payloadSize)) }
    else if payloadSize <= 0xFFFF { bytes += [0x80 | 126, UInt8(payloadSize >> 8), UInt8(payloadSize & 0xFF)] }
    else { bytes.append(0x80 | 127); for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8((payloadSize >> shift) & 0xFF)) } }
    let key: [UInt8] = [0x12, 0x34, 0x56, 0x78]
    bytes += key
    bytes += (0..<payloadSize).map { UInt8(truncatingIfNeeded: $0 &* 7) ^ key[$0 % 4] }
    return bytes
}

print("frame size   frames/batch   parse+unmask GB/s   memcpy GB/s (baseline)   ratio   (\(megabytes) MiB of payload per size)")
for size in [16, 1024, 32 << 10, 1 << 20] {
    let frame = maskedFrame(payloadSize: size)
    let perBatch = max(1, (2 << 20) / frame.count)
    let batch = Array((0..<perBatch).map { _ in frame }.joined())
    var ring = RingBuffer(minimumCapacity: 4 << 20, maximumCapacity: 4 << 20)
    var parser = FrameParser(role: .server, maxMessageSize: 2 << 20)
    let payloadPerBatch = perBatch * size
    let batches = max(1, (megabytes << 20) / payloadPerBatch)
    var checksum: UInt64 = 0
    var parseTime: UInt64 = 0
    var copyTime: UInt64 = 0
    for _ in 0..<batches {
        let copyStart = now()
        _ = batch.withUnsafeBytes { ring.append($0) }
        copyTime += now() - copyStart
        let start = now()
        try! parser.parse(&ring) { event in
            if case .messagePiece(let piece) = event {
                checksum &+= UInt64(piece.count) &+ UInt64(piece[piece.count - 1])
            }
            return true
        }
        parseTime += now() - start
        precondition(ring.isEmpty)
    }
    let bytes = Double(batches * payloadPerBatch)
    let rate = bytes / (Double(parseTime) / 1e9) / 1e9
    let copyRate = Double(batches * batch.count) / (Double(copyTime) / 1e9) / 1e9
    let label = size >= 1 << 20 ? "\(size >> 20) MiB" : size >= 1024 ? "\(size >> 10) KiB" : "\(size) B"
    print(label.padding(10), "  ", String(perBatch).padding(12), "  ", format2(rate).padding(17), "  ", format2(copyRate).padding(21),
          "  ", format2(rate / copyRate).padding(5), "  (checksum \(checksum % 1000))")
}

func format2(_ value: Double) -> String {
    let scaled = Int((value * 100).rounded())
    return "\(scaled / 100).\(scaled % 100 < 10 ? "0" : "")\(scaled % 100)"
}

extension String {
    func padding(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
