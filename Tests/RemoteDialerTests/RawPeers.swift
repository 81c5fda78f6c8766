import Foundation
import Glibc
import Tunnel

/// A blocking loopback socket as an attacker would hold one: bytes in exactly as given, no
/// protocol help. Closed on deinit.
final class RawSocket {
    let fd: Int32

    init?(port: UInt16, receiveTimeout seconds: Double = 5) {
        guard let fd = connectLoopback(port: port) else { return nil }
        self.fd = fd
        var timeout = timeval(tv_sec: Int(seconds), tv_usec: Int(seconds.truncatingRemainder(dividingBy: 1) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { Glibc.close(fd) }

    /// Writes all of `bytes` (blocking); false if the peer is gone.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { return false }
            offset += sent
        }
        return true
    }

    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// Reads until the peer closes (true) or the receive timeout passes (false).
    func readUntilClosed(into received: inout [UInt8]) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { return true }
            if count < 0 { return errno == ECONNRESET }
            received += chunk[..<count]
        }
    }

    /// The whole answer until the peer closes, as text; nil if it never closed.
    func answerUntilClosed() -> String? {
        var received: [UInt8] = []
        return readUntilClosed(into: &received) ? String(decoding: received, as: UTF8.self) : nil
    }

    /// Reads at least `count` bytes (or what came before the peer closed or the timeout).
    func read(atLeast count: Int) -> [UInt8] {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while received.count < count {
            let got = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard got > 0 else { break }
            received += chunk[..<got]
        }
        return received
    }
}

/// A tunnel session opened by hand: the upgrade request, then tunnel messages in client frames
/// (masked with a zero key, which leaves the payload as is). It never reads unless asked, like
/// a client that wants our queues to grow.
final class RawTunnelClient {
    let socket: RawSocket
    /// The status line of the upgrade answer ("HTTP/1.1 101 Switching Protocols").
    let statusLine: String
    private var nextMessageID: Int64 = 1

    init?(port: UInt16, clientID: String, extraHeaders: String = "") {
        guard let socket = RawSocket(port: port) else { return nil }
        self.socket = socket
        socket.send("GET /connect HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" +
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Tunnel-ID: \(clientID)\r\n\(extraHeaders)\r\n")
        // The head only: read byte by byte so no frame after it is consumed.
        var head: [UInt8] = []
        var byte: UInt8 = 0
        while !head.ends(with: [13, 10, 13, 10]) && recv(socket.fd, &byte, 1, 0) == 1 { head.append(byte) }
        statusLine = String(decoding: head.prefix { $0 != 13 }, as: UTF8.self)
    }

    var upgraded: Bool { statusLine.hasPrefix("HTTP/1.1 101") }

    /// One client frame (FIN set) with a zero masking key.
    static func frame(opcode: UInt8, _ payload: [UInt8]) -> [UInt8] {
        var frame: [UInt8] = [0x80 | opcode]
        switch payload.count {
        case ..<126: frame.append(0x80 | UInt8(payload.count))
        case ..<65536: frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        default: frame.append(0x80 | 127); frame += (0..<8).reversed().map { UInt8(truncatingIfNeeded: payload.count >> ($0 * 8)) }
        }
        return frame + [0, 0, 0, 0] + payload
    }

    func takeMessageID() -> Int64 {
        defer { nextMessageID += 1 }
        return nextMessageID
    }

    /// Sends many messages in large writes (fast floods).
    @discardableResult
    func send(_ messages: some Sequence<TunnelMessage>) -> Bool {
        var batch: [UInt8] = []
        for message in messages {
            batch += Self.frame(opcode: 0x2, message.encoded)
            if batch.count >= 1 << 20 {
                guard socket.send(batch) else { return false }
                batch.removeAll(keepingCapacity: true)
            }
        }
        return socket.send(batch)
    }

    /// Reads frames until a Close arrives; its code, or nil.
    func closeCode() -> UInt16? {
        var buffer: [UInt8] = []
        while true {
            var offset = 0
            while buffer.count >= offset + 2 {
                let opcode = buffer[offset] & 0x0F
                var length = Int(buffer[offset + 1] & 0x7F)
                var header = 2
                if length == 126 {
                    guard buffer.count >= offset + 4 else { break }
                    length = Int(buffer[offset + 2]) << 8 | Int(buffer[offset + 3])
                    header = 4
                } else if length == 127 {
                    guard buffer.count >= offset + 10 else { break }
                    length = (0..<8).reduce(0) { $0 << 8 | Int(buffer[offset + 2 + $1]) }
                    header = 10
                }
                guard buffer.count >= offset + header + length else { break }
                if opcode == 0x8 {
                    let payload = buffer[(offset + header)...]
                    return length >= 2 ? UInt16(payload[payload.startIndex]) << 8 | UInt16(payload[payload.startIndex + 1]) : nil
                }
                offset += header + length
            }
            let more = socket.read(atLeast: 1)
            guard !more.isEmpty else { return nil }
            buffer += more
        }
    }
}

/// A TCP server that accepts and never answers (a slow or dead upstream), counting the
/// connections it accepted, those its peers ended and the bytes it read. Stops on deinit.
final class BlackHole {
    /// What the serving thread shares with the test; every field behind `lock`.
    private final class Shared: @unchecked Sendable {  // all state guarded by `lock`
        let lock = NSLock()
        var accepted = 0
        var ended = 0
        var received = 0
        var stopped = false
        var finished = false
    }

