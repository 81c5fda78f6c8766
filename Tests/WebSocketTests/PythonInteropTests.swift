import Foundation
import Glibc
import HTTP
import Reactor
import Testing
import TestSupport
import WebSocket

/// Collects whole messages (joining their pieces) and echoes them if asked.
final class MessageCollector: WebSocketHandler, @unchecked Sendable {  // touched on the loop; read by the test after `closed` signals
    var messages: [(WebSocketOpcode, [UInt8])] = []
    var pongs: [[UInt8]] = []
    var current: (WebSocketOpcode, [UInt8])?
    let echo: Bool
    let onMessage: ((WebSocketConnection) -> Void)?
    let closed = DispatchSemaphore(value: 0)
    var closeError: (any Error)?

    init(echo: Bool, onMessage: ((WebSocketConnection) -> Void)? = nil) {
        self.echo = echo
        self.onMessage = onMessage
    }

    func webSocket(_ socket: WebSocketConnection, didBeginMessage opcode: WebSocketOpcode) { current = (opcode, []) }
    func webSocket(_ socket: WebSocketConnection, didReceiveMessagePiece piece: UnsafeRawBufferPointer) { current?.1 += piece }
    func webSocketDidEndMessage(_ socket: WebSocketConnection) {
        guard let message = current else { return }
        messages.append(message)
        if echo { message.1.withUnsafeBytes { _ = socket.send(message.0, $0) } }
        onMessage?(socket)
    }
    func webSocket(_ socket: WebSocketConnection, didReceivePong payload: UnsafeRawBufferPointer) {
        pongs.append(Array(payload))
        onMessage?(socket)
    }
    func webSocketDidClose(_ socket: WebSocketConnection, error: (any Error)?) {
        closeError = error
        closed.signal()
    }
}

@Suite(.serialized)
struct PythonInteropTests {
    static let peers = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Peers")

    @Test func ourClientAgainstPythonWebsocketsServer() throws {
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", Self.peers.appendingPathComponent("echo_server.py").path]
        let output = Pipe()
        server.standardOutput = output
        try server.run()
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }  // asyncio may not die on SIGTERM
        var line = Data()
        while !line.contains(10) {
            let byte = output.fileHandleForReading.readData(ofLength: 1)
            guard !byte.isEmpty else { break }
            line += byte
        }
        let port = try #require(UInt16(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)))

