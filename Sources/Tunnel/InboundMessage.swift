/// Where the session is inside the message arriving now: messages come as pieces, and only the
/// small ones are collected; Data pieces go to their connection as they arrive.
enum InboundMessage {
    /// Between messages.
    case idle
    case header(MessageHeaderDecoder)
    /// Data for a connection (nil: unknown id, already answered with an Error).
    case data(TunnelConnection?)
    /// Connect, Error, AddClient, RemoveClient, SyncConnections: read up to a cap.
    case bounded(MessageHeader, BoundedPayload)
    /// Pause/Resume trailing bytes and unknown types: skipped like Go skips them.
    case ignored
}
