import Reactor
import Testing
import WebSocket
@testable import Tunnel

/// A stream that only remembers the write coalescing asked of it. Not a `Connection`, as the
/// `TLSStream` under a wss session is not.
private final class CoalescingRecorder: ByteStream {
    let loop: EventLoop
    var coalescedWriteLimit = 0
    init(loop: EventLoop) { self.loop = loop }
    var isWritable: Bool { true }
    var isOpen: Bool { true }
    var isStarted: Bool { false }
    func start(handler: any StreamHandler) {}
    func replaceHandler(_ handler: any StreamHandler) {}
    func write(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> Bool { true }
    func pauseReading() {}
    func resumeReading() {}
    func shutdownWrite() {}
    func closeAfterFlush() {}
    func close() {}
    func close(error: any Error) {}
}

@Suite struct WebSocketTransportTests {
    /// Many connections' small messages share the session's stream: the transport asks for them
    /// to leave together whatever the stream is (it once reached a bare TCP connection only).
    @Test func theTransportAsksAnyStreamToCoalesceSmallWrites() throws {
        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let stream = CoalescingRecorder(loop: group.loops[0])
        _ = WebSocketTransport(socket: WebSocketConnection(stream: stream, role: .server))
        #expect(stream.coalescedWriteLimit == WebSocketTransport.coalescedWriteLimit)
    }
}
