import HTTP
import Reactor
import TLS
import Tunnel

/// `/client/{id}/{scheme}/{host}[/{path...}]`: makes the request to `{scheme}://{host}/{path}`
/// through client `{id}` and streams the answer back (status, headers, body; never buffered
/// whole), bounded by `?timeout=<seconds>` (default 15) like the Go demo's HTTP client.
/// `/client/{id}/healthz` is the client's health (`ClientHealth`), under the same access rules.
public struct ClientRoute {
    public static let prefix = "/client/"
    /// Request and response headers that concern one hop only.
    static let hopByHop = ["connection", "keep-alive", "proxy-connection", "proxy-authenticate",
                           "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "host"]

    /// Checked for every field both ways: the length comparison, inlined here, skips most calls.
    static func isHopByHop(_ name: String) -> Bool {
        let count = name.utf8.count
        return hopByHop.contains { $0.utf8.count == count && $0.equalsIgnoringASCIICase(name) }
    }

    let server: RemoteDialerServer
    /// Who may use the route (default: requesters on loopback only).
    public let access: ProxyAccess

    /// "host:port" or "[v6]:port" without the port, for SNI and verification.
    static func hostName(_ host: String) -> String {
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") { return String(host[host.index(after: host.startIndex)..<close]) }
        guard let colon = host.lastIndex(of: ":") else { return host }
        return String(host[..<colon])
    }

    /// The target's path after the prefix, cut at its first three "/" (`{id}`, `{scheme}`,
    /// `{host}`, `[{path...}]`), without the query. Cut on the contiguous bytes ("/" is ASCII, so
    /// every cut is on a character boundary): the generic split over `String.UTF8View` cost
    /// about 3k instructions a request.
    static func routeParts(_ target: String) -> [String] {
        var target = target
        return target.withUTF8 { bytes in
            let end = bytes.firstIndex(of: UInt8(ascii: "?")) ?? bytes.count
            var start = min(prefix.utf8.count, end)
            var parts: [String] = []
            while parts.count < 3, let slash = bytes[start..<end].firstIndex(of: UInt8(ascii: "/")) {
                parts.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<slash]), as: UTF8.self))
                start = slash + 1
            }
            parts.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self))
            return parts
        }
    }

    public init(server: RemoteDialerServer, access: ProxyAccess = ProxyAccess()) {
        self.server = server
        self.access = access
    }

    public func handle(_ exchange: HTTPServerExchange) {
        let parts = Self.routeParts(exchange.head.target)
        let isHealth = parts.count == 2 && parts[1] == "healthz"
        guard !parts[0].isEmpty, isHealth || (parts.count >= 3 && !parts[1].isEmpty && !parts[2].isEmpty) else {
            return exchange.respond(.notFound, body: "404 page not found\n")
        }
        let clientKey = parts[0]
        let consumedAuthorization: Bool
        switch access.decide(head: exchange.head, remoteAddress: exchange.remoteAddress, clientKey: clientKey) {
        case .refused(let status, let headers, let body): return exchange.respond(status, headers: headers, body: body)
        case .allowed(let consumed): consumedAuthorization = consumed
        }
        if isHealth { return ClientHealth.respond(exchange, clientKey: clientKey, server: server) }
        let scheme = parts[1], host = parts[2]
        guard !server.isDraining else { return exchange.respond(.serviceUnavailable, body: "server draining\n") }
        let path = parts.count > 3 ? parts[3] : ""
        let method = exchange.head.method
        let fail = { (error: Any) in
            // Go's url.Error prefix: the method with only its first letter upper-case ("Get").
            let operation = method.prefix(1).uppercased() + method.dropFirst().lowercased()
            exchange.respond(.internalServerError, body: "\(operation) \"\(scheme)://\(host)/\(path)\": \(error)")
        }
        guard scheme == "http" || scheme == "https" else { return fail("unsupported protocol scheme \"\(scheme)\"") }
        let timeout: Duration
        switch Self.timeout(exchange.head.queryParameter("timeout"), options: server.options) {
        case .success(let value): timeout = value
        case .failure(let refusal): return exchange.respond(.badRequest, body: refusal.description + "\n")
        }
        let address = host.hasSuffix("]") || !host.utf8.contains(UInt8(ascii: ":")) ? "\(host):\(scheme == "https" ? 443 : 80)" : host

        if server.movedToSessionLoop(exchange, clientKey: clientKey) { return }
        // Upstream keep-alive: plain http only (https keeps one TLS session per request), and only
        // through a session of the client itself, not a peer's: an idle connection held here
        // would be a busy one on the peer, holding its drain open until its timeout.
        let pool = scheme == "http" && server.upstreamPool.isEnabled && server.sessions.hasSession(clientKey: clientKey)
            ? server.upstreamPool : nil
        let target = UpstreamPool.Target(clientKey: clientKey, scheme: scheme, address: address)

        // Host, the requester's fields, Transfer-Encoding, Connection.
        var request = HTTPRequestHead(method: method, target: "/" + path, headers: HTTPHeaders(capacity: exchange.head.headers.count + 3))
        request.headers.add(name: "Host", value: host)
        for field in exchange.head.headers where !Self.isHopByHop(field.name) && !field.name.equalsIgnoringASCIICase("expect") {
            // Our credential is for us, never for the target.
            if consumedAuthorization && field.name.equalsIgnoringASCIICase("authorization") { continue }
            request.headers.add(name: field.name, value: field.value)
        }
        if exchange.head.headers.containsToken("chunked", in: "Transfer-Encoding") {
            request.headers.add(name: "Transfer-Encoding", value: "chunked")
        }
        if pool == nil { request.headers.add(name: "Connection", value: "close") }
        // A request that failed on a reused connection before any answer came (its target closed
        // it as we sent) is sent again on a new one only if sending it twice cannot matter: an
        // idempotent method without a body (Go's Transport retries the same way).
        let bodyless = (try? HTTPBodyFraming.of(request: exchange.head)).map { $0 == .none || $0 == .length(0) } ?? false
        let retryable = bodyless && (method == "GET" || method == "HEAD" || method == "OPTIONS")

        let loop = exchange.loop
        let proxied = ProxiedRequest()

        // Sends the request on an idle pooled connection (`reusing`) or a new one.
        func send(reusing: Bool) {
            let upstreamStream: any ByteStream
            let reused: Bool
            if reusing, let pool, let idle = pool.take(target) {
                upstreamStream = idle
                reused = true
            } else {
                reused = false
                let connection: TunnelConnection
                do { connection = try server.dial(clientKey: clientKey, proto: "tcp", address: address) } catch {
                    proxied.cancelTimer(loop)
                    return fail(error)
                }
                // https: TLS inside the tunnelled connection, verified like any client would.
                if scheme == "https" {
                    do {
                        let context = try server.options.upstreamTLS ?? TLSContext(.client())
                        upstreamStream = try TLSStream(wrapping: connection, context: context, role: .client, serverName: Self.hostName(host))
                    } catch {
                        connection.close()
                        proxied.cancelTimer(loop)
                        return fail(error)
                    }
                } else {
                    upstreamStream = connection
                }
            }

            // The exchange's event handler pauses the exchange itself; weak, since the exchange holds the handler.
            weak var pausable: HTTPClientExchange?
            let reuse: ((any ByteStream) -> Void)? = pool.map { pool in { stream in pool.put(stream, for: target) } }
            let upstream = HTTPClientExchange(stream: upstreamStream, request: request, reuse: reuse) { event in
                switch event {
                case .head(let head):
                    var response = HTTPResponseHead(status: head.status, headers: HTTPHeaders(capacity: head.headers.count))
                    for field in head.headers where !Self.isHopByHop(field.name) {
                        response.headers.add(name: field.name, value: field.value)
                    }
                    exchange.writeHead(response)
                case .bodyPiece(let piece):
                    exchange.writeBody(piece)
                    // The rest of what arrived stays in the tunnelled connection's buffer (where it
                    // sends Pause) rather than all going into the requester's write queue.
                    if !exchange.isWritable { pausable?.pauseResponse() }
                case .end:
                    proxied.cancelTimer(loop)
                    exchange.end()
                case .failure(let error):
                    if reused && retryable && proxied.cancelError == nil && !exchange.headWritten && !exchange.ended
                        && !(pausable?.receivedResponseBytes ?? true) {
                        // Not from here: this exchange is still finishing on the stack. The timeout
                        // may fire in between: then it is the answer.
                        return loop.runSoon {
                            guard !exchange.ended else { return }
                            if let error = proxied.cancelError { return fail(error) }
                            send(reusing: false)
                        }
                    }
                    proxied.cancelTimer(loop)
                    if !exchange.headWritten {
                        fail(error)
                    } else if let downstream = exchange.streamAfterWritingHead() {
                        // Mid-body: the only honest signal left is to cut the response short.
                        downstream.close(error: error)
                    }
                }
            }
            pausable = upstream
            proxied.upstream = upstream
            exchange.onWritable = { upstream.resumeResponse() }
            exchange.onBodyPiece = { piece in
                upstream.writeBody(piece)
                if !upstream.isWritable { exchange.pauseBody() }
            }
            upstream.onWritable = { exchange.resumeBody() }
            exchange.onBodyEnd = { upstream.endBody() }
            if exchange.bodyComplete { upstream.endBody() }
        }

        // The requester is gone (hung up, bad body, timed out): end the tunnelled connection now.
        exchange.onAbort = { _ in
            proxied.cancelTimer(loop)
            proxied.cancel(error: HTTPClientError.closedBeforeResponse)
        }
        proxied.timer = loop.scheduleTimer(after: timeout) {
            proxied.timer = nil
            proxied.cancel(error: HTTPClientError.timeout)
        }
        send(reusing: pool != nil)
    }

    /// `?timeout=<seconds>`: absent → the default, else a whole number of seconds ≥ 0 (0 means
    /// the server's maximum, like Go's "no timeout" but bounded), capped by the maximum.
    static func timeout(_ text: String?, options: ServerOptions) -> Result<Duration, ProxyRequestError> {
        guard let text else { return .success(min(options.defaultProxyTimeout, options.maxProxyTimeout)) }
        guard let seconds = Int(text), seconds >= 0 else { return .failure(.badTimeout(text)) }
        if seconds == 0 { return .success(options.maxProxyTimeout) }
        return .success(min(.seconds(seconds), options.maxProxyTimeout))
    }
}

/// A `/client/...` request the server refuses before dialling.
public enum ProxyRequestError: Error, Equatable, CustomStringConvertible {
    case badTimeout(String)

    public var description: String {
        switch self {
        case .badTimeout(let text): "invalid timeout \"\(text.prefix(32))\": want a whole number of seconds"
        }
    }
}

/// One `/client/...` request's upstream side across its attempts (a retry after a reused
/// connection failed replaces `upstream`): the timeout and the requester's abort reach
/// whichever attempt is current.
private final class ProxiedRequest {
    var upstream: HTTPClientExchange?
    var timer: TimerID?
    /// Why it was cancelled (timed out, or abandoned by the requester): no retry then.
    private(set) var cancelError: (any Error)?

    func cancelTimer(_ loop: EventLoop) {
        if let timer { loop.cancelTimer(timer) }
        timer = nil
    }

    func cancel(error: any Error) {
        cancelError = error
        upstream?.cancel(error: error)
    }
}
