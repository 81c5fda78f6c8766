import Tunnel
/// `-allow` patterns: `proto/address` with `*` matching any run of characters, e.g.
/// `tcp/127.0.0.1:*` or `tcp/*.internal:443`.
public struct AllowList: Sendable {
    public let patterns: [String]

    public init(_ text: String) throws(ConfigurationError) {
        patterns = text.split(separator: ",").map { String($0).trimmingSpaces() }.filter { !$0.isEmpty }
        for pattern in patterns where !pattern.contains("/") {
            throw ConfigurationError("bad -allow pattern \(pattern): want proto/address")
        }
    }

    public func allows(proto: String, address: String) -> Bool {
        let candidate = Array("\(proto)/\(address)".utf8)
        return patterns.contains { Self.matches(Array($0.utf8)[...], candidate[...]) }
    }

    /// Glob with `*` only; iterative with one backtrack point, so it is linear-ish and cannot blow up.
    static func matches(_ pattern: ArraySlice<UInt8>, _ text: ArraySlice<UInt8>) -> Bool {
        var p = pattern.startIndex, t = text.startIndex
        var star: Int?, mark = text.startIndex
        while t < text.endIndex {
            if p < pattern.endIndex && pattern[p] == UInt8(ascii: "*") {
                star = p; mark = t; p += 1
            } else if p < pattern.endIndex && pattern[p] == text[t] {
                p += 1; t += 1
            } else if let s = star {
                p = s + 1; mark += 1; t = mark
            } else {
                return false
            }
        }
        while p < pattern.endIndex && pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.endIndex
    }
}

extension String {
    func trimmingSpaces() -> String {
        var text = Substring(self)
        while text.first == " " { text.removeFirst() }
        while text.last == " " { text.removeLast() }
        return String(text)
    }
}
