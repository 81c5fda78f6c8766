import Foundation
import Glibc
@_exported import TestSupport

/// A program of this package run as a child process for end-to-end tests; its output goes to a
/// log file that failing tests print. Stopped (SIGTERM, then SIGKILL) by `stop()` or on deinit.
struct ProgramNotBuilt: Error, CustomStringConvertible {
    let program: String
    var description: String { "\(program) not built: run `swift build` first" }
}

final class Subprocess {
    let process = Process()
    let log: URL
    let name: String

    /// `hosts`: the program sees this file as /etc/hosts (a bind mount in a mount namespace of
    /// its own, so the machine's configuration is untouched; needs root).
    /// `executable`: a program from elsewhere (default: this package's, found beside the tests).
    init(_ program: String, _ arguments: [String], directory: URL? = nil, environment: [String: String] = [:], hosts: URL? = nil,
         executable given: URL? = nil) throws {
        name = program
        let executable = try given ?? Self.locate(program)
        if let hosts {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
            process.arguments = ["-m", "/bin/sh", "-c", "mount --bind \"$0\" /etc/hosts && exec \"$@\"", hosts.path, executable.path] + arguments
        } else {
            process.executableURL = executable
            process.arguments = arguments
        }
        if let directory { process.currentDirectoryURL = directory }
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        log = FileManager.default.temporaryDirectory.appendingPathComponent("\(program)-\(UUID().uuidString).log")
        // A file that could not be made shows as the FileHandle's error below.
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    /// Executables sit beside the test bundle in `.build/<config>/`.
    static func locate(_ program: String) throws(ProgramNotBuilt) -> URL {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<5 {
            let candidate = directory.appendingPathComponent(program)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        throw ProgramNotBuilt(program: program)
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// Open descriptors of the process, from /proc.
    var fileDescriptorCount: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    /// The fd count once it stops moving (a startup probe's socket may still be closing).
    var settledFileDescriptorCount: Int {
        var previous = fileDescriptorCount
        for _ in 0..<50 {
            usleep(100_000)
            let current = fileDescriptorCount
            if current == previous { return current }
            previous = current
        }
        return previous
    }

    /// The port in the first output line containing `marker` directly followed by digits.
    func port(after marker: String) -> UInt16? {
        guard let range = output.range(of: marker) else { return nil }
        return UInt16(output[range.upperBound...].prefix { $0.isNumber })
    }

    func kill9() {
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
    }

    /// Sends `signal` (SIGTERM unless told) and returns the exit status (SIGKILL after 5 s).
    @discardableResult
    func stop(signal: Int32 = SIGTERM) -> Int32 {
        guard process.isRunning else { return process.terminationStatus }
        kill(pid, signal)
        if !waitUntil(seconds: 5, { !process.isRunning }) { kill(pid, SIGKILL) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Ended by exiting with status 0 (not by a signal).
    var exitedCleanly: Bool { !process.isRunning && process.terminationReason == .exit && process.terminationStatus == 0 }

    deinit {
        if process.isRunning { kill(pid, SIGKILL); process.waitUntilExit() }
        try? FileManager.default.removeItem(at: log)
    }
}



struct CurlResult {
    var status: Int
    var body: Data
    var exitCode: Int32
}

/// Runs curl (a client we did not write) and returns status, body and exit code. `status` is
/// what `writeOut` prints: the response's code, or `%{http_connect}` for a proxy's CONNECT answer.
func curl(_ arguments: [String], timeout: Double = 60, writeOut: String = "%{http_code}") throws -> CurlResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    let bodyFile = FileManager.default.temporaryDirectory.appendingPathComponent("curl-\(UUID().uuidString)")
    process.arguments = ["-s", "-o", bodyFile.path, "-w", writeOut, "--max-time", String(Int(timeout))] + arguments
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let status = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    let body = (try? Data(contentsOf: bodyFile)) ?? Data()
    try? FileManager.default.removeItem(at: bodyFile)
    return CurlResult(status: Int(status) ?? 0, body: body, exitCode: process.terminationStatus)
}

/// Runs a program we did not write (`/usr/bin/env` finds it) to completion: its exit status,
/// stdout and stderr; `input` is fed to its stdin.
func runTool(_ arguments: [String], input: URL? = nil) throws -> (status: Int32, output: Data, errors: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let output = Pipe(), errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    if let input { process.standardInput = try FileHandle(forReadingFrom: input) }
    try process.run()
    // stderr is read on another thread so neither pipe can fill up and stall the program.
    let errorText = OneShot<Data>()
    Thread { errorText.set(errors.fileHandleForReading.readDataToEndOfFile()) }.start()
    let bytes = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, bytes, String(decoding: errorText.wait() ?? Data(), as: UTF8.self))
}

/// curl's stdout and stderr together (response heads with -D -, connection reuse with -v).
func transcript(_ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    process.arguments = ["-s", "--max-time", "30"] + arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return text
}

/// How many times curl -v said it reused a connection ("Re-using", or "Reusing" in newer curl).
func connectionReuses(in log: String) -> Int {
    log.components(separatedBy: "Re-using existing connection").count - 1 + log.components(separatedBy: "Reusing existing connection").count - 1
}

func canConnect(port: UInt16) -> Bool {
    guard let fd = connectLoopback(port: port) else { return false }
    close(fd)
    return true
}

/// Opens a tunnel session with a raw upgrade request and returns the status line; the socket
/// is then dropped (with a reset when `abort`), like a client that dies.
func upgradeAndDrop(port: UInt16, clientID: String, abort: Bool) -> String {
    guard let (fd, status) = upgrade(port: port, clientID: clientID) else { return "connect failed" }
    defer { close(fd) }
    if abort {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
    }
    return status
}

/// Sends a raw upgrade request for `clientID` and reads the status line; the caller owns the
/// socket (an idle session while it stays open). nil: no connection.
func upgrade(port: UInt16, clientID: String) -> (fd: Int32, status: String)? {
    guard let fd = connectLoopback(port: port) else { return nil }
    let request = "GET /connect HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Tunnel-ID: \(clientID)\r\n\r\n"
    _ = request.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1024)
    while !response.contains(10) {
        let count = recv(fd, &buffer, buffer.count, 0)
        guard count > 0 else { break }
        response += buffer[..<count]
    }
    return (fd, String(decoding: response.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self))
}
