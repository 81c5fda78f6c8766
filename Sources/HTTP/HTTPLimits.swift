/// Bounds on what a peer may send; each has an explicit answer when exceeded.
public struct HTTPLimits: Sendable {
    /// Longest request/status line or header line → 431 (414 would be for the line alone; we keep one answer).
    public var maxLineLength = 8192
    public var maxHeaderCount = 100
    /// Whole head, all lines → 431.
    public var maxHeadBytes = 64 << 10
    /// Longest chunk-size line of a chunked body.
    public var maxChunkLineLength = 1024

    public init() {}
}

/// Why a head or body was rejected, with the status a server answers.
public enum HTTPParseError: Error, Equatable, Sendable, CustomStringConvertible {
    case headTooLarge
    case tooManyHeaders
    case malformedRequestLine
    case malformedStatusLine
    case malformedHeader
    case unsupportedVersion
    case invalidContentLength
    case unsupportedTransferEncoding
    case malformedChunk
    case bodyTruncated

    public var status: HTTPStatus {
        switch self {
        case .headTooLarge, .tooManyHeaders: .headerFieldsTooLarge
        case .unsupportedTransferEncoding: HTTPStatus(501)
        default: .badRequest
        }
    }

    public var description: String {
        switch self {
        case .headTooLarge: "header too large"
        case .tooManyHeaders: "too many header fields"
        case .malformedRequestLine: "malformed request line"
        case .malformedStatusLine: "malformed status line"
        case .malformedHeader: "malformed header field"
        case .unsupportedVersion: "unsupported HTTP version"
        case .invalidContentLength: "invalid Content-Length"
        case .unsupportedTransferEncoding: "unsupported Transfer-Encoding"
        case .malformedChunk: "malformed chunked body"
        case .bodyTruncated: "unexpected EOF in body"
        }
    }
}
