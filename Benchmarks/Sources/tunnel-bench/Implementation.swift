import Foundation

/// A tunnel implementation under test: a server and a client binary with the command-line
/// interface of PROTOCOL.md §5 (`-listen`, `-connect`, `-id`), plus extra arguments for each.
struct Implementation: Codable {
    let name: String
    let serverBinary: String
    let clientBinary: String
    /// From `--server-args NAME=ARGS` / `--client-args NAME=ARGS` (split on spaces).
    var serverArguments: [String] = []
    var clientArguments: [String] = []
    /// Whether the server takes `-cert/-key` and the client `-ca` (their `-h` text names them):
    /// only such implementations have a `wss` row.
    var takesTLSFlags = false

    /// Parses `NAME=SERVER_BINARY,CLIENT_BINARY`.
    init?(argument: String) {
        guard let (name, binaries) = Self.split(argument) else { return nil }
        let paths = binaries.split(separator: ",")
        guard paths.count == 2 else { return nil }
        self.name = name
        serverBinary = URL(fileURLWithPath: String(paths[0])).standardizedFileURL.path
        clientBinary = URL(fileURLWithPath: String(paths[1])).standardizedFileURL.path
    }

    /// `NAME=REST` → (NAME, REST).
    static func split(_ argument: String) -> (String, String)? {
        let parts = argument.split(separator: "=", maxSplits: 1)
        return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
    }

    /// Asks both programs for their `-h` text and records whether they take the TLS flags.
    mutating func probeTLSFlags() {
        func helpText(_ binary: String) -> String {
            guard let result = try? run([binary, "-h"], timeout: 10) else { return "" }
            return result.out + result.err
        }
        let server = helpText(serverBinary), client = helpText(clientBinary)
        takesTLSFlags = server.contains("-cert") && server.contains("-key") && client.contains("-ca")
    }
}

/// The test PKI (Scripts/make-test-pki.sh) the `wss` scenario serves with.
struct TestPKI {
    let directory: URL
    var serverCertificate: String { directory.appendingPathComponent("server.pem").path }
    var serverKey: String { directory.appendingPathComponent("server.key").path }
    var authority: String { directory.appendingPathComponent("ca.pem").path }

    init(script: URL, directory: URL) throws {
        self.directory = directory
        let result = try run(["bash", script.path, directory.path])
        guard result.status == 0 else { throw HarnessError.transfer("make-test-pki.sh", result.err) }
    }
}

/// A running server + client pair with one tunnel session for client id `bench`, over ws, or
/// over wss when given a PKI. The client starts only once the server accepts connections, and is
/// restarted (up to `clientAttempts` times) if it exits before the tunnel is up: Go's demo client
/// exits on its first failed connect.
final class RunningTunnel {
    static let clientAttempts = 3
    let implementation: Implementation
    let server: ChildProcess
    private(set) var client: ChildProcess
    let port: UInt16
    /// curl's options for this tunnel's URLs (the test CA under wss).
    let curlOptions: [String]
    private let scheme: String
    /// RSS of each program once the tunnel serves and has settled, before any scenario runs:
    /// what an idle deployment costs.
    private(set) var serverIdleRSSBytes = 0
    private(set) var clientIdleRSSBytes = 0

    init(_ implementation: Implementation, sourcePort: UInt16, workDirectory: URL, pki: TestPKI? = nil) throws {
        self.implementation = implementation
        port = freePort()
        scheme = pki == nil ? "http" : "https"
        curlOptions = pki.map { ["--cacert", $0.authority] } ?? []
        let tlsTag = pki == nil ? "" : "-tls"
        let serverTLS = pki.map { ["-cert", $0.serverCertificate, "-key", $0.serverKey] } ?? []
        server = try ChildProcess(name: "\(implementation.name)\(tlsTag)-server",
                                  arguments: [implementation.serverBinary, "-listen", "127.0.0.1:\(port)"] + serverTLS + implementation.serverArguments,
                                  directory: workDirectory, logDirectory: workDirectory)
        guard waitUntilAccepting(port: port, while: server) else {
            server.stop()
            throw HarnessError.failedToStart(implementation.name, "its server did not accept connections within 20 s", [server.logURL.path])
        }
        let clientArguments = [implementation.clientBinary, "-connect", "\(pki == nil ? "ws" : "wss")://127.0.0.1:\(port)/connect", "-id", "bench"]
            + (pki.map { ["-ca", $0.authority] } ?? []) + implementation.clientArguments
        let startClient = { try ChildProcess(name: "\(implementation.name)\(tlsTag)-client", arguments: clientArguments,
                                             directory: workDirectory, logDirectory: workDirectory) }
        var attempt = 1
        do {
            client = try startClient()
        } catch {
            server.stop()
            throw error
        }
        while true {
            if waitUntilServing(url(sourcePort: sourcePort, path: "small"), curlOptions: curlOptions, while: client) {
                usleep(500_000)
                serverIdleRSSBytes = server.rssBytes
                clientIdleRSSBytes = client.rssBytes
                return
            }
            guard !client.isRunning, attempt < Self.clientAttempts, let restarted = try? startClient() else { break }
            attempt += 1
            client = restarted
        }
        stop()
        throw HarnessError.failedToStart(implementation.name, "the tunnel did not serve within 20 s (client attempts: \(attempt))",
                                         [server.logURL.path, client.logURL.path])
    }

    /// The tunnel route to `path` on the shared source.
    func url(sourcePort: UInt16, path: String) -> String {
        "\(scheme)://127.0.0.1:\(port)/client/bench/http/127.0.0.1:\(sourcePort)/\(path)?timeout=600"
    }

    func stop() {
        client.stop()
        server.stop()
    }
}

enum HarnessError: Error, CustomStringConvertible {
    case failedToStart(String, String, [String])
    case checksum(String, String, String)
    case transfer(String, String)

    var description: String {
        switch self {
        case .failedToStart(let name, let reason, let logs):
            return "\(name) did not start: \(reason) (logs: \(logs.joined(separator: ", ")))"
        case .checksum(let name, let expected, let got):
            return "\(name): sha256 mismatch: expected \(expected), got \(got)"
        case .transfer(let name, let detail):
            return "\(name): transfer failed: \(detail)"
        }
    }
}
