import ArgumentParser
import Logging

extension NameSpecification {
    /// A long flag spelled the Go way (`-listen`) that also accepts `--listen`, so the Go demo's
    /// command lines work unchanged.
    public static func goStyle(_ name: String) -> NameSpecification {
        [.customLong(name, withSingleDash: true), .customLong(name)]
    }
}

/// Log lines to stderr at info, or debug with `-debug`.
public func bootstrapLogging(debug: Bool) {
    let level: Logger.Level = debug ? .debug : .info
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
}
