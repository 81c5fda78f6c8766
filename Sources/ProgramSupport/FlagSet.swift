import Glibc

/// A value a command-line flag holds, parsed from the flag's text.
public protocol FlagValue: CustomStringConvertible, SendableMetatype {
    init?(argument: String)
    /// The word the usage text shows after the flag's name (Go's `flag` package: "string", "int", "duration").
    static var flagTypeName: String { get }
}

extension String: FlagValue {
    public init?(argument: String) { self = argument }
    public static var flagTypeName: String { "string" }
}

extension Int: FlagValue {
    public init?(argument: String) { self.init(argument, radix: 10) }
    public static var flagTypeName: String { "int" }
}

extension FlagValue where Self: RawRepresentable, RawValue == String {
    public init?(argument: String) { self.init(rawValue: argument) }
    public var description: String { rawValue }
}

/// Why a command line was refused.
public enum FlagError: Error, Equatable, CustomStringConvertible {
    /// `-h`, `-help` or `--help`: the caller prints the usage text and exits 0.
    case helpRequested
    case undefined(String)
    case missingValue(String)
    case badValue(flag: String, value: String, expected: String)
    case unexpectedArgument(String)

    public var description: String {
        switch self {
        case .helpRequested: "help requested"
        case .undefined(let name): "flag provided but not defined: -\(name)"
        case .missingValue(let name): "flag needs an argument: -\(name)"
        case .badValue(let flag, let value, let expected): "invalid value \"\(value)\" for flag -\(flag): want \(expected)"
        case .unexpectedArgument(let argument): "unexpected argument \"\(argument)\": this program takes flags only"
        }
    }
}

/// The flags of a command, parsed the way Go's `flag` package does, so the Go demo programs'
/// command lines work unchanged: `-name value`, `-name=value`, `--name` alike; a switch is set by
/// `-name` alone or given `-name=false`; parsing stops at `--`. Each flag writes one property of
/// `Command` through a key path; what is not given keeps the property's default.
public struct FlagSet<Command> {
    private struct Flag {
        let name: String
        let help: String
        let typeName: String?  // nil: a switch (takes no separate value)
        let defaultText: (Command) -> String?
        let assign: (inout Command, String) -> Bool
    }

    public let commandName: String
    public let abstract: String
    private var flags: [Flag] = []

    public init(commandName: String, abstract: String) {
        self.commandName = commandName
        self.abstract = abstract
    }

    /// A flag with a value; the property's initial value is its default.
    public mutating func option<Value: FlagValue>(_ name: String, _ property: WritableKeyPath<Command, Value>, help: String) {
        add(Flag(name: name, help: help, typeName: Value.flagTypeName,
                 defaultText: { Self.shown($0[keyPath: property]) },
                 assign: { command, text in
                     guard let value = Value(argument: text) else { return false }
                     command[keyPath: property] = value
                     return true
                 }))
    }

    /// A flag with a value and no default.
    public mutating func option<Value: FlagValue>(_ name: String, _ property: WritableKeyPath<Command, Value?>, help: String) {
        add(Flag(name: name, help: help, typeName: Value.flagTypeName,
                 defaultText: { $0[keyPath: property].flatMap(Self.shown) },
                 assign: { command, text in
                     guard let value = Value(argument: text) else { return false }
                     command[keyPath: property] = value
                     return true
                 }))
    }

    /// A flag that may be given several times; each adds one value.
    public mutating func option<Value: FlagValue>(_ name: String, _ property: WritableKeyPath<Command, [Value]>, help: String) {
        add(Flag(name: name, help: help + " (repeatable)", typeName: Value.flagTypeName,
                 defaultText: { _ in nil },
                 assign: { command, text in
                     guard let value = Value(argument: text) else { return false }
                     command[keyPath: property].append(value)
                     return true
                 }))
    }

