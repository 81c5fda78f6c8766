/// Comparing secrets without leaking, through timing, how much of a guess was right.
enum Secret {
    /// Constant time in the contents: every byte of the longer input is visited whatever differs.
    static func equals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference: UInt8 = a.count == b.count ? 0 : 1
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }

    static func equals(_ given: String, _ expected: String) -> Bool {
        equals(Array(given.utf8), Array(expected.utf8))
    }
}
