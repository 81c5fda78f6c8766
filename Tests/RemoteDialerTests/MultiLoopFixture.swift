import Foundation
import Glibc
import HTTP
import Reactor
import RemoteDialer
import Testing
import TestSupport
import Tunnel

/// A tunnel server on several loops of one `ReactorGroup` (one SO_REUSEPORT listener each on one
/// port, as the bundled server runs), clients on loops of their own, and an HTTP target on the
/// clients' side: `GET /blob/SEED/SIZE` answers SIZE bytes of `MultiLoopFixture.blob`, `POST
/// /echo` answers the request body.
final class MultiLoopFixture {
    let serverReactor: ReactorGroup
    let group: RemoteDialerServerGroup
    let https: [LoopBound<HTTPServer>]
    let port: UInt16
    let clientReactor: ReactorGroup
    let targetPort: UInt16
    private let target: LoopBound<HTTPServer>
    private let clientsLock = PThreadLock()
    private nonisolated(unsafe) var clients: [String: LoopBound<RemoteDialerClient>] = [:]  // guarded by clientsLock

    init(loops: Int, options: ServerOptions = ServerOptions(), clientLoops: Int = 2) throws {
        serverReactor = try ReactorGroup(loopCount: loops, name: "server")
        group = RemoteDialerServerGroup(reactor: serverReactor, options: options)
        var bound = try SocketAddress("127.0.0.1:0")
        var listen = ListenOptions()
        listen.reusePort = true
        var https: [LoopBound<HTTPServer>] = []
        for member in group.servers {
            https.append(try member.loop.runBlocking { () throws in
                let server = member.value
                let route = ClientRoute(server: server)
                var router = HTTPRouter()
                router.add("/connect") { server.handleConnect($0) }
                router.add(prefix: ClientRoute.prefix) { route.handle($0) }
                let http = HTTPServer(loop: member.loop) { [router] in router.route($0) }
                server.httpServer = http
                bound = try http.listen(on: bound, options: listen)
                return LoopBound(http, loop: member.loop)
            })
        }
        self.https = https
        port = bound.port
        clientReactor = try ReactorGroup(loopCount: clientLoops, name: "clients")
        let targetLoop = clientReactor.loops[0]
        (target, targetPort) = try targetLoop.runBlocking { () throws in
            let http = HTTPServer(loop: targetLoop) { exchange in Self.serveTarget(exchange) }
            let address = try http.listen(on: SocketAddress("127.0.0.1:0"))
            return (LoopBound(http, loop: targetLoop), address.port)
        }
    }

    /// Byte `index` of the blob seeded with `seed`.
    static func blob(seed: Int, size: Int) -> [UInt8] {
        (0..<size).map { UInt8(truncatingIfNeeded: ($0 &* 131) ^ (seed &* 7919) ^ ($0 >> 8)) }
    }

    /// One period of every blob: byte `index` depends on `index` modulo 65536 only (131·index
    /// and index >> 8, each cut to a byte), and on the seed by one XOR.
    private static let blobPeriod = blob(seed: 0, size: 1 << 16)

    private static func serveTarget(_ exchange: HTTPServerExchange) {
        let parts = exchange.head.path.split(separator: "/")
        if exchange.head.method == "POST" && exchange.head.path == "/echo" {
            exchange.writeHead(HTTPResponseHead(status: .ok))
            exchange.onBodyPiece = { exchange.writeBody($0) }
            exchange.onBodyEnd = { exchange.end() }
            if exchange.bodyComplete { exchange.end() }
            return
        }
        guard parts.count == 3, parts[0] == "blob", let seed = Int(parts[1]), let size = Int(parts[2]) else {
            return exchange.respond(.notFound, body: "no such target\n")
        }
        serveBlob(exchange, seed: seed, size: size)
    }

    /// Streams the blob as the peer takes it, as a real server would, rather than making all of
    /// it up front: this target shares its loop with the clients' sessions, and a megabyte made
    /// byte by byte costs that loop about 0.2 s in a debug build. A requester that is gone by the
    /// time its request gets here (tests that hang up early) costs at most one period, not the
    /// whole blob.
    private static func serveBlob(_ exchange: HTTPServerExchange, seed: Int, size: Int) {
        let key = UInt8(truncatingIfNeeded: seed &* 7919)
        let period = blobPeriod.prefix(size).map { $0 ^ key }
        var sent = 0
        func pump() {
            while sent < size {
                let start = sent % period.count
                let count = min(period.count - start, size - sent)
                // False once the connection is gone: the exchange is aborted, nothing more to make.
                guard period.withUnsafeBytes({ exchange.writeBody(UnsafeRawBufferPointer(rebasing: $0[start..<(start + count)])) }) else { return }
                sent += count
                guard exchange.isWritable else { return }  // the rest once it drains (onWritable)
            }
            exchange.end()
        }
        exchange.writeHead(HTTPResponseHead(status: .ok, headers: ["Content-Length": "\(size)"]))
        exchange.onWritable = { pump() }
        pump()
    }

