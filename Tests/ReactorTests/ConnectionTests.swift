import Dispatch
import Glibc
import Testing
@testable import Reactor

/// Sends `total` deterministic bytes, respecting writability, and checksums what comes back.
final class EchoClient: StreamHandler {
    let total: Int
    private var stream = RandomBytes(seed: 42)
    private var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    private var sent = 0
    private(set) var sentSum = StreamChecksum()
    private(set) var receivedSum = StreamChecksum()
    let outcome: OneShot<Result<([UInt64], [UInt64]), SocketError>>

    init(total: Int, outcome: OneShot<Result<([UInt64], [UInt64]), SocketError>>) {
        self.total = total
        self.outcome = outcome
    }

    func pump(_ connection: any ByteStream) {
        while sent < total && connection.isWritable {
            let n = min(chunk.count, total - sent)
            chunk.withUnsafeMutableBytes { raw in
                let slice = UnsafeMutableRawBufferPointer(rebasing: raw[..<n])
                stream.fill(slice)
                sentSum.update(UnsafeRawBufferPointer(slice))
                _ = connection.write(UnsafeRawBufferPointer(slice))
            }
            sent += n
        }
    }

    func streamDidRead(_ connection: any ByteStream, _ buffer: inout RingBuffer) {
        buffer.withReadableRegions { a, b in
            receivedSum.update(a)
            receivedSum.update(b)
        }
        buffer.consume(buffer.readableBytes)
        if receivedSum.count == total {
            outcome.set(.success((sentSum.value, receivedSum.value)))
            connection.close()
        }
    }

    func streamWritabilityDidChange(_ connection: any ByteStream, isWritable: Bool) {
        if isWritable { pump(connection) }
    }

    func streamDidClose(_ connection: any ByteStream, error: (any Error)?) {
        if let error { outcome.set(.failure(error as! SocketError)) }
    }
}

@Suite(.serialized) struct ConnectionTests {
    @Test func echoOf256MiBWithChecksum() throws {
        let group = try ReactorGroup(loopCount: 2)
        defer { group.shutdown() }
        let listener = try group.listen(on: SocketAddress("127.0.0.1:0")) { $0.start(handler: EchoHandler()) }
        let outcome = OneShot<Result<([UInt64], [UInt64]), SocketError>>()
        let port = listener.address.port
        let loop = group.loops[1]
        loop.execute {
            let client = EchoClient(total: 256 << 20, outcome: outcome)
            loop.connect(to: try! SocketAddress("127.0.0.1:\(port)")) { result in
                switch result {
                case .success(let connection):
                    connection.start(handler: client)
                    client.pump(connection)
                case .failure(let error):
                    client.outcome.set(.failure(error))
                }
            }
        }
        let result = try #require(outcome.wait(seconds: 300))
        let (sent, received) = try result.get()
        #expect(sent == received)
        #expect(received.last == UInt64(256 << 20))
        listener.close()
    }

    @Test func connectToAClosedPortIsConnectionRefused() throws {
        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.loops[0]
        // Bind and close a listener to get a port nobody listens on.
        let port = try loop.runBlocking { () throws(SocketError) -> UInt16 in
            let listener = try loop.listen(on: SocketAddress("127.0.0.1:0")) { $0.start(handler: EchoHandler()) }
            defer { listener.close() }
            return listener.address.port
        }
        let outcome = OneShot<SocketError?>()
        loop.execute {
            loop.connect(host: "127.0.0.1", port: port) { result in
                if case .failure(let error) = result { outcome.set(error) } else { outcome.set(nil) }
            }
        }
        let reported = try #require(outcome.wait(seconds: 10))
        let error = try #require(reported)
        #expect(error.errnoCode == ECONNREFUSED)
        #expect(error.description == "connect: connection refused")
    }

    @Test func hostNamesResolveOffLoop() throws {
        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.loops[0]
        let listener = try group.listen(on: SocketAddress("127.0.0.1:0")) { $0.start(handler: EchoHandler()) }
        defer { listener.close() }
        let outcome = OneShot<String>()
        let port = listener.address.port
        loop.execute {
            loop.connect(host: "localhost", port: port) { result in
                switch result {
                case .success(let connection):
                    outcome.set(connection.remoteAddress?.description ?? "?")
                    connection.close()
                case .failure(let error): outcome.set("\(error)")
                }
            }
        }
        #expect(outcome.wait(seconds: 10) == "127.0.0.1:\(port)")
    }

