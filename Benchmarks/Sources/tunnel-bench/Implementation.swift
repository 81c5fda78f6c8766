import Foundation

/// A tunnel implementation under test: a server and a client binary with the command-line
/// interface of PROTOCOL.md §5 (`-listen`, `-connect`, `-id`).
struct Implementation {
    let name: String
    let serverBinary: String
    let clientBinary: String

    /// Parses `NAME=SERVER_BINARY,CLIENT_BINARY`.
    init?(argument: String) {
        let parts = argument.split(separator: "=", maxSplits: 1)
        guard parts.count == 2 else { return nil }
        let binaries = parts[1].split(separator: ",")
        guard binaries.count == 2 else { return nil }
        name = String(parts[0])
        serverBinary = URL(fileURLWithPath: String(binaries[0])).standardizedFileURL.path
        clientBinary = URL(fileURLWithPath: String(binaries[1])).standardizedFileURL.path
    }
}

/// A running server + client pair with one tunnel session for client id `bench`.
final class RunningTunnel {
    let implementation: Implementation
    let server: ChildProcess
    let client: ChildProcess
    let port: UInt16

    init(_ implementation: Implementation, sourcePort: UInt16, workDirectory: URL) throws {
        self.implementation = implementation
        port = freePort()
        server = try ChildProcess(name: "\(implementation.name)-server",
                                  arguments: [implementation.serverBinary, "-listen", "127.0.0.1:\(port)"],
                                  directory: workDirectory, logDirectory: workDirectory)
        client = try ChildProcess(name: "\(implementation.name)-client",
                                  arguments: [implementation.clientBinary, "-connect", "ws://127.0.0.1:\(port)/connect", "-id", "bench"],
                                  directory: workDirectory, logDirectory: workDirectory)
        guard waitUntilServing(url(sourcePort: sourcePort, path: "small")) else {
            stop()
            throw HarnessError.failedToStart(implementation.name, server.logURL.path, client.logURL.path)
        }
    }

    /// The tunnel route to `path` on the shared source.
    func url(sourcePort: UInt16, path: String) -> String {
        "http://127.0.0.1:\(port)/client/bench/http/127.0.0.1:\(sourcePort)/\(path)?timeout=600"
    }

    func stop() {
        client.stop()
        server.stop()
    }
}

enum HarnessError: Error, CustomStringConvertible {
    case failedToStart(String, String, String)
    case checksum(String, String, String)
    case transfer(String, String)

    var description: String {
        switch self {
        case .failedToStart(let name, let serverLog, let clientLog):
            return "\(name) did not start serving within 20 s (logs: \(serverLog), \(clientLog))"
        case .checksum(let name, let expected, let got):
            return "\(name): sha256 mismatch: expected \(expected), got \(got)"
        case .transfer(let name, let detail):
            return "\(name): transfer failed: \(detail)"
        }
    }
}
