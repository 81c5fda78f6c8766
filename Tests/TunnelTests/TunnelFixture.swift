import Dispatch
import Glibc
import HTTP
import Reactor
@_exported import TestSupport
@testable import Tunnel
import WebSocket

/// A server-role session and a client-role session joined by a real WebSocket over loopback
/// TCP (HTTP upgrade included), on two loops, plus an echo server and a byte source on the
/// client's side for connections to dial.
final class TunnelFixture: @unchecked Sendable {  // fields are set before the semaphores signal, then used on their loops
    let group: ReactorGroup
    let serverLoop: EventLoop
    let clientLoop: EventLoop
    var serverSession: TunnelSession!
    var clientSession: TunnelSession!
    var echoAddress = ""
    var sourceAddress = ""
    var httpServer: HTTPServer!
    private var listeners: [Listener] = []

    init(serverOptions: TunnelOptions = TunnelOptions(), clientOptions: TunnelOptions = TunnelOptions(),
         sourceBytes: Int = 64 << 20,
         connectAuthorizer: @escaping ConnectAuthorizer = { _, _ in true }) throws {
        group = try ReactorGroup(loopCount: 2, name: "tunnel-fixture")
        serverLoop = group.next()
        clientLoop = group.next()
        let serverReady = DispatchSemaphore(value: 0)
        let clientReady = OneShot<Result<Void, FixtureError>>()
        let port = try serverLoop.runBlocking { [self] () throws(SocketError) -> UInt16 in
            httpServer = HTTPServer(loop: serverLoop) { [self] exchange in
                switch WebSocketHandshake.validate(request: exchange.head) {
                case .failure(let refusal): exchange.respond(refusal.status, body: refusal.body)
                case .success(let response):
                    guard let stream = exchange.upgrade(response) else { return }
                    let socket = WebSocketConnection(stream: stream, role: .server)
                    serverSession = TunnelSession(transport: WebSocketTransport(socket: socket), role: .server,
                                                  clientKey: "test", options: serverOptions)
                    serverSession.start()
                    serverReady.signal()
                }
            }
            return try httpServer.listen(on: SocketAddress(ipLiteral: "127.0.0.1", port: 0)!).port
        }
        try clientLoop.runBlocking { [self] () throws(SocketError) in
            let echo = try clientLoop.listen(on: SocketAddress(ipLiteral: "127.0.0.1", port: 0)!) { $0.start(handler: EchoHandler()) }
            let source = try clientLoop.listen(on: SocketAddress(ipLiteral: "127.0.0.1", port: 0)!) { connection in
                let source = SourceHandler(total: sourceBytes)
                connection.start(handler: source)
                source.pump(connection)
            }
            listeners = [echo, source]
            echoAddress = "127.0.0.1:\(echo.address.port)"
            sourceAddress = "127.0.0.1:\(source.address.port)"
            clientLoop.connect(to: SocketAddress(ipLiteral: "127.0.0.1", port: port)!) { [self] result in
                guard case .success(let connection) = result else { return clientReady.set(.failure(FixtureError("connect: \(result)"))) }
                WebSocketClient.handshake(stream: connection, host: "127.0.0.1:\(port)", path: "/connect",
                                          headers: [("X-Tunnel-ID", "test")]) { [self] result in
                    guard case .success(let socket) = result else { return clientReady.set(.failure(FixtureError("handshake: \(result)"))) }
                    clientSession = TunnelSession(transport: WebSocketTransport(socket: socket), role: .client, clientKey: "test",
                                                  options: clientOptions, connectAuthorizer: connectAuthorizer)
                    clientSession.start()
                    clientReady.set(.success(()))
                }
            }
        }
        do {
            try (clientReady.wait(seconds: 10) ?? .failure(FixtureError("the client session did not start within 10 s"))).get()
            guard serverReady.wait(timeout: .now() + 10) == .success else { throw FixtureError("the server session did not start within 10 s") }
        } catch {
            group.shutdown()
            throw error
        }
    }

    /// Waits until the client's end of `connection` (server-dialled) has stopped sending because
    /// of our Pause and everything it sent before has arrived here, or until `connection` ended.
    /// False on timeout.
    func waitUntilSenderHonoursPause(_ connection: TunnelConnection, seconds: Double = 30) -> Bool {
        waitUntil(seconds: seconds) {
            let (open, received) = serverLoop.runBlocking { (connection.isOpen, connection.statistics.bytesReceived) }
            guard open else { return true }
            let sender = clientLoop.runBlocking { [self] in
                clientSession.connections[connection.id].map { ($0.remotePaused, $0.statistics.bytesSent) }
            }
            // Gone from the client's table: it sent everything and EOF (a source smaller than
            // what loopback holds in flight can finish before Pause lands), so it is quiet.
            guard let (paused, sent) = sender else { return true }
            return paused && sent == received
        }
    }

    func shutdown() {
        serverLoop.runBlocking { [self] in httpServer.close(); if serverSession.isOpen { serverSession.close() } }
        clientLoop.runBlocking { [self] in for listener in listeners { listener.close() }; if clientSession?.isOpen == true { clientSession.close() } }
        group.shutdown()
    }
}


/// Sends `total` bytes of pattern `i % 251` as fast as the socket takes them, then closes.
final class SourceHandler: StreamHandler {
    let total: Int
    var sent = 0
    init(total: Int) { self.total = total }
    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        buffer.consume(buffer.readableBytes)
        pump(stream)
    }
    func pump(_ stream: any ByteStream) {
        sent = TestPattern.write(to: stream, from: sent, upTo: total)
        if sent == total { stream.closeAfterFlush() }
    }
    func streamWritabilityDidChange(_ stream: any ByteStream, isWritable: Bool) { if isWritable { pump(stream) } }
    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {}
}
