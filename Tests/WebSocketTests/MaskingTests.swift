import Testing
import TestSupport
@testable import WebSocket

struct MaskingTests {
    static let keyBytes: [UInt8] = [0xA1, 0xB2, 0xC3, 0xD4]
    static let key: UInt32 = 0xA1B2C3D4

    static func reference(_ data: [UInt8], offset: Int) -> [UInt8] {
        data.enumerated().map { $0.element ^ keyBytes[($0.offset + offset) % 4] }
    }

    /// Every length through two 32-byte blocks plus the 8-byte and single-byte tails, at every
    /// key phase, in place and while copying.
    @Test func applyAndCopyMatchBytewiseForEveryLengthAndPhase() {
        var random = Xorshift.logged()
        for length in 0...100 {
            let data = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            for offset in 0..<8 {
                let expected = Self.reference(data, offset: offset)
                var inPlace = data
                inPlace.withUnsafeMutableBytes { Masking.apply(key: Self.key, offset: offset, to: $0) }
                #expect(inPlace == expected, "apply length \(length) offset \(offset)")
                // A guard byte after the destination must stay untouched.
                var copied = [UInt8](repeating: 0xEE, count: length + 1)
                data.withUnsafeBytes { source in
                    copied.withUnsafeMutableBytes { Masking.copy(source, to: $0.baseAddress!, key: Self.key, offset: offset) }
                }
                #expect(Array(copied[..<length]) == expected && copied[length] == 0xEE, "copy length \(length) offset \(offset)")
            }
        }
    }

    @Test func maskingTwiceRestoresThePayload() {
        let data = (0..<4099).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var bytes = data
        bytes.withUnsafeMutableBytes { raw in
            Masking.apply(key: 0x01020304, offset: 3, to: raw)
            Masking.apply(key: 0x01020304, offset: 3, to: raw)
        }
        #expect(bytes == data)
    }
}
