/// Dispatches requests by path: exact paths first, then the longest matching prefix, else 404.
/// A route may be limited to one method; a path whose routes all name other methods is 405,
/// with `Allow` listing them. A GET route also answers HEAD (the server sends no body).
public struct HTTPRouter {
    public typealias Handler = (HTTPServerExchange) -> Void

    private struct Route {
        let method: String?
        let handler: Handler
    }

    /// A path or prefix as UTF-8 bytes, with its routes.
    private struct RoutedPath {
        let bytes: [UInt8]
        var routes: [Route]
    }

    /// Paths and prefixes are few: each list is scanned, comparing bytes (no String made or
    /// hashed, no Characters walked per request).
    private var exact: [RoutedPath] = []
    /// Longest first, so the first match is the longest.
    private var prefixes: [RoutedPath] = []
    public var notFound: Handler = { $0.respond(.notFound, body: "404 page not found\n") }

    public init() {}

    /// Routes `path` exactly, for `method` only when given.
    public mutating func add(_ path: String, method: String? = nil, _ handler: @escaping Handler) {
        Self.add(Route(method: method, handler: handler), at: path, to: &exact)
    }

    /// Routes every path starting with `prefix`, for `method` only when given.
    public mutating func add(prefix: String, method: String? = nil, _ handler: @escaping Handler) {
        Self.add(Route(method: method, handler: handler), at: prefix, to: &prefixes)
        prefixes.sort { $0.bytes.count > $1.bytes.count }
    }

    private static func add(_ route: Route, at path: String, to list: inout [RoutedPath]) {
        let bytes = Array(path.utf8)
        if let index = list.firstIndex(where: { $0.bytes == bytes }) {
            list[index].routes.append(route)
        } else {
            list.append(RoutedPath(bytes: bytes, routes: [route]))
        }
    }

    public func route(_ exchange: HTTPServerExchange) {
        var path = exchange.head.path
        let routes = path.withUTF8 { path in
            exact.first(where: { path.count == $0.bytes.count && path.elementsEqual($0.bytes) })?.routes
                ?? prefixes.first(where: { path.starts(with: $0.bytes) })?.routes
        }
        guard let routes else { return notFound(exchange) }
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
