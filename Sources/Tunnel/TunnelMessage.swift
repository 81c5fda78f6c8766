/// A whole message held in memory: for small messages and tests. The session's data path uses
/// `MessageHeaderDecoder` on pieces instead, so Data payloads are never assembled or copied.
public struct TunnelMessage: Equatable, Sendable {
    public var header: MessageHeader
    /// What the receiver reads: all of it for Data, SyncConnections and unknown types; at most
    /// the type's `PayloadLimit` for Connect, Error, AddClient, RemoveClient; nothing for
    /// Pause/Resume.
    public var payload: [UInt8]
    /// Bytes the receiver leaves unread (past a limit, or after a Pause/Resume).
    public var unread: [UInt8]

    public init(header: MessageHeader, payload: [UInt8]) {
        self.header = header
        self.payload = payload
        self.unread = []
    }

    /// Decodes like the Go receiver's `newServerMessage`: header errors and a Connect without
    /// `/` reject the message; everything else is accepted here and judged by the session.
    public static func decode(_ bytes: [UInt8]) throws(TunnelDecodingError) -> TunnelMessage {
        var decoder = MessageHeaderDecoder()
        let found: (header: MessageHeader, used: Int)?
        do {
            found = try bytes.withUnsafeBytes { (raw) throws(TunnelDecodingError) in try decoder.feed(raw) }
        } catch let error as TunnelDecodingError { throw error } catch { fatalError("unreachable: \(error)") }
        guard let (header, used) = found else { throw decoder.endOfInputError }
        let body = Array(bytes[used...])
        var message = TunnelMessage(header: header, payload: body)
        let limit: Int? = switch header.type {
        case .connect: PayloadLimit.connect
        case .error: PayloadLimit.error
        case .addClient, .removeClient: PayloadLimit.client
        case .pause, .resume: 0
        default: nil
        }
        if let limit {
            message.payload = Array(body.prefix(limit))
            message.unread = Array(body.dropFirst(limit))
        }
        if header.type == .connect { _ = try ConnectTarget(payload: message.payload) }
        return message
    }

    /// The message's bytes: header then payload.
    public var encoded: [UInt8] {
        header.withEncodedBytes { Array($0) } + payload
    }

    // Builders for each type.
    public static func data(id: Int64, connID: Int64, _ bytes: [UInt8]) -> TunnelMessage {
        TunnelMessage(header: MessageHeader(id: id, connID: connID, type: .data), payload: bytes)
    }
    public static func connect(id: Int64, connID: Int64, _ target: ConnectTarget) -> TunnelMessage {
        TunnelMessage(header: MessageHeader(id: id, connID: connID, type: .connect), payload: target.payload)
    }
    public static func error(id: Int64, connID: Int64, _ text: String) -> TunnelMessage {
        TunnelMessage(header: MessageHeader(id: id, connID: connID, type: .error), payload: Array(text.utf8))
    }
    public static func addClient(id: Int64, connID: Int64 = 0, _ client: RemoteClient) -> TunnelMessage {
        TunnelMessage(header: MessageHeader(id: id, connID: connID, type: .addClient), payload: client.payload)
    }
    public static func removeClient(id: Int64, connID: Int64 = 0, _ client: RemoteClient) -> TunnelMessage {
        TunnelMessage(header: MessageHeader(id: id, connID: connID, type: .removeClient), payload: client.payload)
    }
    public static func pause(id: Int64, connID: Int64) -> TunnelMessage {
        TunnelMessage(header: MessageHeader(id: id, connID: connID, type: .pause), payload: [])
    }
    public static func resume(id: Int64, connID: Int64) -> TunnelMessage {
        TunnelMessage(header: MessageHeader(id: id, connID: connID, type: .resume), payload: [])
    }
    public static func syncConnections(id: Int64, connID: Int64 = 0, _ ids: [Int64]) -> TunnelMessage {
        TunnelMessage(header: MessageHeader(id: id, connID: connID, type: .syncConnections), payload: SyncConnections.encode(ids))
    }
}
