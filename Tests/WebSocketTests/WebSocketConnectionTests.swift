import Dispatch
import Glibc
import Reactor
import Testing
import TestSupport
@testable import WebSocket

/// The test's end of a loopback TCP connection, speaking raw frames; reads block for at most 5 s.
final class RawPeer {
    let fd: Int32

    convenience init(port: UInt16) throws {
        self.init(fd: try #require(connectLoopback(port: port)))
    }

    init(fd: Int32) {
        self.fd = fd
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { Glibc.close(fd) }

    func send(_ bytes: [UInt8]) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return }
            sent += n
        }
    }

    /// Exactly `count` bytes, or nil on EOF or timeout.
    func read(_ count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var received = 0
        while received < count {
            let n = bytes.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + received, count - received, 0) }
            guard n > 0 else { return nil }
            received += n
        }
        return bytes
    }

    /// The next (unmasked, server-sent) frame.
    func readFrame() -> (fin: Bool, opcode: UInt8, payload: [UInt8])? {
        guard let head = read(2), head[1] & 0x80 == 0 else { return nil }
        var length = Int(head[1] & 0x7F)
        if length >= 126 {
            guard let extended = read(length == 126 ? 2 : 8) else { return nil }
            length = extended.reduce(0) { $0 << 8 | Int($1) }
        }
        guard let payload = read(length) else { return nil }
        return (head[0] & 0x80 != 0, head[0] & 0x0F, payload)
    }

    /// True if the other side closed the connection (rather than sending more or going quiet).
    func readsEOF() -> Bool {
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, 0) == 0
    }
}

func closePayload(_ code: UInt16, _ reason: String = "") -> [UInt8] {
    [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8)
}

/// A loop serving one server-role WebSocket (no HTTP: the tests speak frames from the first
/// byte), with a raw peer connected to it.
final class ServerFixture {
    let group: ReactorGroup
    let loop: EventLoop
    let collector: MessageCollector
    let peer: RawPeer
    let socket: WebSocketConnection
    private let listener: Listener

    init(options: WebSocketOptions = WebSocketOptions(), echo: Bool = true, onMessage: ((WebSocketConnection) -> Void)? = nil) throws {
        group = try ReactorGroup(loopCount: 1, name: "ws-conn")
        let loop = group.loops[0]
        self.loop = loop
        let collector = MessageCollector(echo: echo, onMessage: onMessage)
        self.collector = collector
        let accepted = OneShot<WebSocketConnection>()
        listener = try loop.runBlocking { () throws(SocketError) -> Listener in
            try loop.listen(on: SocketAddress("127.0.0.1:0")) { connection in
                let socket = WebSocketConnection(stream: connection, role: .server, options: options)
                socket.start(handler: collector)
                accepted.set(socket)
            }
        }
        peer = try RawPeer(port: listener.address.port)
        socket = try #require(accepted.wait(seconds: 5), "the server never accepted the peer")
    }

    func onLoop<T>(_ body: @escaping (WebSocketConnection) -> T) -> T {
        let socket = UncheckedSendableBox(socket)
        return loop.runBlocking { body(socket.value) }
    }

    /// Lets the loop handle whatever the peer already sent (on loopback it is in our socket when
    /// `send` returns): two round trips through the loop include one whole epoll pass.
    func settle() {
        loop.runBlocking {}
        loop.runBlocking {}
    }

    /// Payloads of the messages received so far (read on the loop; the closure must not hold
    /// the fixture, whose last release has to happen off the loop to shut the group down).
    func receivedMessages() -> [[UInt8]] {
        let collector = UncheckedSendableBox(self.collector)
        return loop.runBlocking { collector.value.messages.map(\.1) }
    }

    /// Waits for the server side's `webSocketDidClose`; its error, or nil if it never came.
    func closeError() -> (any Error)?? {
        guard collector.closed.wait(timeout: .now() + 5) == .success else { return nil }
        return .some(collector.closeError)
    }

    deinit {
        let listener = UncheckedSendableBox(self.listener)
        loop.runBlocking { listener.value.close() }
        group.shutdown()
    }
}

struct UncheckedSendableBox<Value>: @unchecked Sendable {  // carries a loop-confined object to its own loop
    let value: Value
    init(_ value: Value) { self.value = value }
}

@Suite(.serialized)
struct WebSocketConnectionTests {
    @Test func pingIsAnsweredWithPongAndRefreshesLastReceivedAt() throws {
        let fixture = try ServerFixture()
        let before = fixture.onLoop { $0.lastReceivedAt }
        fixture.peer.send(frame(9, Array("abc".utf8)))
        let pong = try #require(fixture.peer.readFrame())
        #expect(pong.opcode == 10 && pong.fin && pong.payload == Array("abc".utf8))
        #expect(fixture.onLoop { $0.lastReceivedAt } > before)
    }

    @Test func fragmentedMessageWithAPingInsideIsReassembledAndEchoed() throws {
        let fixture = try ServerFixture()
        fixture.peer.send(frame(1, Array("hel".utf8), fin: false) + frame(9, [7]) + frame(0, Array("lo ".utf8), fin: false))
        let pong = try #require(fixture.peer.readFrame())
        #expect(pong.opcode == 10 && pong.payload == [7])
        fixture.peer.send(frame(0, Array("wörld".utf8)))
        let echo = try #require(fixture.peer.readFrame())
        #expect(echo.opcode == 1 && echo.fin && echo.payload == Array("hello wörld".utf8))
    }

