import Digest
import HTTP

/// Why a server refused an upgrade request: the status and body to answer with.
public struct WebSocketHandshakeRefusal: Error, Sendable, CustomStringConvertible {
    public var status: HTTPStatus
    public var body: String
    public init(status: HTTPStatus, body: String) { self.status = status; self.body = body }
    public var description: String { "\(status): \(body)" }
}

/// The opening handshake's rules (RFC 6455 §4).
public enum WebSocketHandshake {
    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    public static func acceptValue(forKey key: String) -> String {
        Digest.base64(Digest.sha1(Array((key + guid).utf8)))
    }

    /// A fresh random key: 16 bytes, base64.
    public static func makeKey() -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        bytes.withUnsafeMutableBytes { Digest.randomBytes($0) }
        return Digest.base64(bytes)
    }

    /// Server side: checks an upgrade request and returns the 101 head to send, or the refusal.
    public static func validate(request: HTTPRequestHead) -> Result<HTTPResponseHead, WebSocketHandshakeRefusal> {
        let headers = request.headers
        guard request.method == "GET" else {
            return .failure(.init(status: .methodNotAllowed, body: "websocket: the client is not using the websocket protocol: request method is not GET"))
        }
        guard headers.containsToken("upgrade", in: "Connection") else {
            return .failure(.init(status: .badRequest, body: "websocket: the client is not using the websocket protocol: 'upgrade' token not found in 'Connection' header"))
        }
        guard headers.containsToken("websocket", in: "Upgrade") else {
            return .failure(.init(status: .badRequest, body: "websocket: the client is not using the websocket protocol: 'websocket' token not found in 'Upgrade' header"))
        }
        guard headers["Sec-WebSocket-Version"] == "13" else {
            return .failure(.init(status: .upgradeRequired, body: "websocket: unsupported version: 13 not found in 'Sec-Websocket-Version' header"))
        }
        guard let key = headers["Sec-WebSocket-Key"], isValidKey(key) else {
            return .failure(.init(status: .badRequest, body: "websocket: not a websocket handshake: 'Sec-WebSocket-Key' header must be Base64 encoded value of 16-byte in length"))
        }
        var response = HTTPResponseHead(status: .switchingProtocols)
        response.headers.add(name: "Upgrade", value: "websocket")
        response.headers.add(name: "Connection", value: "Upgrade")
        response.headers.add(name: "Sec-WebSocket-Accept", value: acceptValue(forKey: key))
        return .success(response)
    }

    /// 16 bytes in base64: 22 characters and "==".
    static func isValidKey(_ key: String) -> Bool {
        let bytes = Array(key.utf8)
        guard bytes.count == 24, bytes[22] == UInt8(ascii: "="), bytes[23] == UInt8(ascii: "=") else { return false }
        return bytes[..<22].allSatisfy { byte in
            (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || (byte >= 48 && byte <= 57) || byte == 43 || byte == 47
        }
    }
}
