import HTTP
import Reactor
import Tunnel

/// The tunnel server on every loop of a `ReactorGroup`: one `RemoteDialerServer` per loop, each
/// owning the sessions its loop accepted, sharing only a `SessionDirectory`. Each loop listens
/// on the same port (SO_REUSEPORT: the kernel spreads connections, no hand-off thread); a
/// request for a session on another loop moves there with its socket, so that no byte of it
/// crosses threads. One loop is the N = 1 case of the same code.
public final class RemoteDialerServerGroup: Sendable {
    public let reactor: ReactorGroup
    public let directory: SessionDirectory
    let members: ServerMembers

    /// Creates a server on each of `reactor`'s loops (blocks until they exist; call off them).
    public init(reactor: ReactorGroup, options: ServerOptions = ServerOptions(),
                authorizer: @escaping @Sendable Authorizer = TunnelHeaders.clientIDAuthorizer) {
        self.reactor = reactor
        let directory = SessionDirectory()
        let members = ServerMembers()
        self.directory = directory
        self.members = members
        var servers: [LoopBound<RemoteDialerServer>] = []
        for (index, loop) in reactor.loops.enumerated() {
            servers.append(loop.runBlocking {
                LoopBound(RemoteDialerServer(loop: loop, index: index, directory: directory, members: members,
                                             options: options, authorizer: authorizer), loop: loop)
            })
        }
        members.set(servers)
    }

    /// The server on each loop, by loop index.
    public var servers: [LoopBound<RemoteDialerServer>] { members.all }

    /// Runs `body` on every loop with its server and waits for all (call off the group's loops).
    public func onEveryLoop<T: Sendable>(_ body: @escaping @Sendable (RemoteDialerServer) -> T) -> [T] {
        servers.map { server in server.loop.runBlocking { body(server.value) } }
    }

    /// From any thread: a connection to `address` dialled by client `clientKey`, served on the
    /// loop that holds the client's session (its bytes reach the caller through the
    /// `AsyncByteStream`, which copies each chunk once to cross threads).
    public func dial(clientKey: String, proto: String = "tcp", address: String) async throws -> AsyncByteStream {
        let index = directory.loopIndex(forClient: clientKey, local: 0) ?? 0
        let server = servers[index]
        return try await server.loop.submit {
            AsyncByteStream(try server.value.dial(clientKey: clientKey, proto: proto, address: address))
        }
    }
}

/// The servers of a group by loop index, set once when the group is built; every server holds
/// it to reach its siblings (settings, operator actions, moved requests). Not the data path.
final class ServerMembers: Sendable {
    private let lock = Lock()
    private nonisolated(unsafe) var servers: [LoopBound<RemoteDialerServer>] = []  // guarded by `lock`

    func set(_ servers: [LoopBound<RemoteDialerServer>]) { lock.withLock { self.servers = servers } }
    var all: [LoopBound<RemoteDialerServer>] { lock.withLock { servers } }
    subscript(index: Int) -> LoopBound<RemoteDialerServer> { lock.withLock { servers[index] } }
}
