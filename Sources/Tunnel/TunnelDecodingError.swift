/// Why a tunnel message was rejected; `description` is the Go implementation's text for the
/// same input, so logs and Error replies match it.
public enum TunnelDecodingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The message ended before a field started (Go: io.EOF).
    case endOfInput
    /// The message ended inside a varint (Go: io.ErrUnexpectedEOF).
    case unexpectedEndOfInput
    case varintOverflow
    /// A Connect payload without `/`.
    case connectAddress
    /// A SyncConnections payload whose length is not a multiple of 8.
    case syncConnectionsFormat
    /// A SyncConnections payload over the configured cap.
    case syncConnectionsTooLarge(limit: Int)
    /// An AddClient/RemoveClient payload that is not `clientKey/sessionKey`.
    case invalidRemoteSession(String, reason: String)

    public var description: String {
        switch self {
        case .endOfInput: return "EOF"
        case .unexpectedEndOfInput: return "unexpected EOF"
        case .varintOverflow: return "binary: varint overflows a 64-bit integer"
        case .connectAddress: return "failed to parse connect address"
        case .syncConnectionsFormat: return "decoding sync connections payload: incorrect data format"
        case .syncConnectionsTooLarge(let limit): return "decoding sync connections payload: more than \(limit) bytes"
        case .invalidRemoteSession(let text, let reason): return "invalid remote Session \(text): \(reason)"
        }
    }
}
