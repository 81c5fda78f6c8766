import Reactor

/// Accepts connections on one loop and serves each with an `HTTPServerConnection`.
public final class HTTPServer {
    public let loop: EventLoop
    public let limits: HTTPLimits
    private var listener: Listener?
    private let respond: HTTPServerConnection.Responder

    /// Wraps each accepted connection before HTTP runs on it (TLS, for HTTPS); nil drops it.
    public var wrapAccepted: ((Connection) -> (any ByteStream)?)?

    public init(loop: EventLoop, limits: HTTPLimits = HTTPLimits(), respond: @escaping HTTPServerConnection.Responder) {
        self.loop = loop
        self.limits = limits
        self.respond = respond
    }

    /// Starts listening; returns the bound address (port 0 picks a free one).
    @discardableResult
    public func listen(on address: SocketAddress, options: ListenOptions = ListenOptions()) throws(SocketError) -> SocketAddress {
        loop.assertInLoop()
        let limits = self.limits, respond = self.respond, wrap = self.wrapAccepted
        let listener = try loop.listen(on: address, options: options) { connection in
            guard let stream: any ByteStream = wrap.map({ $0(connection) }) ?? connection else { return }
            HTTPServerConnection(stream: stream, limits: limits, respond: respond).start()
        }
        self.listener = listener
        return listener.address
    }

    public func close() {
        listener?.close()
        listener = nil
    }
}
