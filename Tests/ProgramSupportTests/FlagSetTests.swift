import ProgramSupport
import Testing

/// The bundled programs' command lines are parsed as Go's `flag` package parses the Go demo's.
struct FlagSetTests {
    struct Example: Command {
        var listen = ":8123"
        var loops = 2
        var debug = false
        var cert: String?
        var forward: [String] = []
        var timeout = FlagDuration(argument: "10s")!
        var limit = FlagBytes(argument: "16M")!
        var format = LogFormat.text

        static var flags: FlagSet<Example> {
            var flags = FlagSet<Example>(commandName: "example", abstract: "An example.")
            flags.option("listen", \.listen, help: "Listen address")
            flags.option("loops", \.loops, help: "Loops")
            flags.flag("debug", \.debug, help: "Trace")
            flags.option("cert", \.cert, help: "Certificate")
            flags.option("forward", \.forward, help: "Forwards")
            flags.option("timeout", \.timeout, help: "Timeout")
            flags.option("limit", \.limit, help: "Limit")
            flags.option("log-format", \.format, help: "Format")
            return flags
        }

        func run() throws {}
    }

    private func parse(_ arguments: [String]) throws(FlagError) -> Example {
        var command = Example()
        try Example.flags.parse(arguments, into: &command)
        return command
    }

    @Test func everySpellingGoAcceptsSetsTheFlag() throws {
        for arguments in [["-listen", ":9000"], ["--listen", ":9000"], ["-listen=:9000"], ["--listen=:9000"]] {
            #expect(try parse(arguments).listen == ":9000", "\(arguments)")
        }
        let command = try parse(["-loops", "4", "-debug", "-cert=a.pem", "-forward", "x", "-forward=y",
                                 "-timeout", "500ms", "-limit", "64K", "-log-format", "json"])
        #expect(command.loops == 4 && command.debug && command.cert == "a.pem" && command.forward == ["x", "y"])
        #expect(command.timeout.duration == .milliseconds(500) && command.limit.bytes == 64 << 10 && command.format == .json)
    }

    @Test func whatIsNotGivenKeepsItsDefault() throws {
        let command = try parse([])
        #expect(command.listen == ":8123" && command.loops == 2 && !command.debug && command.cert == nil && command.forward.isEmpty)
        #expect(command.timeout.duration == .seconds(10) && command.limit.bytes == 16 << 20 && command.format == .text)
    }

    @Test func aSwitchTakesNoSeparateValueButAcceptsGoBooleans() throws {
        #expect(try parse(["-debug=false"]).debug == false)
        #expect(try parse(["-debug=T"]).debug == true)
        #expect(throws: FlagError.unexpectedArgument("false")) { try parse(["-debug", "false"]) }
        #expect(throws: FlagError.badValue(flag: "debug", value: "yes", expected: "true or false")) { try parse(["-debug=yes"]) }
    }

    @Test func badCommandLinesAreRefusedWithTheFlagNamed() {
        #expect(throws: FlagError.undefined("nope")) { try parse(["-nope"]) }
        #expect(throws: FlagError.missingValue("listen")) { try parse(["-listen"]) }
        #expect(throws: FlagError.badValue(flag: "loops", value: "many", expected: "int")) { try parse(["-loops", "many"]) }
        #expect(throws: FlagError.badValue(flag: "timeout", value: "soon", expected: "duration")) { try parse(["-timeout=soon"]) }
        #expect(throws: FlagError.badValue(flag: "log-format", value: "xml", expected: "text|json")) { try parse(["-log-format", "xml"]) }
        #expect(throws: FlagError.unexpectedArgument("stray")) { try parse(["stray"]) }
        #expect(throws: FlagError.unexpectedArgument("-")) { try parse(["-"]) }
        #expect(throws: FlagError.undefined("-x")) { try parse(["---x"]) }
        #expect(throws: FlagError.undefined("=1")) { try parse(["-=1"]) }
        #expect(throws: FlagError.unexpectedArgument("after")) { try parse(["--", "after"]) }
        #expect(throws: FlagError.helpRequested) { try parse(["-h"]) }
        #expect(throws: FlagError.helpRequested) { try parse(["--help"]) }
    }

    @Test func theUsageTextListsEveryFlagWithItsTypeAndDefaultAsGoDoes() {
        let usage = Example.flags.usage(defaults: Example())
        #expect(usage.contains("Usage of example:\n"))
        #expect(usage.contains("  -listen string\n    \tListen address (default \":8123\")\n"))
        #expect(usage.contains("  -debug\n    \tTrace\n"))
        #expect(usage.contains("  -cert string\n    \tCertificate\n"))
        #expect(usage.contains("  -timeout duration\n    \tTimeout (default 10s)\n"))
        #expect(usage.contains("  -log-format text|json\n    \tFormat (default text)\n"))
        #expect(usage.contains("  -forward string\n    \tForwards (repeatable)\n"))
        // Sorted by name, as Go prints them.
        let names = usage.split(separator: "\n").filter { $0.hasPrefix("  -") }.map { $0.dropFirst(3).prefix { $0 != " " } }
        #expect(names == names.sorted() && names.count == 8)
    }
}
