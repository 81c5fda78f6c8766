import Reactor
import TLS
import Tunnel
import WebSocket

/// Opens a WebSocket to a URL: TCP connect (hostnames resolved off-loop), then the handshake
/// with the caller's headers.
public enum WebSocketDialer {
    /// `tls` is used for `wss://` (default: verify against the system roots).
    public static func connect(to url: WebSocketURL, headers: [(String, String)], on loop: EventLoop, tls: TLSContext? = nil,
                               options: WebSocketOptions = WebSocketOptions(), timeout: Duration = .seconds(30),
                               completion: @escaping (Result<WebSocketConnection, any Error>) -> Void) {
        var connectOptions = ConnectOptions()
        connectOptions.timeout = timeout
        loop.connect(host: url.host, port: url.port, options: connectOptions) { result in
            switch result {
            case .failure(let error):
                completion(.failure(DialError(.connect(error), "dial tcp \(url.hostHeader): \(error)")))
            case .success(let connection):
                var stream: any ByteStream = connection
                if url.secure {
                    do {
                        let context = try tls ?? TLSContext(.client())
                        stream = try TLSStream(wrapping: connection, context: context, role: .client, serverName: url.host)
                    } catch {
                        connection.close()
                        return completion(.failure(error))
                    }
                }
                WebSocketClient.handshake(stream: stream, host: url.hostHeader, path: url.path, headers: headers,
                                          options: options, timeout: timeout, completion: completion)
            }
        }
    }
}