    /// A switch: `-name` or `-name=true` sets it, `-name=false` clears it.
    public mutating func flag(_ name: String, _ property: WritableKeyPath<Command, Bool>, help: String) {
        add(Flag(name: name, help: help, typeName: nil,
                 defaultText: { $0[keyPath: property] ? "true" : nil },
                 assign: { command, text in
                     // The spellings Go's strconv.ParseBool takes.
                     switch text {
                     case "1", "t", "T", "true", "TRUE", "True": command[keyPath: property] = true
                     case "0", "f", "F", "false", "FALSE", "False": command[keyPath: property] = false
                     default: return false
                     }
                     return true
                 }))
    }

    private mutating func add(_ flag: Flag) {
        precondition(!flags.contains { $0.name == flag.name }, "flag -\(flag.name) defined twice")
        flags.append(flag)
    }

    private static func shown(_ value: some FlagValue) -> String? {
        let text = value.description
        if text.isEmpty || text == "0" { return nil }  // Go leaves zero values out of the usage text
        return type(of: value).flagTypeName == "string" ? "\"\(text)\"" : text
    }

    /// Applies `arguments` (without the program name) to `command`.
    public func parse(_ arguments: some Sequence<String>, into command: inout Command) throws(FlagError) {
        var remaining = arguments.makeIterator()
        while let argument = remaining.next() {
            if argument == "--" {
                if let extra = remaining.next() { throw .unexpectedArgument(extra) }
                return
            }
            guard argument.count > 1, argument.hasPrefix("-") else { throw .unexpectedArgument(argument) }
            var body = argument.dropFirst(argument.hasPrefix("--") ? 2 : 1)
            guard let first = body.first, first != "-", first != "=" else { throw .undefined(String(body)) }
            var inlineValue: String?
            if let equals = body.firstIndex(of: "=") {
                inlineValue = String(body[body.index(after: equals)...])
                body = body[..<equals]
            }
            let name = String(body)
            guard let flag = flags.first(where: { $0.name == name }) else {
                if name == "h" || name == "help" { throw .helpRequested }
                throw .undefined(name)
            }
            let value: String
            if let inlineValue {
                value = inlineValue
            } else if flag.typeName == nil {
                value = "true"
            } else {
                guard let next = remaining.next() else { throw .missingValue(name) }
                value = next
            }
            guard flag.assign(&command, value) else {
                throw .badValue(flag: name, value: value, expected: flag.typeName ?? "true or false")
            }
        }
    }

    /// The usage text, in the layout of Go's `flag.PrintDefaults`, defaults taken from `defaults`.
    public func usage(defaults: Command) -> String {
        var text = "\(abstract)\n\nUsage of \(commandName):\n"
        for flag in flags.sorted(by: { $0.name < $1.name }) {
            text += "  -\(flag.name)"
            if let typeName = flag.typeName { text += " \(typeName)" }
            text += "\n    \t\(flag.help)"
            if let shown = flag.defaultText(defaults) { text += " (default \(shown))" }
            text += "\n"
        }
        return text
    }
}

/// A command's flags were fine but their values do not go together (exit status 2, as a bad flag).
public struct UsageError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A bundled program: its properties are its flags' values (their initial values the defaults).
public protocol Command {
    init()
    static var flags: FlagSet<Self> { get }
    func run() throws
}

extension Command {
    /// Parses the process's arguments and runs the command. `-h` prints the usage text and exits
    /// 0; a bad flag or a `UsageError` prints the problem and the usage text and exits 2; any
    /// other error exits 1.
    public static func main() -> Never {
        let flags = Self.flags
        var command = Self()
        do {
            try flags.parse(CommandLine.arguments.dropFirst(), into: &command)
        } catch .helpRequested {
            writeStandardError(flags.usage(defaults: Self()))
            exit(0)
        } catch {
            writeStandardError("\(error)\n\(flags.usage(defaults: Self()))")
            exit(2)
        }
        do {
            try command.run()
            exit(0)
        } catch let error as UsageError {
            writeStandardError("\(flags.commandName): \(error)\n")
            exit(2)
        } catch {
            writeStandardError("\(flags.commandName): \(error)\n")
            exit(1)
        }
    }
}

func writeStandardError(_ text: String) {
    var text = text
    text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = write(STDERR_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            offset += written
        }
    }
}
