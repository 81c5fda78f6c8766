/// What a WebSocket tells its owner, on the loop thread.
public protocol WebSocketHandler: AnyObject {
    /// A text or binary message begins.
    func webSocket(_ socket: WebSocketConnection, didBeginMessage opcode: WebSocketOpcode)
    /// The next piece of the current message (unmasked), borrowed for the call only.
    func webSocket(_ socket: WebSocketConnection, didReceiveMessagePiece piece: UnsafeRawBufferPointer)
    /// The current message is complete.
    func webSocketDidEndMessage(_ socket: WebSocketConnection)
    /// A pong arrived (pings are answered automatically).
    func webSocket(_ socket: WebSocketConnection, didReceivePong payload: UnsafeRawBufferPointer)
    /// The outgoing buffer crossed its high (false) or low (true) watermark.
    func webSocketWritabilityDidChange(_ socket: WebSocketConnection, isWritable: Bool)
    /// Closed: nil after a clean close handshake (1000/1001/1005) or a local close; otherwise why.
    func webSocketDidClose(_ socket: WebSocketConnection, error: (any Error)?)
}

extension WebSocketHandler {
    public func webSocket(_ socket: WebSocketConnection, didReceivePong payload: UnsafeRawBufferPointer) {}
    public func webSocketWritabilityDidChange(_ socket: WebSocketConnection, isWritable: Bool) {}
}
