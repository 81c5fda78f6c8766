import Foundation
import Glibc
import TestSupport

/// An HTTP/1.1 target of blocking sockets, one thread per connection, whose answers are byte
/// for byte what a test says (framings, `Connection: close`, HTTP/1.0, bytes after a response),
/// and which counts what it accepts and receives: whether the server reused a connection is
/// then a fact read here, not a guess from timing.
///
/// `GET /ok` (Content-Length), `/chunked`, `/close` (Connection: close, socket left open),
/// `/eof` (no framing, then close), `/http10` (HTTP/1.0, socket left open), `/extra` (a second,
/// unrequested response right behind the first), `/gate` (answers once `openGate()` runs),
/// `POST /echo` (the body back). With `dropRequestsOnReusedConnections`, a request arriving on a
/// connection that already served one is read and the socket closed without an answer (the
/// target closing an idle connection just as the request goes out).
final class ScriptedTarget: @unchecked Sendable {  // `lock` guards every var
    struct Request: Sendable {
        let connection: Int
        let method: String
        let path: String
        let head: String
    }

    let port: UInt16
    private let listener: Int32
    private let lock = PThreadLock()
    private var accepted = 0
    private var closed = 0
    private var requests: [Request] = []
    private var sockets: [Int32] = []
    private var gateOpen = false
    private var stopped = false
    private var drop = false

    init() {
        (listener, port) = listenOnLoopback()
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    var acceptedConnections: Int { lock.withLock { accepted } }
    /// Connections whose peer (the tunnel client) closed them, or that we closed.
    var closedConnections: Int { lock.withLock { closed } }
    var openConnections: Int { lock.withLock { accepted - closed } }
    var received: [Request] { lock.withLock { requests } }
    var dropRequestsOnReusedConnections: Bool {
        get { lock.withLock { drop } }
        set { lock.withLock { drop = newValue } }
    }

    func openGate() { lock.withLock { gateOpen = true } }

    /// Writes `text` on every open connection, between requests: bytes nobody asked for.
    func sendToOpenConnections(_ text: String) {
        for fd in lock.withLock({ sockets }) { _ = sendAll(fd, Array(text.utf8)) }
    }

    func stop() {
        let all: [Int32] = lock.withLock {
            stopped = true
            return sockets
        }
        shutdown(listener, Int32(SHUT_RDWR))
        for fd in all { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private func acceptLoop() {
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                if lock.withLock({ stopped }) { close(listener); return }
                continue
            }
            let index: Int? = lock.withLock {
                guard !stopped else { return nil }
                accepted += 1
                sockets.append(fd)
                return accepted
            }
            guard let index else { close(fd); continue }
            Thread { [self] in serve(fd, connection: index) }.start()
        }
    }

    private func serve(_ fd: Int32, connection: Int) {
        defer {
            lock.withLock {
                closed += 1
                sockets.removeAll { $0 == fd }
            }
            close(fd)
        }
        var pending: [UInt8] = []
        var served = 0
        while true {
            guard let (head, body) = readRequest(fd, &pending) else { return }
            let line = head.split(separator: "\r\n").first.map(String.init) ?? ""
            let parts = line.split(separator: " ")
            guard parts.count == 3 else { return }
            let request = Request(connection: connection, method: String(parts[0]), path: String(parts[1]), head: head)
            let dropIt = lock.withLock {
                requests.append(request)
                return drop && served > 0
            }
            if dropIt { return }
            served += 1
            var (reply, closeAfter) = answer(request, body: body)
            // HEAD: the head alone (what follows it would be a byte nobody asked for).
            if request.method == "HEAD", let (head, _) = splitHead(Array(reply.utf8)) { reply = head }
            guard sendAll(fd, Array(reply.utf8)) else { return }
            if closeAfter { return }
        }
    }

    private func answer(_ request: Request, body: [UInt8]) -> (String, Bool) {
        switch request.path {
        case "/ok": return ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false)
        case "/chunked": return ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", false)
        case "/close": return ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", false)
        case "/eof": return ("HTTP/1.1 200 OK\r\n\r\nok", true)
        case "/http10": return ("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false)
        case "/extra": return ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nevil!", false)
        case "/gate":
            _ = waitUntil(seconds: 30) { lock.withLock { gateOpen } }
            return ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false)
        case "/echo": return ("HTTP/1.1 200 OK\r\nContent-Length: \(body.count)\r\n\r\n" + String(decoding: body, as: UTF8.self), false)
        default: return ("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", false)
        }
    }

    /// The next request's head and its Content-Length body; nil at EOF or on an error.
    private func readRequest(_ fd: Int32, _ pending: inout [UInt8]) -> (String, [UInt8])? {
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        func fill() -> Bool {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return false }
            pending += buffer[..<n]
            return true
        }
        while splitHead(pending) == nil { guard fill() else { return nil } }
        guard let (head, rest) = splitHead(pending) else { return nil }
        let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
        pending = rest
        while pending.count < length { guard fill() else { return nil } }
        let body = Array(pending[..<length])
        pending.removeFirst(length)
        return (head, body)
    }
}
