/// A duration flag written the Go way: `10s`, `500ms`, `2m`, `1h` (a bare number is seconds).
public struct FlagDuration: FlagValue, Sendable {
    public let duration: Duration
    public let description: String

    public init?(argument: String) {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        let unit = units.first { argument.hasSuffix($0.0) && Double(argument.dropLast($0.0.count)) != nil }
        let number = unit.map { String(argument.dropLast($0.0.count)) } ?? argument
        guard let value = Double(number), value >= 0, value.isFinite else { return nil }
        duration = .milliseconds(Int64((value * (unit?.1 ?? 1) * 1000).rounded()))
        description = argument
    }

    public static var flagTypeName: String { "duration" }
}

/// A byte count flag: `1048576`, `64K`, `16M`, `1G` (binary multiples).
public struct FlagBytes: FlagValue, Sendable {
    public let bytes: Int
    public let description: String

    public init?(argument: String) {
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        let multiplier = argument.last.flatMap { units[Character($0.uppercased())] }
        let number = multiplier == nil ? Substring(argument) : argument.dropLast()
        guard let value = Int(number), value > 0 else { return nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: multiplier ?? 1)
        guard !overflow else { return nil }
        bytes = product
        description = argument
    }

    public static var flagTypeName: String { "bytes" }
}
