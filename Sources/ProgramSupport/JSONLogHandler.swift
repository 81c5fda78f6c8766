import Glibc
import HTTP
import Logging

/// `-log-format json`: one JSON object a line on stderr for log shippers: `time` (UTC,
/// RFC 3339 with milliseconds), `level`, `label`, `message`, then the metadata fields (client,
/// session, remote address, …) as strings. Each line goes out in one `write(2)` (short of a
/// partial write), so lines from different threads do not interleave.
public struct JSONLogHandler: LogHandler {
    public let label: String
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let fields = metadata.merging(event.metadata ?? [:]) { $1 }
        var members: [(String, JSONValue)] = [("time", .string(Self.timestamp())), ("level", .string(event.level.rawValue)),
                                              ("label", .string(label)), ("message", .string(event.message.description))]
        let reserved: Set<String> = ["time", "level", "label", "message"]
        for key in fields.keys.sorted() where !reserved.contains(key) { members.append((key, .string(fields[key]!.description))) }
        let text = JSONValue.object(members).serialized + "\n"
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(STDERR_FILENO, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            bytes = bytes.dropFirst(written)
        }
    }

    /// Now, as `2026-11-26T04:12:41.123Z`.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var parts = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let milliseconds = Int(now.tv_nsec / 1_000_000)
        let fraction = String(repeating: "0", count: 3 - String(milliseconds).count) + String(milliseconds)
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(fraction)Z"
    }
}
