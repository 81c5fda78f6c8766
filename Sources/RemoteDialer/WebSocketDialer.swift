import Reactor
import Tunnel
import WebSocket

/// Opens a WebSocket to a URL: TCP connect (hostnames resolved off-loop), then the handshake
/// with the caller's headers.
public enum WebSocketDialer {
    public static func connect(to url: WebSocketURL, headers: [(String, String)], on loop: EventLoop,
                               options: WebSocketOptions = WebSocketOptions(), timeout: Duration = .seconds(30),
                               completion: @escaping (Result<WebSocketConnection, any Error>) -> Void) {
        guard !url.secure else {
            return loop.runSoon { completion(.failure(DialError("wss:// needs the TLS module, which this build does not have yet"))) }
        }
        var connectOptions = ConnectOptions()
        connectOptions.timeout = timeout
        loop.connect(host: url.host, port: url.port, options: connectOptions) { result in
            switch result {
            case .failure(let error):
                completion(.failure(DialError("dial tcp \(url.hostHeader): \(error)")))
            case .success(let connection):
                WebSocketClient.handshake(stream: connection, host: url.hostHeader, path: url.path, headers: headers,
                                          options: options, timeout: timeout, completion: completion)
            }
        }
    }
}