    let port: UInt16
    private let shared = Shared()

    init() {
        let (listenFD, port) = listenOnLoopback()
        self.port = port
        let shared = self.shared
        Thread { Self.serve(listenFD, shared) }.start()
    }

    var accepted: Int { shared.lock.withLock { shared.accepted } }
    var ended: Int { shared.lock.withLock { shared.ended } }
    /// Bytes read from all connections.
    var received: Int { shared.lock.withLock { shared.received } }

    private static func serve(_ listenFD: Int32, _ shared: Shared) {
        var fds = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)]
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !shared.lock.withLock({ shared.stopped }) {
            guard poll(&fds, nfds_t(fds.count), 50) > 0 else { continue }
            var index = fds.count - 1
            while index >= 1 {
                if fds[index].revents != 0 {
                    let count = chunk.withUnsafeMutableBytes { recv(fds[index].fd, $0.baseAddress, $0.count, 0) }
                    if count > 0 { shared.lock.withLock { shared.received += count } }
                    if count <= 0 {
                        Glibc.close(fds[index].fd)
                        fds.remove(at: index)
                        shared.lock.withLock { shared.ended += 1 }
                    }
                }
                index -= 1
            }
            if fds[0].revents & Int16(POLLIN) != 0 {
                let fd = accept(listenFD, nil, nil)
                if fd >= 0 {
                    fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0))
                    shared.lock.withLock { shared.accepted += 1 }
                }
            }
        }
        for entry in fds { Glibc.close(entry.fd) }
        shared.lock.withLock { shared.finished = true }
    }

    deinit {
        shared.lock.withLock { shared.stopped = true }
        while !shared.lock.withLock({ shared.finished }) { usleep(10_000) }
    }
}

extension Subprocess {
    /// Peak resident memory (VmHWM) in bytes, from /proc.
    var peakResidentBytes: Int { procStatus("VmHWM") }
    var residentBytes: Int { procStatus("VmRSS") }

    private func procStatus(_ field: String) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }),
              let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return -1 }
        return kilobytes << 10
    }
}

extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}

/// An HTTP target that answers every request with its own request head as the body, so a test
/// sees exactly what reached the target through the tunnel. Stops on deinit.
final class HeadEchoServer {
    let port: UInt16
    private let listenFD: Int32

    init() {
        (listenFD, port) = listenOnLoopback()
        let fd = listenFD
        Thread {
            while true {
                let connection = accept(fd, nil, nil)
                guard connection >= 0 else { return }  // the listener was shut down
                var head: [UInt8] = []
                var byte: UInt8 = 0
                while !head.ends(with: [13, 10, 13, 10]) && recv(connection, &byte, 1, 0) == 1 { head.append(byte) }
                let answer = Array("HTTP/1.1 200 OK\r\nContent-Length: \(head.count)\r\nConnection: close\r\n\r\n".utf8) + head
                _ = answer.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                Glibc.close(connection)
            }
        }.start()
    }

    deinit {
        shutdown(listenFD, Int32(SHUT_RDWR))  // wakes the blocked accept
        Glibc.close(listenFD)
    }
}
