import Reactor

/// The message channel under a session: one binary WebSocket in production. Kept as a protocol
/// so the session's state machine does not depend on how messages are framed.
/// Loop-confined like everything the session touches.
public protocol TunnelTransport: AnyObject {
    var loop: EventLoop { get }
    /// False while the channel's outgoing buffer is above its high watermark.
    var isWritable: Bool { get }
    /// Monotonic nanoseconds when anything (a message, ping or pong) last arrived.
    var lastReceivedAt: UInt64 { get }
    func start(delegate: any TunnelTransportDelegate)
    /// Sends one binary message: `first` then `second`. False if the channel is closed.
    @discardableResult func sendMessage(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> Bool
    @discardableResult func sendPing() -> Bool
    /// Bytes the channel holds in its buffers, for the server's memory cap.
    var bufferedBytes: Int { get }
    /// Ends the channel; the delegate hears `transportDidClose` once.
    func close(error: (any Error)?)
}

extension TunnelTransport {
    public var bufferedBytes: Int { 0 }
}

/// What the channel tells its session, on the loop thread.
public protocol TunnelTransportDelegate: AnyObject {
    func transportDidBeginMessage(isBinary: Bool)
    /// The next piece of the current message, borrowed for the call only.
    func transportDidReceivePiece(_ piece: UnsafeRawBufferPointer)
    func transportDidEndMessage()
    func transportWritabilityDidChange(isWritable: Bool)
    func transportDidClose(error: (any Error)?)
}
