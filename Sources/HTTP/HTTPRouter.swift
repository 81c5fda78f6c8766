/// Dispatches requests by path: exact paths first, then the longest matching prefix, else 404.
/// A route may be limited to one method; a path whose routes all name other methods is 405,
/// with `Allow` listing them. A GET route also answers HEAD (the server sends no body).
public struct HTTPRouter {
    public typealias Handler = (HTTPServerExchange) -> Void

    private struct Route {
        let method: String?
        let handler: Handler
    }

    private var exact: [String: [Route]] = [:]
    private var prefixes: [(prefix: String, routes: [Route])] = []
    public var notFound: Handler = { $0.respond(.notFound, body: "404 page not found\n") }

    public init() {}

    /// Routes `path` exactly, for `method` only when given.
    public mutating func add(_ path: String, method: String? = nil, _ handler: @escaping Handler) {
        exact[path, default: []].append(Route(method: method, handler: handler))
    }

    /// Routes every path starting with `prefix`, for `method` only when given.
    public mutating func add(prefix: String, method: String? = nil, _ handler: @escaping Handler) {
        let route = Route(method: method, handler: handler)
        if let index = prefixes.firstIndex(where: { $0.prefix == prefix }) {
            prefixes[index].routes.append(route)
        } else {
            prefixes.append((prefix, [route]))
            prefixes.sort { $0.prefix.count > $1.prefix.count }
        }
    }

    public func route(_ exchange: HTTPServerExchange) {
        let path = exchange.head.path
        // Prefixes compare as bytes, not as Characters (which cost a grapheme walk per request).
        // Exact paths are few; compared as bytes, with no String made and hashed per request.
        guard let routes = exact.first(where: { $0.key.utf8.count == path.utf8.count && $0.key.utf8.elementsEqual(path.utf8) })?.value ?? prefixes.first(where: { path.utf8.starts(with: $0.prefix.utf8) })?.routes else {
            return notFound(exchange)
        }
        let method = exchange.head.method
        if let route = routes.first(where: { $0.method == nil || $0.method == method })
            ?? routes.first(where: { method == "HEAD" && $0.method == "GET" }) {
            return route.handler(exchange)
        }
        var allowed = Set(routes.compactMap(\.method))
        if allowed.contains("GET") { allowed.insert("HEAD") }
        exchange.respond(.methodNotAllowed, headers: ["Allow": allowed.sorted().joined(separator: ", ")], body: "method not allowed\n")
    }
}