    @Test func connectTimesOutWhenTheBacklogIsFull() throws {
        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.loops[0]
        // A listener that never accepts, with a backlog of 0: once its queue is full the kernel
        // drops further SYNs and a new connect stays pending.
        let listenFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listenFD) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listenFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(listenFD, 0)
        let port = try #require(Syscall.localAddress(listenFD)).port
        let outcome = OneShot<[String]>()
        loop.execute {
            var options = ConnectOptions()
            options.timeout = .milliseconds(300)
            var results: [String] = []
            var held: [Connection] = []
            func attempt(_ remaining: Int) {
                loop.connect(to: try! SocketAddress("127.0.0.1:\(port)"), options: options) { result in
                    switch result {
                    case .success(let connection): held.append(connection); results.append("ok")
                    case .failure(let error): results.append(error.description)
                    }
                    if remaining > 1 && !results.last!.contains("timeout") { attempt(remaining - 1) } else {
                        held.removeAll()
                        outcome.set(results)
                    }
                }
            }
            attempt(8)
        }
        let results = try #require(outcome.wait(seconds: 30))
        #expect(results.last == "connect: i/o timeout")
    }

    @Test func ipv6LoopbackAndHalfClose() throws {
        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let listener = try group.listen(on: SocketAddress("[::1]:0")) { $0.start(handler: EchoHandler()) }
        defer { listener.close() }
        #expect(listener.address.description.hasPrefix("[::1]:"))
        // A blocking peer sends, half-closes, and must still read the full echo and then EOF.
        let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        let address = listener.address
        let rc = address.withSockAddr { connect(fd, $0, $1) }
        #expect(rc == 0)
        let message = Array("hello over v6".utf8)
        #expect(send(fd, message, message.count, 0) == message.count)
        shutdown(fd, Int32(SHUT_WR))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            received += buffer[..<n]
        }
        #expect(received == message)
    }
}

/// Writes until the connection fails, recording the error.
final class WriteUntilFailure: StreamHandler {
    let outcome: OneShot<String>
    let chunk = [UInt8](repeating: 1, count: 64 * 1024)
    init(outcome: OneShot<String>) { self.outcome = outcome }
    func pump(_ stream: any ByteStream) {
        while stream.isOpen && stream.isWritable { stream.write(chunk) }
    }
    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) { buffer.consume(buffer.readableBytes) }
    func streamWritabilityDidChange(_ stream: any ByteStream, isWritable: Bool) { if isWritable { pump(stream) } }
    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) { outcome.set(error.map { "\($0)" } ?? "nil") }
}

@Suite(.serialized) struct PeerFailureTests {
    /// A peer that resets the connection mid-transfer surfaces as an error value on the writer;
    /// SIGPIPE never fires (the process would die) and the loop keeps serving.
    @Test func resetByPeerIsAnErrorNotASignal() throws {
        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.loops[0]
        let outcome = OneShot<String>()
        let accepted = OneShot<Connection>()
        let listener = try group.listen(on: SocketAddress("127.0.0.1:0")) { connection in
            let writer = WriteUntilFailure(outcome: outcome)
            connection.start(handler: writer)
            writer.pump(connection)
            accepted.set(connection)
        }
        defer { listener.close() }
        let fd = blockingConnect(port: listener.address.port)
        let writer = try #require(accepted.wait(seconds: 10))
        #expect(waitUntil { loop.runBlocking { writer.queuedWriteBytes > 0 } }, "the writer never filled the socket buffers")
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)  // close with RST
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(fd)
        let error = try #require(outcome.wait(seconds: 10))
        #expect(["write: connection reset by peer", "write: broken pipe", "read: connection reset by peer"].contains(error), "\(error)")
        // The loop is still alive and serving.
        #expect(loop.runBlocking { loop.inEventLoop })
    }

    /// A peer that reads nothing while we keep writing: the write that would take the queue past
    /// its hard limit closes the connection with "write queue full"; the queue never holds more.
    @Test func writingPastTheQueueLimitClosesTheConnection() throws {
        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.loops[0]
        var options = ListenOptions()
        options.connection.writeQueueLimit = 1 << 20
        let closed = OneShot<String>()
        let accepted = OneShot<Connection>()
        let listener = try group.listen(on: SocketAddress("127.0.0.1:0"), options: options) { connection in
            connection.start(handler: WriteUntilFailure(outcome: closed))
            accepted.set(connection)
        }
        defer { listener.close() }
        let fd = blockingConnect(port: listener.address.port)
        defer { close(fd) }
        let connection = try #require(accepted.wait(seconds: 10))
        let chunk = [UInt8](repeating: 1, count: 64 << 10)
        let (written, maxQueued) = loop.runBlocking {
            var written = 0
            var maxQueued = 0
            // Far past the limit plus what the kernel buffers can take, ignoring isWritable.
            while written < 64 << 20 && connection.write(chunk) {
                written += chunk.count
                maxQueued = max(maxQueued, connection.queuedWriteBytes)
            }
            return (written, maxQueued)
        }
        #expect(written < 64 << 20, "64 MiB went into a connection whose peer reads nothing")
        #expect(maxQueued <= options.connection.writeQueueLimit)
        #expect(closed.wait(seconds: 10) == "write: write queue full")
    }

    @Test func scheduleFromAnotherThreadRunsOnTheLoopAfterTheDelay() throws {
        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.loops[0]
        let fired = OneShot<(Bool, UInt64)>()
        let start = MonotonicClock.now()
        loop.schedule(after: .milliseconds(50)) { fired.set((loop.inEventLoop, MonotonicClock.now() - start)) }
        let (onLoop, elapsed) = try #require(fired.wait(seconds: 10))
        #expect(onLoop)
        #expect(elapsed >= 50_000_000)
    }
}
