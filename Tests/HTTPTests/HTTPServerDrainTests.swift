import Glibc
import HTTP
import Reactor
import Testing
import TestSupport

/// `HTTPServer.stopKeepingAlive()` (a draining server): an idle kept-alive connection is closed
/// at once, a new one gets one answer with `Connection: close` and is closed after it, and
/// `servingConnections` falls to zero.
@Suite(.serialized)
final class HTTPServerDrainTests {
    let group: ReactorGroup
    let loop: EventLoop
    let server: HTTPServer
    let port: UInt16

    init() throws {
        group = try ReactorGroup(loopCount: 1, name: "http-drain")
        let loop = group.next()
        self.loop = loop
        (server, port) = try loop.runBlocking { () throws(SocketError) -> (HTTPServer, UInt16) in
            let server = HTTPServer(loop: loop) { $0.respond(.ok, body: "hello\n") }
            return (server, try server.listen(on: SocketAddress("127.0.0.1:0")).port)
        }
    }

    deinit { group.shutdown() }

    /// Sends one request on `fd` and reads until the body; nil on EOF or timeout.
    private func ask(_ fd: Int32) -> String? {
        let request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        guard request.withCString({ send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }) > 0 else { return nil }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !String(decoding: answer, as: UTF8.self).hasSuffix("hello\n") {
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { return nil }
            answer += buffer[..<count]
        }
        return String(decoding: answer, as: UTF8.self)
    }

    /// True if the server closes `fd` (EOF) within 5 s.
    private func closedByServer(_ fd: Int32) -> Bool {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, 0) == 0
    }

    // Closures sent to the loop capture the server, never `self`: the fixture's deinit shuts the
    // group down, which must not happen on the loop's own thread.
    private var serving: Int {
        let server = self.server
        return loop.runBlocking { server.servingConnections }
    }

    @Test func idleConnectionsCloseAndNewOnesCloseAfterOneAnswer() throws {
        let idle = try #require(connectLoopback(port: port))
        defer { close(idle) }
        let first = try #require(ask(idle))
        #expect(!first.contains("Connection: close"))
        #expect(serving == 1, "a kept-alive connection counts until it closes")

        let server = self.server
        loop.runBlocking { server.stopKeepingAlive() }
        #expect(closedByServer(idle), "the idle kept-alive connection is closed at once")

        let late = try #require(connectLoopback(port: port))
        defer { close(late) }
        let answer = try #require(ask(late))
        #expect(answer.contains("Connection: close"))
        #expect(closedByServer(late))
        #expect(waitUntil(seconds: 5) { serving == 0 })
    }
}
