/// A stream that can move to another loop together with its socket, to be served there: a
/// request whose data lives on another loop then runs on that loop's thread only (see
/// `Connection.migrate(to:then:)`).
public protocol MigratableStream: ByteStream {
    /// The TCP socket underneath, for whoever counts sockets (nil: none, so it cannot move).
    var socket: Connection? { get }
    /// True while a move would succeed: open, nothing queued to write, no close under way.
    var isMigratable: Bool { get }
    /// Stops serving the stream here (its handler hears nothing more) and passes an equivalent
    /// stream, not yet started, to `then` on `target`, holding the bytes read but not yet
    /// consumed. False, changing nothing, unless `isMigratable`.
    func migrate(to target: EventLoop, then: @escaping @Sendable (any MigratableStream) -> Void) -> Bool
}

extension Connection: MigratableStream {
    public var socket: Connection? { self }

    public func migrate(to target: EventLoop, then: @escaping @Sendable (any MigratableStream) -> Void) -> Bool {
        migrate(to: target) { (moved: Connection) in then(moved) }
    }
}
