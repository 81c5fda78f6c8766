import Reactor
import Testing
import TLS
import TestSupport

/// `TLSStream.coalescedWriteLimit`: the small writes of one loop pass are sealed together when
/// it ends, so one record in one write to the inner stream carries them; a larger write takes
/// what waited along at once; closing in the same pass still sends what waited.
private let messages = (0..<10).map { Array("message \($0);".utf8) }

@Suite(.serialized)
final class TLSCoalescedWriteTests: TLSLoopFixture {
    /// A client over a `CountingStream` whose handshake is done, to a server whose plaintext
    /// goes to `serverText` when its stream closes. The server greets first and the client waits
    /// for it, so nothing (a session ticket) is left unread when the client closes: that would
    /// reset the connection, and the server could lose what it had not read yet.
    private func connectedClient(serverText: OneShot<String>) throws -> (TLSStream, CountingStream) {
        let context = try serverContext
        let port = try listen { connection in
            let collector = Collector { text, _ in serverText.set(text) }
            try! TLSStream(wrapping: connection, context: context, role: .server).start(handler: ReadyNotifier(collector) { $0.write(Array("hello".utf8)) })
        }
        let client = try clientContext()
        let ready = OneShot<(TLSStream, CountingStream)>()
        connect(port: port) { connection in
            let counting = CountingStream(wrapping: connection!)
            let stream = try! TLSStream(wrapping: counting, context: client, role: .client, serverName: "localhost")
            stream.start(handler: GreetingReader { ready.set((stream, counting)) })
        }
        return try #require(ready.wait(seconds: 30), "no greeting within 30 s")
    }

    /// In one loop pass: writes `messages`, then runs `then`; the inner writes counted before the
    /// pass and at its end (before the loop's end-of-pass work).
    private func writeMessagesInOnePass(_ stream: TLSStream, _ counting: CountingStream,
                                        then: @escaping () -> Void = {}) -> (before: Int, after: Int) {
        loop.runBlocking {
            let before = counting.writeCalls
            for message in messages { stream.write(message) }
            then()
            return (before, counting.writeCalls)
        }
    }

    @Test func smallWritesOfOnePassLeaveInOneInnerWrite() throws {
        let serverText = OneShot<String>()
        let (stream, counting) = try connectedClient(serverText: serverText)
        let (before, duringPass) = writeMessagesInOnePass(stream, counting)
        #expect(duringPass == before, "a small write reached the inner stream before the loop pass ended")
        #expect(waitUntil(seconds: 10) { loop.runBlocking { counting.writeCalls } > before })
        #expect(loop.runBlocking { counting.writeCalls } == before + 1, "the small writes of one pass took more than one inner write")
        loop.runBlocking { stream.closeAfterFlush() }
        #expect(serverText.wait(seconds: 30) == String(decoding: messages.joined(), as: UTF8.self))
    }

    @Test func aLargeWriteTakesTheWaitingOnesAlongAtOnce() throws {
        let serverText = OneShot<String>()
        let (stream, counting) = try connectedClient(serverText: serverText)
        let large = [UInt8](repeating: UInt8(ascii: "x"), count: stream.coalescedWriteLimit + 1)
        let (before, afterLarge) = writeMessagesInOnePass(stream, counting) { stream.write(large) }
        #expect(afterLarge == before + 1, "the waiting writes and the large one took \(afterLarge - before) inner writes, not one")
        loop.runBlocking { stream.closeAfterFlush() }
        #expect(serverText.wait(seconds: 30) == String(decoding: messages.joined() + large, as: UTF8.self))
    }

    @Test func closingInTheSamePassStillSendsTheWaitingWrites() throws {
        let serverText = OneShot<String>()
        let (stream, counting) = try connectedClient(serverText: serverText)
        let (before, afterClose) = writeMessagesInOnePass(stream, counting) { stream.close() }
        // The gathered record and close_notify, together.
        #expect(afterClose == before + 1)
        #expect(serverText.wait(seconds: 30) == String(decoding: messages.joined(), as: UTF8.self))
    }
}

/// Reads (and drops) what arrives; runs `greeted` at the first bytes.
private final class GreetingReader: StreamHandler {
    private var greeted: (() -> Void)?
    init(greeted: @escaping () -> Void) { self.greeted = greeted }
    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        buffer.consume(buffer.readableBytes)
        greeted?()
        greeted = nil
    }
    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {}
}