    /// Each violation: a Close with its code goes out, the stream closes, the handler hears why.
    static let violations: [([UInt8], UInt16)] = [
        (frame(2, [1], rsv: 2), 1002),
        (frame(2, [1, 2, 3], mask: nil), 1002),
        (frame(1, [0xFF]), 1007),
        (frame(2, [UInt8](repeating: 0, count: 1001)), 1009),
    ]

    @Test(arguments: violations)
    func violationIsAnsweredWithItsCloseCode(bytes: [UInt8], code: UInt16) throws {
        var options = WebSocketOptions()
        options.maxMessageSize = 1000
        let fixture = try ServerFixture(options: options)
        fixture.peer.send(bytes)
        let close = try #require(fixture.peer.readFrame())
        #expect(close.opcode == 8 && Array(close.payload.prefix(2)) == closePayload(code))
        #expect(fixture.peer.readsEOF())
        let error = try #require(fixture.closeError()) as? WebSocketError
        #expect(error?.code.rawValue == code)
    }

    @Test func peerCloseIsEchoedAndCleanCodesReportNoError() throws {
        for (code, expectError) in [(UInt16(1000), false), (1001, false), (4005, true)] {
            let fixture = try ServerFixture()
            fixture.peer.send(frame(8, closePayload(code, "bye")))
            let close = try #require(fixture.peer.readFrame())
            #expect(close.opcode == 8 && Array(close.payload.prefix(2)) == closePayload(code))
            #expect(fixture.peer.readsEOF())
            let error = try #require(fixture.closeError())
            if expectError {
                #expect((error as? WebSocketError) == WebSocketError(WebSocketCloseCode(rawValue: code), "bye"))
            } else {
                #expect(error == nil, "code \(code): \(String(describing: error))")
            }
        }
    }

    @Test func emptyCloseIsAnsweredWith1000() throws {
        let fixture = try ServerFixture()
        fixture.peer.send(frame(8, []))
        let close = try #require(fixture.peer.readFrame())
        #expect(close.opcode == 8 && close.payload == closePayload(1000))
        #expect(try #require(fixture.closeError()) == nil)
    }

    /// With a 60 s close timeout and the peer's reads limited to 5 s, only the peer's answering
    /// Close can end the connection in time.
    @Test func localCloseEndsWhenThePeerAnswers() throws {
        var options = WebSocketOptions()
        options.closeTimeout = .seconds(60)
        let fixture = try ServerFixture(options: options)
        fixture.onLoop { $0.close(code: .goingAway, reason: "restart") }
        let close = try #require(fixture.peer.readFrame())
        #expect(close.opcode == 8 && close.payload == closePayload(1001, "restart"))
        #expect(fixture.onLoop { $0.isOpen } == false)
        fixture.peer.send(frame(8, closePayload(1001)))
        #expect(fixture.peer.readsEOF(), "not closed on the peer's answer")
        #expect(try #require(fixture.closeError()) == nil)
    }

    @Test func localCloseTimesOutWhenThePeerStaysSilent() throws {
        var options = WebSocketOptions()
        options.closeTimeout = .milliseconds(200)
        let fixture = try ServerFixture(options: options)
        let start = MonotonicClock.now()
        fixture.onLoop { $0.close() }
        #expect(fixture.peer.readFrame()?.opcode == 8)
        #expect(fixture.peer.readsEOF())
        let elapsed = MonotonicClock.now() - start
        #expect(elapsed >= 150_000_000 && elapsed < 3_000_000_000, "\(elapsed / 1_000_000) ms")
        #expect(try #require(fixture.closeError()) == nil)
    }

    @Test func peerVanishingWithoutCloseIsAbnormal() throws {
        let fixture = try ServerFixture()
        shutdown(fixture.peer.fd, Int32(SHUT_WR))
        let error = try #require(fixture.closeError()) as? WebSocketError
        #expect(error?.code == .abnormalClosure)
    }

    @Test func abortClosesWithoutACloseFrameAndReportsTheError() throws {
        struct Gone: Error {}
        let fixture = try ServerFixture()
        fixture.onLoop { $0.abort(error: Gone()) }
        #expect(fixture.peer.readsEOF())
        #expect(try #require(fixture.closeError()) is Gone)
    }

    @Test func pausedReadingHoldsMessagesUntilResumed() throws {
        let fixture = try ServerFixture()
        fixture.onLoop { $0.pauseReading() }
        fixture.peer.send(frame(2, [1, 2, 3]))
        fixture.settle()
        #expect(fixture.receivedMessages().count == 0)
        fixture.onLoop { $0.resumeReading() }
        let echo = try #require(fixture.peer.readFrame())
        #expect(echo.opcode == 2 && echo.payload == [1, 2, 3])
    }

    /// Pausing from inside the handler stops delivery mid-ring; resuming delivers the frames
    /// already buffered without waiting for more bytes.
    @Test func pauseInsideTheHandlerLeavesBufferedFramesForResume() throws {
        let fixture = try ServerFixture(echo: false) { $0.pauseReading() }
        fixture.peer.send(frame(2, [1]) + frame(2, [2]) + frame(2, [3]))
        for delivered in 1...3 {
            if delivered > 1 { fixture.onLoop { $0.resumeReading() } }
            let expected = (1...delivered).map { [UInt8($0)] }
            #expect(waitUntil(seconds: 10) { fixture.receivedMessages() == expected }, "\(fixture.receivedMessages())")
            fixture.settle()
            #expect(fixture.receivedMessages() == expected, "delivered past the pause")
        }
    }
}
