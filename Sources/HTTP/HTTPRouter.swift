/// Dispatches requests by path: exact paths first, then the longest matching prefix, else 404.
public struct HTTPRouter {
    public typealias Handler = (HTTPServerExchange) -> Void

    private var exact: [String: Handler] = [:]
    private var prefixes: [(prefix: String, handler: Handler)] = []
    public var notFound: Handler = { $0.respond(.notFound, body: "404 page not found\n") }

    public init() {}

    public mutating func add(_ path: String, _ handler: @escaping Handler) {
        exact[path] = handler
    }

    public mutating func add(prefix: String, _ handler: @escaping Handler) {
        prefixes.append((prefix, handler))
        prefixes.sort { $0.prefix.count > $1.prefix.count }
    }

    public func route(_ exchange: HTTPServerExchange) {
        let path = exchange.head.path
        if let handler = exact[String(path)] { return handler(exchange) }
        if let match = prefixes.first(where: { path.hasPrefix($0.prefix) }) { return match.handler(exchange) }
        notFound(exchange)
    }
}
