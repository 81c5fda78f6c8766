/// Header fields in arrival order; names compare case-insensitively (ASCII).
public struct HTTPHeaders: Sequence, Sendable, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    public private(set) var fields: [(name: String, value: String)] = []

    public init() {}
    public init(_ fields: [(String, String)]) { self.fields = fields.map { (name: $0.0, value: $0.1) } }
    public init(dictionaryLiteral elements: (String, String)...) { self.init(elements) }
    /// Room for `capacity` fields without regrowing.
    public init(capacity: Int) { fields.reserveCapacity(capacity) }

    public var count: Int { fields.count }
    public func makeIterator() -> some IteratorProtocol<(name: String, value: String)> { fields.makeIterator() }

    /// The first value of `name`.
    public subscript(name: String) -> String? {
        fields.first { $0.name.equalsIgnoringASCIICase(name) }?.value
    }

    public func values(for name: String) -> [String] {
        fields.filter { $0.name.equalsIgnoringASCIICase(name) }.map(\.value)
    }

    /// True if any comma-separated token of `name`'s values equals `token` (case-insensitive),
    /// e.g. `Connection: keep-alive, Upgrade` contains "upgrade".
    public func containsToken(_ token: String, in name: String) -> Bool {
        fields.contains { field in
            guard field.name.equalsIgnoringASCIICase(name) else { return false }
            var rest = field.value.utf8[...]
            while true {
                let comma = rest.firstIndex(of: UInt8(ascii: ",")) ?? rest.endIndex
                if asciiCaseInsensitiveEqual(rest[..<comma].trimmingASCIISpaces(), token.utf8) { return true }
                guard comma < rest.endIndex else { return false }
                rest = rest[rest.index(after: comma)...]
            }
        }
    }

    public mutating func add(name: String, value: String) { fields.append((name, value)) }

    public mutating func replace(name: String, value: String) {
        remove(name: name)
        add(name: name, value: value)
    }

    public mutating func remove(name: String) { fields.removeAll { $0.name.equalsIgnoringASCIICase(name) } }

    /// Bytes `serialize(into:)` appends.
    var serializedCount: Int { fields.reduce(2) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 } }

    /// Each field as `name: value` CRLF, then the CRLF that ends a head.
    func serialize(into bytes: inout [UInt8]) {
        for field in fields {
            bytes.appendUTF8(field.name)
            bytes.append(UInt8(ascii: ":"))
            bytes.append(UInt8(ascii: " "))
            bytes.appendUTF8(field.value)
            bytes.appendCRLF()
        }
        bytes.appendCRLF()
    }

    public var description: String { fields.map { "\($0.name): \($0.value)" }.joined(separator: "\r\n") }
}

extension [UInt8] {
    /// Appends `text`'s bytes in one copy: `+= text.utf8` takes the generic sequence path, about
    /// 150 instructions a call, and a head is serialized from dozens of pieces.
    mutating func appendUTF8(_ text: String) {
        var text = text
        text.withUTF8 { append(contentsOf: $0) }
    }

    mutating func appendCRLF() {
        append(UInt8(ascii: "\r"))
        append(UInt8(ascii: "\n"))
    }
}

extension String {
    /// ASCII case-insensitive equality, e.g. of header names and tokens.
    public func equalsIgnoringASCIICase(_ other: String) -> Bool { asciiCaseInsensitiveEqual(utf8, other.utf8) }

    /// Whether `other` occurs in this string, compared as UTF-8 bytes. The standard library's
    /// `contains(_: String)` lives in _StringProcessing, whose regex engine then links into every
    /// program (2 MB of binary, 0.7 MB of resident memory measured) for a substring search.
    public func includes(_ other: String) -> Bool {
        let needle = Array(other.utf8)
        guard let first = needle.first else { return true }
        let haystack = Array(utf8)
        guard haystack.count >= needle.count else { return false }
        for start in 0...(haystack.count - needle.count) where haystack[start] == first {
            if haystack[start..<start + needle.count].elementsEqual(needle) { return true }
        }
        return false
    }
}

extension StringProtocol {
    func trimmingASCIISpaces() -> Substring {
        var text = Substring(self)
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" { text.removeLast() }
        return text
    }
}

/// ASCII case-insensitive equality of two byte strings. Always inlined, so every use is
/// specialized: these run for every header of every request, and the unspecialized generic
/// walk cost more than the parse itself.
@inline(__always)
func asciiCaseInsensitiveEqual(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
    guard a.count == b.count else { return false }
    let equal = { (x: UInt8, y: UInt8) in x == y || (x | 0x20 == y | 0x20 && (x | 0x20) >= 97 && (x | 0x20) <= 122) }
    let contiguous = a.withContiguousStorageIfAvailable { a in b.withContiguousStorageIfAvailable { b in zip(a, b).allSatisfy(equal) } }
    if let contiguous, let result = contiguous { return result }
    return zip(a, b).allSatisfy(equal)
}

extension BidirectionalCollection where Element == UInt8 {
    /// Without leading and trailing spaces and tabs (optional whitespace, RFC 9110 §5.6.3).
    func trimmingASCIISpaces() -> SubSequence {
        var text = self[...]
        while let first = text.first, first == 32 || first == 9 { text.removeFirst() }
        while let last = text.last, last == 32 || last == 9 { text.removeLast() }
        return text
    }
}
