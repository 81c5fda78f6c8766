import Digest
import TLS

/// A credentials file as operators write it: one entry a line, `NAME SECRET [REST]`, `#`
/// comments, blank lines ignored. A secret is the token itself or `sha256:HEX` (its SHA-256);
/// only digests are kept in memory, and a presented token is checked by digest in constant time.
public struct CredentialsFile: Sendable {
    public struct Entry: Sendable {
        public let name: String
        /// SHA-256 of the token.
        let digest: [UInt8]
        /// The rest of the line (e.g. a proxy user's client patterns), trimmed.
        public let rest: String
    }

    public let entries: [Entry]
    private let byName: [String: Int]

    /// Parses `text` (from `file`, named in errors); `needsRest` demands a third field,
    /// `allowsRest` permits one (e.g. a client's bandwidth limit).
    public init(parsing text: String, file: String, needsRest: Bool = false, allowsRest: Bool = false) throws(CredentialsFileError) {
        var entries: [Entry] = []
        var byName: [String: Int] = [:]
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard !fields.isEmpty else { continue }
            let fail = { (reason: String) in CredentialsFileError(file: file, line: index + 1, reason: reason) }
            guard fields.count >= 2 else { throw fail("want NAME TOKEN\(needsRest ? " CLIENTS" : "")") }
            guard !needsRest || fields.count >= 3 else { throw fail("want NAME TOKEN CLIENTS") }
            guard needsRest || allowsRest || fields.count == 2 else { throw fail("unexpected text after the token") }
            let name = String(fields[0])
            guard byName[name] == nil else { throw fail("\(name) is listed twice") }
            let secret = fields[1]
            let digest: [UInt8]
            if secret.hasPrefix("sha256:") {
                guard let bytes = Self.hexBytes(secret.dropFirst(7)), bytes.count == 32 else { throw fail("sha256: wants 64 hex digits") }
                digest = bytes
            } else {
                guard secret.utf8.count >= 16 else { throw fail("token shorter than 16 characters") }
                digest = Digest.sha256(Array(secret.utf8))
            }
            byName[name] = entries.count
            entries.append(Entry(name: name, digest: digest, rest: fields.dropFirst(2).joined(separator: " ")))
        }
        self.entries = entries
        self.byName = byName
    }

    public var names: [String] { entries.map(\.name) }
    public func contains(_ name: String) -> Bool { byName[name] != nil }

    /// True if `token` is `name`'s. The digests are compared in constant time; an unknown
    /// name costs the same digest as a known one.
    public func verify(name: String, token: String) -> Bool {
        let presented = Digest.sha256(Array(token.utf8))
        guard let index = byName[name] else {
            _ = Secret.equals(presented, presented)
            return false
        }
        return Secret.equals(presented, entries[index].digest)
    }

    /// The entry whose token this is, if any (for proxy users, who present only a token).
    public func entry(withToken token: String) -> Entry? {
        let presented = Digest.sha256(Array(token.utf8))
        var found: Entry?
        for entry in entries where Secret.equals(presented, entry.digest) { found = entry }  // no early exit
        return found
    }

    static func hexBytes(_ text: Substring) -> [UInt8]? {
        guard text.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }
}

/// A credentials file that does not parse: where and why (the token itself is never shown).
public struct CredentialsFileError: Error, Equatable, Sendable, CustomStringConvertible {
    public let file: String
    public let line: Int
    public let reason: String
    public var description: String { "\(file):\(line): \(reason)" }
}
