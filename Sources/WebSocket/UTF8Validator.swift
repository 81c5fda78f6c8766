/// Incremental UTF-8 validation (RFC 3629, no overlongs, no surrogates) for text messages and
/// close reasons that arrive in pieces; a code point may straddle pieces.
public struct UTF8Validator: Sendable {
    /// Continuation bytes still expected for the current code point.
    private var pending = 0
    /// Allowed range of the next continuation byte (narrowed after some lead bytes).
    private var lower: UInt8 = 0x80
    private var upper: UInt8 = 0xBF

    public init() {}

    /// False as soon as the bytes cannot be UTF-8.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> Bool {
        for byte in bytes {
            if pending == 0 {
                switch byte {
                case 0x00...0x7F: continue
                case 0xC2...0xDF: pending = 1
                case 0xE0: pending = 2; lower = 0xA0
                case 0xE1...0xEC, 0xEE...0xEF: pending = 2
                case 0xED: pending = 2; upper = 0x9F
                case 0xF0: pending = 3; lower = 0x90
                case 0xF1...0xF3: pending = 3
                case 0xF4: pending = 3; upper = 0x8F
                default: return false
                }
            } else {
                guard byte >= lower && byte <= upper else { return false }
                lower = 0x80
                upper = 0xBF
                pending -= 1
            }
        }
        return true
    }

    /// True if the bytes so far end on a code point boundary.
    public var isComplete: Bool { pending == 0 }
}
