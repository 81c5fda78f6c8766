import HTTP
import Logging
import Reactor
import Tunnel

/// `-socks ADDR`: SOCKS5 (RFC 1928) CONNECT through a client, the username (RFC 1929) naming
/// the client and the password being a proxy token under the proxy route's rules
/// (`ProxyAccess`). Names are resolved by the client, like every Connect. Replies: unknown
/// token → authentication failure; out of scope or address not allowed → "not allowed"; no
/// session → "host unreachable"; the client's refusal within `dialWait` → its reply code;
/// otherwise "succeeded" and the stream is spliced (a later refusal closes it).
public final class SOCKS5Server {
    let server: RemoteDialerServer
    let access: ProxyAccess
    let dialWait: Duration
    /// From accept to a complete CONNECT request.
    let handshakeTimeout: Duration
    var logger = Logger(label: "remotedialer.socks")

    public init(server: RemoteDialerServer, access: ProxyAccess, dialWait: Duration = .milliseconds(250),
                handshakeTimeout: Duration = .seconds(10)) {
        self.server = server
        self.access = access
        self.dialWait = dialWait
        self.handshakeTimeout = handshakeTimeout
    }

    /// Listens on the server's loop; with `limit`, its connections count against that cap (and
    /// it stops accepting at the cap) with every other way into the server.
    public func listen(on address: SocketAddress, options: ListenOptions = ListenOptions(), limit: ConnectionLimit? = nil) throws(SocketError) -> Listener {
        let listener = try server.loop.listen(on: address, options: options) { [self] connection in
            limit?.track(connection)
            connection.start(handler: SOCKS5Negotiation(socks: self, connection: connection, limit: limit))
        }
        limit?.join(listener)
        return listener
    }

    /// What a failed dial means in SOCKS5 terms, from the Go error text the client sent.
    static func replyCode(for error: any Error) -> SOCKS5Handshake.ReplyCode {
        let text = "\(error)"
        if text.hasSuffix("connection refused") { return .connectionRefused }
        if text.includes("no such host") || text.includes("no route to host") { return .hostUnreachable }
        if text.includes("network is unreachable") { return .networkUnreachable }
        if text.includes("i/o timeout") || text.includes("timed out") { return .ttlExpired }
        if text.includes("not allowed") { return .notAllowed }
        return .generalFailure
    }
}

/// One SOCKS5 requester from accept until its stream is spliced (or refused).
final class SOCKS5Negotiation: StreamHandler {
    private let socks: SOCKS5Server
    private var handshake = SOCKS5Handshake()
    private var verdict: ProxyAccess.Verdict?
    private var clientKey = ""
    private var timer: TimerID?
    private var dialling = false
    private let remoteAddress: SocketAddress?
    /// The cap the requester's socket counts against (again after a move to another loop).
    private let limit: ConnectionLimit?

    init(socks: SOCKS5Server, connection: Connection, limit: ConnectionLimit?) {
        self.socks = socks
        self.limit = limit
        remoteAddress = connection.remoteAddress
        weak let weakConnection = connection
        timer = connection.loop.scheduleTimer(after: socks.handshakeTimeout) { weakConnection?.close() }
    }

    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        while stream.isOpen && !dialling {
            let offered = buffer.bytes(from: 0, count: min(buffer.readableBytes, SOCKS5Handshake.maxMessageBytes))
            switch handshake.step(offered[...]) {
            case .needMore:
                return
            case .reply(let reply, let consumed):
                buffer.consume(consumed)
                stream.write(reply)
            case .refuse(let reply):
                return refuse(stream, reply)
            case .credentials(let user, let password, let consumed):
                buffer.consume(consumed)
                clientKey = user
                let verdict = socks.access.verdict(token: password, remoteAddress: remoteAddress, clientKey: user)
                self.verdict = verdict
                switch verdict {
                case .missingToken, .unknownToken: return refuse(stream, SOCKS5Handshake.authenticationReply(success: false))
                case .allowed, .outOfScope, .addressNotAllowed: stream.write(SOCKS5Handshake.authenticationReply(success: true))
                }
            case .connect(let target, let consumed):
                buffer.consume(consumed)
                return connect(stream, to: target)
            }
        }
    }

    private func connect(_ stream: any ByteStream, to target: TargetAddress) {
        stream.pauseReading()  // what follows the request is for the target, relayed later
        cancelTimer(stream.loop)
        guard case .allowed = verdict else { return refuse(stream, SOCKS5Handshake.reply(.notAllowed)) }
        guard socks.server.canReach(clientKey: clientKey) else { return refuse(stream, SOCKS5Handshake.reply(.hostUnreachable)) }
        dialling = true
        let (server, clientKey, wait) = (socks.server, clientKey, socks.dialWait)
        // The client's session is on another loop: the requester's socket moves there first.
        if case .elsewhere(let sibling) = server.route(clientKey: clientKey), let socket = stream as? Connection,
           socket.migrate(to: sibling.loop, then: { [limit] moved in
               limit?.track(moved)  // the socket left the count when it left this loop
               SOCKS5Dial.start(moved, started: false, server: sibling.value, clientKey: clientKey, target: target, wait: wait)
           }) {
            return
        }
        SOCKS5Dial.start(stream, started: true, server: server, clientKey: clientKey, target: target, wait: wait)
    }

    private func refuse(_ stream: any ByteStream, _ reply: [UInt8]) {
        cancelTimer(stream.loop)
        SOCKS5Dial.refuse(stream, reply)
    }

    private func cancelTimer(_ loop: EventLoop) {
        if let timer { loop.cancelTimer(timer) }
        timer = nil
    }

    func streamDidReadEOF(_ stream: any ByteStream) { stream.close() }

    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {
        cancelTimer(stream.loop)
    }
}

/// A SOCKS5 requester whose CONNECT is dialled, on the loop of the client's session: answers
/// once the dial's outcome is known (`DialOutcomeWatch`), then splices the two.
final class SOCKS5Dial: StreamHandler {
    /// The tunnelled connection while its dial is watched: closed if the requester leaves.
    private var pending: TunnelConnection?

    static func start(_ requester: any ByteStream, started: Bool, server: RemoteDialerServer, clientKey: String,
                      target: TargetAddress, wait: Duration) {
        let dial = SOCKS5Dial()
        if started { requester.replaceHandler(dial) } else { requester.start(handler: dial) }
        requester.pauseReading()  // what follows the request is for the target, relayed later
        let connection: TunnelConnection
        do { connection = try server.dial(clientKey: clientKey, address: target.description) } catch {
            // The session left since `canReach` was asked: as unreachable as if it never was.
            return refuse(requester, SOCKS5Handshake.reply(error.kind == .noSession ? .hostUnreachable : .generalFailure))
        }
        dial.pending = connection
        DialOutcomeWatch(connection, wait: wait) { [weak dial, weak requester] outcome in
            dial?.pending = nil
            guard let requester, requester.isOpen else { return connection.close() }
            switch outcome {
            case .refused(let error):
                refuse(requester, SOCKS5Handshake.reply(SOCKS5Server.replyCode(for: error)))
            case .open:
                requester.write(SOCKS5Handshake.reply(.succeeded))
                _ = StreamRelay(requester, connection)
            }
        }
    }

    static func refuse(_ stream: any ByteStream, _ reply: [UInt8]) {
        stream.write(reply)
        stream.closeAfterFlush()
    }

    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {}
    func streamDidReadEOF(_ stream: any ByteStream) { stream.close() }
    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {
        pending?.close()
        pending = nil
    }
}
