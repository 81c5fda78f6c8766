/// What a connection tells its owner, always on the connection's loop thread.
public protocol ConnectionHandler: AnyObject {
    /// New bytes are in `buffer` (the connection's read ring, borrowed for the call). Consume what
    /// you can with `buffer.consume(_:)`; the rest stays for the next call. If the ring is at its
    /// maximum and nothing is consumed, reading stops until `resumeReading()`.
    /// Do not touch the connection's read buffer any other way during this call.
    func connectionDidRead(_ connection: Connection, _ buffer: inout RingBuffer)
    /// The peer shut down its sending side. The default closes the connection.
    func connectionDidReadEOF(_ connection: Connection)
    /// The write queue rose above its high watermark (`false`) or drained below its low one (`true`).
    func connectionWritabilityDidChange(_ connection: Connection, isWritable: Bool)
    /// The connection is closed; `error` is nil for a local close. Called once, never re-entrantly
    /// from inside a call you made on the connection.
    func connectionDidClose(_ connection: Connection, error: SocketError?)
}

extension ConnectionHandler {
    public func connectionDidReadEOF(_ connection: Connection) { connection.close() }
    public func connectionWritabilityDidChange(_ connection: Connection, isWritable: Bool) {}
}
