import CSystem
import Glibc

/// Options for an outgoing connection.
public struct ConnectOptions: Sendable {
    /// Give up (with `.connectTimeout`) if the handshake has not completed by then.
    public var timeout: Duration = .seconds(60)
    public var connection = ConnectionOptions()
    public init() {}
}

/// A connect in progress: registered for EPOLLOUT until the kernel reports the outcome.
final class PendingConnect: IOEventHandler {
    private let loop: EventLoop
    private var fd: Int32
    private let options: ConnectOptions
    private var id: SocketID?
    private var timer: TimerID?
    private var completion: ((Result<Connection, SocketError>) -> Void)?

    init(loop: EventLoop, fd: Int32, options: ConnectOptions, completion: @escaping (Result<Connection, SocketError>) -> Void) {
        self.loop = loop
        self.fd = fd
        self.options = options
        self.completion = completion
    }

    func begin() {
        do {
            id = try loop.register(fd: fd, interest: .write, handler: self)
        } catch {
            return finish(.failure(error))
        }
        timer = loop.scheduleTimer(after: options.timeout) { [weak self] in
            self?.finish(.failure(SocketError(.connectTimeout, operation: "connect")))
        }
    }

    func handleIOEvent(_ events: UInt32) {
        let code = Syscall.pendingError(fd)
        finish(code == 0 ? .success(()) : .failure(.errno("connect", code)))
    }

    func closeForShutdown() {
        finish(.failure(SocketError(.closed, operation: "connect")))
    }

    private func finish(_ outcome: Result<Void, SocketError>) {
        guard let completion else { return }
        self.completion = nil
        if let timer { loop.cancelTimer(timer) }
        if let id { loop.deregister(id) }
        switch outcome {
        case .success:
            let connection = Connection(loop: loop, fd: fd, options: options.connection)
            fd = -1
            completion(.success(connection))
        case .failure(let error):
            Glibc.close(fd)
            fd = -1
            completion(.failure(error))
        }
    }
}

extension EventLoop {
    /// Connects to `address`. `completion` runs on this loop, always asynchronously, with a
    /// Connection to `start(handler:)` or the error (e.g. "connect: connection refused").
    public func connect(to address: SocketAddress, options: ConnectOptions = ConnectOptions(),
                        _ completion: @escaping (Result<Connection, SocketError>) -> Void) {
        assertInLoop()
        let fd: Int32
        switch Syscall.tcpSocket(family: address.family) {
        case .success(let socket): fd = socket
        case .failure(let error): return runSoon { completion(.failure(error)) }
        }
        let rc = address.withSockAddr { Glibc.connect(fd, $0, $1) }
        let pending = PendingConnect(loop: self, fd: fd, options: options, completion: completion)
        if rc == 0 || errno == EINPROGRESS {
            // Even an immediate success goes through EPOLLOUT, keeping the completion asynchronous.
            pending.begin()
        } else {
            let error = SocketError.errno("connect")
            Glibc.close(fd)
            runSoon { completion(.failure(error)) }
        }
    }

    /// Resolves `host` off-loop (IP literals in place), then connects to the addresses in turn
    /// until one answers. The error is the last address's.
    public func connect(host: String, port: UInt16, options: ConnectOptions = ConnectOptions(),
                        _ completion: @escaping (Result<Connection, SocketError>) -> Void) {
        assertInLoop()
        let completionBox = LoopBound(completion, loop: self)
        Resolver.resolve(host: host, port: port, on: self) { [weak self] result in
            guard let self else { return }  // the loop is gone, and with it whoever waited
            let completion = completionBox.value
            switch result {
            case .failure(let error): completion(.failure(error))
            case .success(let addresses): self.connect(trying: addresses[...], options: options, completion)
            }
        }
    }

    private func connect(trying addresses: ArraySlice<SocketAddress>, options: ConnectOptions,
                         _ completion: @escaping (Result<Connection, SocketError>) -> Void) {
        connect(to: addresses.first!, options: options) { [weak self] result in
            if case .failure = result, addresses.count > 1, let self {
                self.connect(trying: addresses.dropFirst(), options: options, completion)
            } else {
                completion(result)
            }
        }
    }
}
