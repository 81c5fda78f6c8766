import Glibc
import Logging

/// `-log-format`: text lines for people (the default), JSON lines for log shippers.
public enum LogFormat: String, FlagValue, CaseIterable, Sendable {
    public static var flagTypeName: String { "text|json" }
    case text
    case json
}

/// Log lines to stderr at info, or debug with `-debug`, in `format`.
public func bootstrapLogging(debug: Bool, format: LogFormat = .text) {
    let level: Logger.Level = debug ? .debug : .info
    LoggingSystem.bootstrap { label in
        switch format {
        case .text:
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        case .json:
            var handler = JSONLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

/// An environment variable (for secrets that must not show in `ps`).
public func environmentVariable(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}

/// A whole (small) text file, e.g. a credentials file.
public func readTextFile(_ path: String) throws -> String {
    guard let file = fopen(path, "r") else { throw UsageError("cannot open \(path): \(String(cString: strerror(errno)))") }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = fread(&chunk, 1, chunk.count, file)
        if count > 0 { bytes += chunk[..<count] }
        if count < chunk.count { break }
        guard bytes.count <= 64 << 20 else { throw UsageError("\(path) is larger than 64 MiB") }
    }
    guard ferror(file) == 0 else { throw UsageError("cannot read \(path)") }
    return String(decoding: bytes, as: UTF8.self)
}
