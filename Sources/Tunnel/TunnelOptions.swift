/// Every limit and period of a session, explicit and configurable. Defaults are the protocol's
/// (PROTOCOL.md §1, §3) where it names one.
public struct TunnelOptions: Sendable {
    /// Send Pause when a connection's buffered inbound bytes exceed this.
    public var pauseThreshold = 2 << 20
    /// Send Resume when they drain below this.
    public var resumeThreshold = 256 << 10
    /// A connection buffering more than this (a sender ignoring Pause) is closed with an error.
    /// Bytes already in flight when Pause goes out still arrive: on loopback we measured up to
    /// ~12 MiB (kernel socket buffers plus the WebSocket queue) on top of the pause threshold.
    public var maxBufferedInbound = 32 << 20
    /// Largest Data payload we send in one message (Go sends up to 32 KiB).
    public var maxDataPayload = 64 << 10
    /// Connections one session may hold at once; a Connect or dial beyond it is refused.
    public var maxConnections = 65_536
    /// Client role: WebSocket ping period.
    public var pingInterval: Duration = .seconds(5)
    /// No ping or pong for this long ends the session.
    public var idleTimeout: Duration = .seconds(60)
    /// The session's owner calls `closeIfIdle()` on it (a server, for all its sessions from one
    /// timer), so the session arms no idle timer of its own: a timer per idle session cost ~0.1
    /// KiB of a server's memory.
    public var ownerChecksIdle = false
    /// How often idleness is checked: a silent session ends at most this long after `idleTimeout`.
    public var idleCheckInterval: Duration { min(idleTimeout / 4, .seconds(5)) }
    /// Client role: SyncConnections period.
    public var syncInterval: Duration = .seconds(60)
    /// SyncConnections spares connections younger than this: their Connect may have crossed the
    /// list on the wire.
    public var syncGrace: Duration = .seconds(5)
    /// Timeout of the default local dialer.
    public var dialTimeout: Duration = .seconds(60)
    /// Client keys the remote may announce with AddClient (a peer server). 0: the remote is not
    /// a peer, and its AddClient/RemoveClient are ignored (and counted). Each key is at most
    /// `PayloadLimit.client` bytes with its session key, by the message's own limit.
    public var maxAnnouncedClients = 100_000
    /// Unknown connection ids answered with an Error, remembered so each gets one answer at most.
    public var maxUnknownIDsRemembered = 4096
    /// Trace every message through the logger (like CATTLE_TUNNEL_DATA_DEBUG).
    public var traceMessages = false

    public init() {}
}
