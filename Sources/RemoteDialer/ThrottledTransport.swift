import Reactor
import Tunnel

/// A client session's WebSocket transport under its client's bandwidth limit: what arrives is
/// charged to the `fromClient` bucket and reading stops while it is empty; what is sent is
/// charged to `toClient` and the transport reports itself unwritable while that one is empty,
/// so the session's connections stop producing (the same path as a full WebSocket queue).
final class ThrottledTransport: TunnelTransport, TunnelTransportDelegate {
    private let inner: WebSocketTransport
    private let bandwidth: ClientBandwidth
    private weak var delegate: (any TunnelTransportDelegate)?

    init(_ inner: WebSocketTransport, bandwidth: ClientBandwidth) {
        self.inner = inner
        self.bandwidth = bandwidth
    }

    var loop: EventLoop { inner.loop }
    var isWritable: Bool { inner.isWritable && !bandwidth.isPaused(.toClient) }
    var lastReceivedAt: UInt64 { inner.lastReceivedAt }
    var bufferedBytes: Int { inner.bufferedBytes }

    func start(delegate: any TunnelTransportDelegate) {
        self.delegate = delegate
        bandwidth.register(self)
        inner.start(delegate: self)
    }

    func sendMessage(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> Bool {
        let sent = inner.sendMessage(first, second)
        bandwidth.charge(.toClient, bytes: first.count + second.count)
        return sent
    }

    func sendPing() -> Bool { inner.sendPing() }
    func close(error: (any Error)?) { inner.close(error: error) }

    /// The client's bucket for `direction` emptied or refilled.
    func bandwidthDidChange(_ direction: ClientBandwidth.Direction, paused: Bool) {
        switch direction {
        case .fromClient:
            if paused { inner.socket.pauseReading() } else { inner.socket.resumeReading() }
        case .toClient:
            if inner.isWritable { delegate?.transportWritabilityDidChange(isWritable: !paused) }
        }
    }

    // MARK: TunnelTransportDelegate (from the WebSocket)

    func transportDidBeginMessage(isBinary: Bool) { delegate?.transportDidBeginMessage(isBinary: isBinary) }

    func transportDidReceivePiece(_ piece: UnsafeRawBufferPointer) {
        bandwidth.charge(.fromClient, bytes: piece.count)
        delegate?.transportDidReceivePiece(piece)
    }

    func transportDidEndMessage() { delegate?.transportDidEndMessage() }
    func transportWritabilityDidChange(isWritable: Bool) { delegate?.transportWritabilityDidChange(isWritable: isWritable && !bandwidth.isPaused(.toClient)) }
    func transportDidClose(error: (any Error)?) { delegate?.transportDidClose(error: error) }
}
