import Reactor
import WebSocket

/// The production transport: a session's messages as binary WebSocket messages.
public final class WebSocketTransport: TunnelTransport, WebSocketHandler {
    public let socket: WebSocketConnection
    private weak var delegate: (any TunnelTransportDelegate)?
    /// Set when the session ends the socket, so the close it triggers is not reported back as news.
    private var closing = false

    public init(socket: WebSocketConnection) {
        self.socket = socket
        // Many connections' small messages share this socket: those of one loop pass leave
        // together (a proxied request's messages cost a send each otherwise).
        socket.stream.coalescedWriteLimit = Self.coalescedWriteLimit
        socket.stream.limitUnsentBytes(Self.unsentBytesLimit)
    }

    /// What the kernel may hold unsent on this socket; the rest waits in our write queue. Without
    /// a limit the kernel took up to 4 MB (its send buffer grows to tcp_wmem's maximum): another
    /// connection's message, or a Pause, then waited behind all of it, and a paused connection's
    /// peer received that much more after its Pause. Measured with a 1 GiB download (server peak
    /// RSS in the commit that set this).
    static let unsentBytesLimit = 128 << 10

    /// Messages up to this size (frame included) wait for the end of the loop pass; larger ones,
    /// a bulk transfer's, go out at once rather than being copied into the queue first.
    static let coalescedWriteLimit = 16 * 1024

    public var loop: EventLoop { socket.loop }
    public var isWritable: Bool { socket.isWritable }
    public var lastReceivedAt: UInt64 { socket.lastReceivedAt }
    public var bufferedBytes: Int { socket.bufferedBytes }

    public func start(delegate: any TunnelTransportDelegate) {
        self.delegate = delegate
        socket.start(handler: self)
    }

    public func sendMessage(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> Bool {
        socket.send(.binary, first, second)
    }

    public func sendPing() -> Bool { socket.sendPing() }

    public func close(error: (any Error)?) {
        guard !closing else { return }
        closing = true
        socket.close(code: Self.closeCode(for: error), reason: error.map { "\($0)" } ?? "")
    }

    /// A peer that broke the protocol hears 1002 (1003 for a text message), not a clean 1000.
    static func closeCode(for error: (any Error)?) -> WebSocketCloseCode {
        switch error as? TunnelError {
        case .wrongMessageType?: .unsupportedData
        case .decoding?: .protocolError
        default: .normalClosure
        }
    }

    public func webSocket(_ socket: WebSocketConnection, didBeginMessage opcode: WebSocketOpcode) {
        delegate?.transportDidBeginMessage(isBinary: opcode == .binary)
    }

    public func webSocket(_ socket: WebSocketConnection, didReceiveMessagePiece piece: UnsafeRawBufferPointer) {
        delegate?.transportDidReceivePiece(piece)
    }

    public func webSocketDidEndMessage(_ socket: WebSocketConnection) {
        delegate?.transportDidEndMessage()
    }

    public func webSocketWritabilityDidChange(_ socket: WebSocketConnection, isWritable: Bool) {
        delegate?.transportWritabilityDidChange(isWritable: isWritable)
    }

    public func webSocketDidClose(_ socket: WebSocketConnection, error: (any Error)?) {
        delegate?.transportDidClose(error: error)
    }
}
