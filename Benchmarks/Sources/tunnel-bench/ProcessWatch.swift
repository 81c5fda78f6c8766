import Foundation

/// A child process the harness started, with what /proc says about it.
final class ChildProcess {
    let name: String
    let process: Process
    let logURL: URL

    /// Starts `arguments[0]` with the rest as arguments; output goes to the log file `name`.log,
    /// appended to after a line naming the start, so each round's and each restart's output stays.
    init(name: String, arguments: [String], directory: URL, logDirectory: URL) throws {
        self.name = name
        process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        process.currentDirectoryURL = directory
        logURL = logDirectory.appendingPathComponent("\(name).log")
        if !FileManager.default.fileExists(atPath: logURL.path) { _ = FileManager.default.createFile(atPath: logURL.path, contents: nil) }
        let log = try FileHandle(forWritingTo: logURL)
        try log.seekToEnd()
        try log.write(contentsOf: Data("=== \(Date()) \(arguments.joined(separator: " "))\n".utf8))
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// utime + stime in seconds, from /proc/PID/stat.
    var cpuSeconds: Double { statSeconds(fields: 14, 15) }

    /// cutime + cstime in seconds: the CPU of the children it has waited for (a forking relay
    /// does its work in children).
    var reapedChildrenCPUSeconds: Double { statSeconds(fields: 16, 17) }

    /// The sum of /proc/PID/stat's clock-tick `fields` (1-based, as proc(5) numbers them).
    private func statSeconds(fields numbers: Int...) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        // What follows the command starts at field 3 (state).
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        let ticks = numbers.reduce(0.0) { $0 + (Double(fields[$1 - 3]) ?? 0) }
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Waits up to `seconds` for every child it forked to end and be waited for.
    func waitForNoChildren(seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let children = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
            if children.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return true }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return false
    }

    /// A field of /proc/PID/status in KiB (VmRSS, VmHWM).
    func statusKiB(_ field: String) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix(field + ":") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0
        }
        return 0
    }

    var rssBytes: Int { statusKiB("VmRSS") * 1024 }
    var peakRSSBytes: Int { statusKiB("VmHWM") * 1024 }

    /// Resets the peak RSS so the next reading covers only what follows.
    func resetPeakRSS() {
        try? "5".write(toFile: "/proc/\(pid)/clear_refs", atomically: false, encoding: .utf8)
    }

    var openFileDescriptors: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
    }
}

/// Runs a command to completion, or until `timeout` passes (then it is terminated, and its status
/// is SIGTERM's), returning (exit status, stdout, stderr).
@discardableResult
func run(_ arguments: [String], timeout: TimeInterval = 900) throws -> (status: Int32, out: String, err: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let watched = process
    let watchdog = DispatchWorkItem { if watched.isRunning { watched.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
    defer { watchdog.cancel() }
    // Drain both pipes concurrently so a chatty child cannot block on a full pipe.
    nonisolated(unsafe) var errData = Data()
    let errReader = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
    errReader.start()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while !errReader.isFinished { usleep(1000) }
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// A free loopback TCP port (bound and released; good enough on a quiet machine).
func freePort() -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return UInt16(bigEndian: address.sin_port)
}

/// Polls `url` with curl until it answers 200, `timeout` passes, or `process` (if given) exits.
func waitUntilServing(_ url: String, curlOptions: [String] = [], while process: ChildProcess? = nil, timeout: TimeInterval = 20) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline && process?.isRunning != false {
        if let result = try? run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2"] + curlOptions + [url]),
           result.out == "200" { return true }
        usleep(100_000)
    }
    return false
}

/// Polls a TCP connect to 127.0.0.1:`port` until it is accepted, `timeout` passes, or `process` exits.
func waitUntilAccepting(port: UInt16, while process: ChildProcess, timeout: TimeInterval = 20) -> Bool {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = port.bigEndian
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline && process.isRunning {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        close(fd)
        if status == 0 { return true }
        usleep(50_000)
    }
    return false
}
