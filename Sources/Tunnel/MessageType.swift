/// The message type field. Unknown values are carried, not rejected (the Go receiver ignores them).
public struct MessageType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int64
    public init(rawValue: Int64) { self.rawValue = rawValue }

    public static let data = MessageType(rawValue: 1)
    public static let connect = MessageType(rawValue: 2)
    public static let error = MessageType(rawValue: 3)
    public static let addClient = MessageType(rawValue: 4)
    public static let removeClient = MessageType(rawValue: 5)
    public static let pause = MessageType(rawValue: 6)
    public static let resume = MessageType(rawValue: 7)
    public static let syncConnections = MessageType(rawValue: 8)

    /// Data and Connect carry the legacy deadline field.
    public var hasDeadline: Bool { self == .data || self == .connect }

    public var description: String {
        switch self {
        case .data: return "Data"
        case .connect: return "Connect"
        case .error: return "Error"
        case .addClient: return "AddClient"
        case .removeClient: return "RemoveClient"
        case .pause: return "Pause"
        case .resume: return "Resume"
        case .syncConnections: return "SyncConnections"
        default: return "unknown(\(rawValue))"
        }
    }
}
