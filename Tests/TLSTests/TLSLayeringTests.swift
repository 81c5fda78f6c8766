import Reactor
import Testing
import TLS
import TestSupport

/// TLS over streams that are not sockets, and over a stream someone else started.
@Suite(.serialized)
final class TLSLayeringTests: TLSLoopFixture {
    /// TLS inside TLS: the inner session's transport is the outer `TLSStream`, as a route's TLS
    /// runs inside a tunnelled connection.
    @Test func tlsInsideTLSEchoes4MiB() throws {
        let context = try serverContext
        let port = try listen { connection in
            let outer = try! TLSStream(wrapping: connection, context: context, role: .server)
            try! TLSStream(wrapping: outer, context: context, role: .server).start(handler: EchoHandler())
        }
        let client = try clientContext()
        let outcome = OneShot<Result<Int, any Error>>()
        connect(port: port) { connection in
            let outer = try! TLSStream(wrapping: connection!, context: client, role: .client, serverName: "localhost")
            let inner = try! TLSStream(wrapping: outer, context: client, role: .client, serverName: "localhost")
            inner.start(handler: EchoVerifier(total: 4 << 20) { outcome.set($0) })
        }
        let result = try #require(outcome.wait(seconds: 60), "no echo result within 60 s")
        guard case .success(let count) = result else { Issue.record("\(result)"); return }
        #expect(count == 4 << 20)
    }

    /// A limit on unsent bytes concerns the socket under the TLS layers.
    @Test func aLimitOnUnsentBytesReachesTheSocketUnderneath() throws {
        let context = try serverContext
        let port = try listen { connection in
            try! TLSStream(wrapping: connection, context: context, role: .server).start(handler: EchoHandler())
        }
        let client = try clientContext()
        let limit = OneShot<Int?>()
        connect(port: port) { connection in
            let outer = try! TLSStream(wrapping: connection!, context: client, role: .client, serverName: "localhost")
            let inner = try! TLSStream(wrapping: outer, context: client, role: .client, serverName: "localhost")
            inner.limitUnsentBytes(32 << 10)
            limit.set(connection!.unsentBytesLimit)
            connection!.close()
        }
        #expect(limit.wait(seconds: 10) == .some(32 << 10))
    }

    /// STARTTLS-style: both sides exchange a plaintext line on a started connection, then hand it
    /// to TLS; the ClientHello sent right behind the line is already in the server's ring then.
    @Test func aStartedStreamIsTakenOverWithItsBufferedBytes() throws {
        let context = try serverContext
        let port = try listen { connection in
            connection.start(handler: StartTLSGate { connection in
                try! TLSStream(wrapping: connection, context: context, role: .server).start(handler: EchoHandler())
            })
        }
        let client = try clientContext()
        let outcome = OneShot<Result<Int, any Error>>()
        connect(port: port) { connection in
            let connection = connection!
            connection.start(handler: Collector { _, _ in })
            connection.write(Array("STARTTLS\n".utf8))
            let stream = try! TLSStream(wrapping: connection, context: client, role: .client, serverName: "localhost")
            stream.start(handler: EchoVerifier(total: 1 << 20) { outcome.set($0) })
        }
        let result = try #require(outcome.wait(seconds: 60), "no echo result within 60 s")
        guard case .success(let count) = result else { Issue.record("\(result)"); return }
        #expect(count == 1 << 20)
    }
}

/// Reads plaintext up to "STARTTLS\n", consumes exactly that, and hands the connection on.
final class StartTLSGate: StreamHandler {
    let upgrade: (Connection) -> Void
    init(upgrade: @escaping (Connection) -> Void) { self.upgrade = upgrade }
    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        let line = Array("STARTTLS\n".utf8)
        guard buffer.readableBytes >= line.count else { return }
        precondition(buffer.bytes(count: line.count) == line, "expected STARTTLS")
        buffer.consume(line.count)
        upgrade(stream as! Connection)
    }
    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {}
}

/// A pass-through `ByteStream` over another one that counts the bytes written through it: a
/// stream that is not a socket, and a view of the ciphertext a `TLSStream` produces.
final class CountingStream: ByteStream, StreamHandler {
    let wrapped: any ByteStream
    private(set) var bytesWritten = 0
    private(set) var writeCalls = 0
    private var handler: (any StreamHandler)?
    init(wrapping wrapped: any ByteStream) { self.wrapped = wrapped }

    var loop: EventLoop { wrapped.loop }
    var isWritable: Bool { wrapped.isWritable }
    var isOpen: Bool { wrapped.isOpen }
    var isStarted: Bool { handler != nil }
    func start(handler: any StreamHandler) { self.handler = handler; wrapped.start(handler: self) }
    func replaceHandler(_ handler: any StreamHandler) { self.handler = handler }
    func write(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> Bool {
        bytesWritten += first.count + second.count
        writeCalls += 1
        return wrapped.write(first, second)
    }
    func pauseReading() { wrapped.pauseReading() }
    func resumeReading() { wrapped.resumeReading() }
    func shutdownWrite() { wrapped.shutdownWrite() }
    func closeAfterFlush() { wrapped.closeAfterFlush() }
    func close() { wrapped.close() }
    func close(error: any Error) { wrapped.close(error: error) }

    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) { handler?.streamDidRead(self, &buffer) }
    func streamDidReadEOF(_ stream: any ByteStream) { handler?.streamDidReadEOF(self) }
    func streamWritabilityDidChange(_ stream: any ByteStream, isWritable: Bool) { handler?.streamWritabilityDidChange(self, isWritable: isWritable) }
    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {
        let handler = self.handler
        self.handler = nil
        handler?.streamDidClose(self, error: error)
    }
}