    /// Starts a client session for each id and waits until the directory holds them all.
    func connect(_ ids: [String], to serverPort: UInt16? = nil) throws {
        let url = try WebSocketURL("ws://127.0.0.1:\(serverPort ?? port)/connect")
        for (index, id) in ids.enumerated() {
            let loop = clientReactor.loops[index % clientReactor.loops.count]
            let client = loop.runBlocking {
                let client = RemoteDialerClient(loop: loop, url: url, headers: [(TunnelHeaders.clientID, id)])
                client.start()
                return LoopBound(client, loop: loop)
            }
            clientsLock.withLock { clients[id] = client }
        }
    }

    /// Connects `ids`, then, while some loop of the group holds none of their sessions (the
    /// kernel's flow hash may put a few connections all on one loop), one more client at a time,
    /// up to `extra` more; the ids connected, every session up.
    func connectOnEveryLoop(_ ids: [String], extra: Int = 32) throws -> [String] {
        var connected = ids
        try connect(ids)
        guard waitForSessions(ids) else { throw FixtureError("sessions of \(ids) did not come up") }
        while Set(connected.flatMap { group.directory.loops(ofClient: $0) }).count < group.servers.count,
              connected.count < ids.count + extra {
            let id = "\(ids.last ?? "client")-extra\(connected.count)"
            try connect([id])
            guard waitForSessions([id]) else { throw FixtureError("session of \(id) did not come up") }
            connected.append(id)
        }
        return connected
    }

    func waitForSessions(_ ids: [String], in directory: SessionDirectory? = nil, seconds: Double = 30) -> Bool {
        let directory = directory ?? group.directory
        return waitUntil(seconds: seconds) { ids.allSatisfy { directory.hasSession(clientKey: $0) } }
    }

    /// Stops client `id` (its session ends, Error "EOF" on its connections).
    func disconnect(_ id: String) {
        guard let client = clientsLock.withLock({ clients.removeValue(forKey: id) }) else { return }
        client.loop.runBlocking { client.value.stop() }
    }

    /// `GET` through the tunnel on a new connection; the status and body, nil if no answer.
    func get(client id: String, path: String, port serverPort: UInt16? = nil) -> (status: Int, body: [UInt8])? {
        let request = "GET /client/\(id)/http/127.0.0.1:\(targetPort)\(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        return Self.response(rawExchange(port: serverPort ?? port, request, seconds: 30))
    }

    /// `POST /echo` of `body` through the tunnel on a new connection.
    func echo(client id: String, _ body: [UInt8]) -> (status: Int, body: [UInt8])? {
        guard let fd = connectLoopback(port: port) else { return nil }
        defer { close(fd) }
        let head = "POST /client/\(id)/http/127.0.0.1:\(targetPort)/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: \(body.count)\r\n\r\n"
        // The reply streams while we send: read it on another thread, or both sides could stall.
        let reply = OneShot<[UInt8]?>()
        let reader = Thread { reply.set(readToEnd(fd, seconds: 60)) }
        reader.start()
        guard sendAll(fd, Array(head.utf8) + body) else { return nil }
        return Self.response(reply.wait(seconds: 60) ?? nil)
    }

    /// Status and body (de-chunked) of an HTTP response read to its end.
    static func response(_ bytes: [UInt8]?) -> (status: Int, body: [UInt8])? {
        guard let bytes, let (head, rest) = splitHead(bytes), let status = Int(head.split(separator: " ").dropFirst().first ?? "") else { return nil }
        guard head.lowercased().contains("transfer-encoding: chunked") else { return (status, rest) }
        var body: [UInt8] = []
        var index = 0
        while let lineEnd = (index..<max(index, rest.count - 1)).first(where: { rest[$0] == 13 && rest[$0 + 1] == 10 }),
              let size = Int(String(decoding: rest[index..<lineEnd], as: UTF8.self), radix: 16), size > 0, lineEnd + 2 + size <= rest.count {
            body += rest[(lineEnd + 2)..<(lineEnd + 2 + size)]
            index = lineEnd + 2 + size + 2
        }
        return (status, body)
    }

    /// Per server loop: (sockets accepted, requests moved to another loop, bytes read, bytes written).
    func loopCounters() -> [(accepted: Int, moved: Int, read: Int, written: Int)] {
        zip(group.servers, https).map { server, http in
            server.loop.runBlocking {
                (http.value.acceptedConnections, server.value.requestsMoved, server.loop.socketBytesRead, server.loop.socketBytesWritten)
            }
        }
    }

    /// Client sessions each server loop holds.
    func sessionsPerLoop() -> [Int] { group.onEveryLoop { $0.sessions.clientSessionCount } }

    func shutdown() {
        for id in clientsLock.withLock({ Array(clients.keys) }) { disconnect(id) }
        let target = target
        target.loop.runBlocking { target.value.close() }
        for (server, http) in zip(group.servers, https) { server.loop.runBlocking { http.value.close(); server.value.shutdown() } }
        clientReactor.shutdown()
        serverReactor.shutdown()
    }
}
