import Glibc
import Logging
import Reactor

/// `-peers-dns NAME:PORT`: every `interval` the server resolves NAME, and each A/AAAA address
/// other than its own is a peer at `ws://ADDR:PORT/connect` (`wss://` with `tls`), linked with
/// the shared token; addresses that leave the answer are unlinked. A failed lookup keeps the
/// current peers. This is how a Kubernetes headless Service lists a Deployment's replicas.
public final class PeerDiscovery {
    /// Resolves a name on `loop`'s behalf and answers on the loop (`Resolver.resolve` unless a
    /// test gives its own).
    public typealias Resolve = (_ host: String, _ port: UInt16, _ loop: EventLoop,
                                _ completion: @escaping @Sendable (Result<[SocketAddress], SocketError>) -> Void) -> Void

    let server: RemoteDialerServer
    public let name: String
    public let port: UInt16
    let token: String
    let tls: Bool
    let interval: Duration
    /// The server's own addresses (text form), never its own peer.
    let ownAddresses: Set<String>
    private let resolve: Resolve
    private var timer: TimerID?
    /// Between `start` and `stop`: a lookup answered after `stop` changes nothing.
    private var running = false
    /// Linked peers: id → url.
    public private(set) var peers: [String: String] = [:]
    var logger = Logger(label: "remotedialer.peers-dns")

    public init(server: RemoteDialerServer, name: String, port: UInt16, token: String, tls: Bool = false,
                interval: Duration = .seconds(30), ownAddresses: Set<String>,
                resolve: @escaping Resolve = { host, port, loop, completion in Resolver.resolve(host: host, port: port, on: loop, completion) }) {
        self.server = server
        self.name = name
        self.port = port
        self.token = token
        self.tls = tls
        self.interval = interval
        self.ownAddresses = ownAddresses
        self.resolve = resolve
    }

    /// Resolves now and every `interval`, on the server's loop; the shared token also
    /// authenticates the peers that find this server (whatever `-id` they send).
    public func start() {
        server.loop.assertInLoop()
        server.setDiscoveredPeerToken(token)
        running = true
        lookUp()
        timer = server.loop.scheduleTimer(after: interval, repeating: interval) { [weak self] in self?.lookUp() }
    }

    public func stop() {
        running = false
        if let timer { server.loop.cancelTimer(timer) }
        timer = nil
    }

    private func lookUp() {
        let loop = server.loop
        let this = LoopBound(self, loop: loop)
        resolve(name, port, loop) { result in
            let discovery = this.value
            switch result {
            case .success(let addresses): discovery.apply(addresses)
            case .failure(let error): discovery.logger.warning("keeping \(discovery.peers.count) peers: \(error)")
            }
        }
    }

    /// Links the peers `addresses` name and unlinks the ones they no longer name.
    func apply(_ addresses: [SocketAddress]) {
        guard running else { return }
        let wanted = Self.peerURLs(addresses, port: port, tls: tls, excluding: ownAddresses)
        for id in peers.keys where wanted[id] == nil {
            logger.info("peer \(id) left \(name)")
            server.removePeer(id: id)
            peers[id] = nil
        }
        for (id, url) in wanted.sorted(by: { $0.key < $1.key }) where peers[id] == nil {
            do {
                try server.addPeer(id: id, token: token, url: url)
                peers[id] = url
                logger.info("peer \(id) found in \(name): \(url)")
            } catch {
                logger.error("peer \(id): \(error)")
            }
        }
    }

    /// id (`dns:ADDR`) → connect URL, for every address not in `own`.
    static func peerURLs(_ addresses: [SocketAddress], port: UInt16, tls: Bool, excluding own: Set<String>) -> [String: String] {
        var urls: [String: String] = [:]
        for address in addresses where !own.contains(address.host) {
            let host = address.family == AF_INET6 ? "[\(address.host)]" : address.host
            urls["dns:\(address.host)"] = "\(tls ? "wss" : "ws")://\(host):\(port)/connect"
        }
        return urls
    }

    /// The addresses a server listening on `listen` answers on: that address, or every
    /// interface's when it listens on all of them (0.0.0.0 or ::).
    public static func ownAddresses(listeningOn listen: SocketAddress) -> Set<String> {
        guard listen.host == "0.0.0.0" || listen.host == "::" else { return [listen.host] }
        var own: Set<String> = []
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return own }
        defer { freeifaddrs(list) }
        var cursor = list
        while let entry = cursor {
            if let address = entry.pointee.ifa_addr, let text = Self.ipText(address) { own.insert(text) }
            cursor = entry.pointee.ifa_next
        }
        return own
    }

    /// An interface address in the text form `SocketAddress.host` gives.
    private static func ipText(_ address: UnsafeMutablePointer<sockaddr>) -> String? {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = Int32(address.pointee.sa_family)
        let converted: UnsafePointer<CChar>?
        switch family {
        case AF_INET: converted = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { inet_ntop(family, &$0.pointee.sin_addr, &text, socklen_t(text.count)) }
        case AF_INET6: converted = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { inet_ntop(family, &$0.pointee.sin6_addr, &text, socklen_t(text.count)) }
        default: return nil
        }
        return converted == nil ? nil : String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