        let group = try ReactorGroup(loopCount: 1, name: "ws-client")
        defer { group.shutdown() }
        let loop = group.next()
        let big = (0..<(16 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 13) }
        // The script of what we send, one step per echo we get back.
        let options = { var options = WebSocketOptions(); options.maxFrameSize = 1 << 20; return options }()  // fragments: python reassembles
        let steps: [(WebSocketOpcode, [UInt8])] = [(.text, Array("hello wörld".utf8)), (.binary, [1, 2, 3]),
                                                    (.binary, Array(repeating: 7, count: 2_500_000)), (.binary, big),
                                                    (.text, Array("ping-me".utf8))]
        // What comes back: echoes (the big ones fragmented by the server), and "pong-ok" once the
        // server got our automatic pong.
        let expected = steps.dropLast() + [(.text, Array("pong-ok".utf8))]
        let driver = Driver(steps: steps)
        let handler = MessageCollector(echo: false) { socket in driver.advance(socket) }
        loop.execute {
            loop.connect(to: SocketAddress(ipLiteral: "127.0.0.1", port: port)!) { result in
                guard case .success(let connection) = result else { _ = handler.closed.signal(); return }
                WebSocketClient.handshake(stream: connection, host: "127.0.0.1:\(port)", path: "/", headers: [("X-Test", "1")],
                                          options: options) { result in
                    guard case .success(let socket) = result else { _ = handler.closed.signal(); return }
                    socket.start(handler: handler)
                    driver.advance(socket)
                }
            }
        }
        #expect(handler.closed.wait(timeout: .now() + 20) == .success, "messages \(handler.messages.map { ($0.0, $0.1.count) }) pongs \(handler.pongs.count)")
        #expect(handler.messages.count == steps.count)
        for (index, (sent, echoed)) in zip(expected, handler.messages).enumerated() {
            let same = sent.0 == echoed.0 && sent.1 == echoed.1
            #expect(same, "step \(index): sent \(sent.0) \(sent.1.count) bytes, got \(echoed.0) \(echoed.1.count) bytes")
        }
        #expect(handler.pongs == [Array("ping!".utf8)])
        let error = handler.closeError as? WebSocketError
        #expect(error?.code.rawValue == 4001 && error?.reason == "bye", "close: \(String(describing: handler.closeError))")
    }

    @Test func pythonWebsocketsClientAgainstOurServer() throws {
        let group = try ReactorGroup(loopCount: 1, name: "ws-server")
        defer { group.shutdown() }
        let loop = group.next()
        let handler = MessageCollector(echo: true)
        let port = try loop.runBlocking { () throws(SocketError) -> UInt16 in
            let server = HTTPServer(loop: loop) { exchange in
                switch WebSocketHandshake.validate(request: exchange.head) {
                case .failure(let refusal): exchange.respond(refusal.status, body: refusal.body)
                case .success(let response):
                    guard let stream = exchange.upgrade(response) else { return }
                    WebSocketConnection(stream: stream, role: .server).start(handler: handler)
                }
            }
            return try server.listen(on: SocketAddress("127.0.0.1:0")).port
        }
        let client = Process()
        client.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        client.arguments = ["python3", Self.peers.appendingPathComponent("echo_client.py").path, "ws://127.0.0.1:\(port)/"]
        let output = Pipe()
        client.standardOutput = output
        client.standardError = output
        try client.run()
        // Killed if it has not finished within 60 s (its output then ends and the test fails).
        let watchdog = DispatchWorkItem { if client.isRunning { client.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 60, execute: watchdog)
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        client.waitUntilExit()
        watchdog.cancel()
        #expect(client.terminationStatus == 0, "\(text)")
        #expect(text.contains("OK"))
        #expect(handler.closed.wait(timeout: .now() + 10) == .success)
        let error = handler.closeError as? WebSocketError
        #expect(error?.code.rawValue == 4002 && error?.reason == "done")
        #expect(handler.messages.count == 5)
    }

    @Test func refusedHandshakeSurfacesStatusAndBody() throws {
        let group = try ReactorGroup(loopCount: 1, name: "ws-refuse")
        defer { group.shutdown() }
        let loop = group.next()
        let port = try loop.runBlocking { () throws(SocketError) -> UInt16 in
            let server = HTTPServer(loop: loop) { $0.respond(.unauthorized, body: "failed authentication") }
            return try server.listen(on: SocketAddress("127.0.0.1:0")).port
        }
        let failure = OneShot<String>()
        loop.execute {
            loop.connect(to: SocketAddress(ipLiteral: "127.0.0.1", port: port)!) { result in
                guard case .success(let connection) = result else { return failure.set("connect: \(result)") }
                WebSocketClient.handshake(stream: connection, host: "x", path: "/connect", headers: []) { result in
                    switch result {
                    case .failure(let error): failure.set("\(error)")
                    case .success: failure.set("the handshake succeeded")
                    }
                }
            }
        }
        #expect(failure.wait(seconds: 10) == "websocket: bad handshake: status 401: failed authentication")
    }
}

/// Sends the next step each time an echo arrives; after the last, a ping, then asks the peer to
/// close with 4001.
final class Driver: @unchecked Sendable {  // used on the loop only
    let steps: [(WebSocketOpcode, [UInt8])]
    var next = 0
    init(steps: [(WebSocketOpcode, [UInt8])]) { self.steps = steps }

    func advance(_ socket: WebSocketConnection) {
        defer { next += 1 }
        if next < steps.count {
            steps[next].1.withUnsafeBytes { _ = socket.send(steps[next].0, $0) }
        } else if next == steps.count {
            Array("ping!".utf8).withUnsafeBytes { _ = socket.sendPing($0) }
        } else if next == steps.count + 1 {
            Array("close:4001".utf8).withUnsafeBytes { _ = socket.send(.text, $0) }
        }
    }
}
