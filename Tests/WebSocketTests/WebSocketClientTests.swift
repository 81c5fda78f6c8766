import Dispatch
import Glibc
import Reactor
import Testing
import TestSupport
@testable import WebSocket

/// A blocking loopback listener the test thread answers handshakes on by hand.
final class RawServer {
    let fd: Int32
    let port: UInt16

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        try #require(bound && listen(fd, 4) == 0)
        port = UInt16(bigEndian: address.sin_port)
    }

    deinit { Glibc.close(fd) }

    /// The next connection, with its request head read (up to the blank line).
    func accept() throws -> (RawPeer, String) {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        try #require(poll(&poller, 1, 5000) == 1)
        let peer = RawPeer(fd: Glibc.accept(fd, nil, nil))
        var head: [UInt8] = []
        while !head.suffix(4).elementsEqual("\r\n\r\n".utf8), let byte = peer.read(1) { head += byte }
        return (peer, String(decoding: head, as: UTF8.self))
    }
}

/// Outcome of one client handshake, and the messages its socket then received.
final class ClientRun: Sendable {
    let result = OneShot<Result<WebSocketConnection, any Error>>()
    let collector = MessageCollector(echo: false)
}

@Suite(.serialized)
struct WebSocketClientTests {
    let group: ReactorGroup
    let loop: EventLoop

    init() throws {
        group = try ReactorGroup(loopCount: 1, name: "ws-client-tests")
        loop = group.loops[0]
    }

    func handshake(port: UInt16, headers: [(String, String)] = [], timeout: Duration = .seconds(5)) -> ClientRun {
        let run = ClientRun()
        let loop = self.loop
        loop.execute {
            loop.connect(to: SocketAddress(ipLiteral: "127.0.0.1", port: port)!) { connected in
                guard case .success(let connection) = connected else { return run.result.set(.failure(WebSocketClientError.timeout)) }
                WebSocketClient.handshake(stream: connection, host: "tunnel.example:\(port)", path: "/connect", headers: headers,
                                          timeout: timeout) { result in
                    if case .success(let socket) = result { socket.start(handler: run.collector) }
                    run.result.set(result)
                }
            }
        }
        return run
    }

    func wait(_ run: ClientRun) throws -> Result<WebSocketConnection, any Error> {
        try #require(run.result.wait(seconds: 10), "the handshake never finished")
    }

    static func key(in head: String) -> String? {
        head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("sec-websocket-key:") }
            .map { String($0.dropFirst("sec-websocket-key:".count).trimmingCharacters(in: .whitespaces)) }
    }

    @Test func sendsTheRequestWithCustomHeadersAndKeepsFramesThatFollowThe101() throws {
        defer { group.shutdown() }
        let server = try RawServer()
        let run = handshake(port: server.port, headers: [("X-Tunnel-ID", "node-7"), ("Authorization", "Bearer t")])
        let (peer, head) = try server.accept()
        let lines = head.split(separator: "\r\n").map(String.init)
        #expect(lines.first == "GET /connect HTTP/1.1")
        for line in ["Host: tunnel.example:\(server.port)", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13",
                     "X-Tunnel-ID: node-7", "Authorization: Bearer t"] {
            #expect(lines.contains(line), "\(line) in \(lines)")
        }
        let key = try #require(Self.key(in: head))
        #expect(WebSocketHandshake.isValidKey(key))
        // The 101 and a first frame in one segment: the frame must not be lost with the head.
        peer.send(Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(WebSocketHandshake.acceptValue(forKey: key))\r\n\r\n".utf8)
                  + frame(1, Array("hi".utf8), mask: nil))
        let socket = try wait(run).get()
        #expect(socket.role == .client)
        // Our client answers the server's close, so the collector closes and holds the message.
        peer.send(frame(8, closePayload(1000), mask: nil))
        #expect(run.collector.closed.wait(timeout: .now() + 5) == .success)
        #expect(run.collector.messages.map { String(decoding: $0.1, as: UTF8.self) } == ["hi"])
        #expect(run.collector.closeError == nil)
    }

    @Test func wrongAcceptValueFails() throws {
        defer { group.shutdown() }
        let server = try RawServer()
        let run = handshake(port: server.port)
        let (peer, _) = try server.accept()
        peer.send(Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n".utf8))
        guard case .failure(let error) = try wait(run), case WebSocketClientError.badAcceptValue = error else {
            Issue.record("expected badAcceptValue, got \(String(describing: run.result.wait(seconds: 0)))")
            return
        }
        #expect(peer.readsEOF())
    }

    @Test func refusalBodyIsReadUntilClose() throws {
        defer { group.shutdown() }
        let server = try RawServer()
        let run = handshake(port: server.port)
        let (peer, _) = try server.accept()
        peer.send(Array("HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\nno tunnel for you\n".utf8))
        shutdown(peer.fd, Int32(SHUT_WR))
        guard case .failure(let error) = try wait(run), case WebSocketClientError.unexpectedStatus(403, "no tunnel for you") = error else {
            Issue.record("got \(String(describing: run.result.wait(seconds: 0)))")
            return
        }
    }

    @Test func silentServerTimesOut() throws {
        defer { group.shutdown() }
        let server = try RawServer()
        let start = MonotonicClock.now()
        let run = handshake(port: server.port, timeout: .milliseconds(200))
        let (peer, _) = try server.accept()
        guard case .failure(let error) = try wait(run), case WebSocketClientError.timeout = error else {
            Issue.record("got \(String(describing: run.result.wait(seconds: 0)))")
            return
        }
        #expect(MonotonicClock.now() - start >= 150_000_000)
        #expect(peer.readsEOF())
    }

    @Test func serverHangingUpDuringTheHandshakeFails() throws {
        defer { group.shutdown() }
        let server = try RawServer()
        let run = handshake(port: server.port)
        let (peer, _) = try server.accept()
        peer.send(Array("HTTP/1.1 101 Switching".utf8))
        shutdown(peer.fd, Int32(SHUT_RDWR))
        guard case .failure(let error) = try wait(run), case WebSocketClientError.closed = error else {
            Issue.record("got \(String(describing: run.result.wait(seconds: 0)))")
            return
        }
    }
}
