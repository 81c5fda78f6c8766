import CTLS
import Glibc

/// One TLS connection with no I/O of its own: ciphertext comes in and goes out through the
/// caller, plaintext is read and written, so it runs over a socket or any other byte stream.
/// Not thread-safe: one owner (a loop) drives it.
public final class TLSEngine {
    /// How ciphertext passes between the engine and its stream.
    public enum CiphertextPath {
        /// Through memory BIOs: `feed` copies the peer's ciphertext in, `takeCiphertext` copies
        /// ours out.
        case buffered
        /// Without copies of our own: `lendingCiphertext` lets OpenSSL read the peer's
        /// ciphertext where it lies (a stream's read ring), and each record OpenSSL seals goes
        /// from its own buffer to `ciphertextSink` at once.
        case direct
    }

    public enum Status: Equatable {
        case done
        /// More ciphertext from the peer is needed.
        case wantRead
        /// The peer sent close_notify.
        case closed
        case failed(TLSError)
    }

    let ssl: OpaquePointer
    /// Kept alive with the SSL: OpenSSL's callbacks read memory the context owns (its ALPN list).
    public let context: TLSContext
    /// Ciphertext from the peer (OpenSSL reads it) and to the peer (OpenSSL writes it).
    private let inbound: OpaquePointer
    private let outbound: OpaquePointer
    public let path: CiphertextPath
    /// With `.direct`: takes each sealed record whole, or returns false (the stream is gone, and
    /// the TLS call that wrote fails).
    public var ciphertextSink: ((UnsafeRawBufferPointer) -> Bool)?
    public let role: TLSRole
    public private(set) var handshakeComplete = false

    /// A client verifies the server against `serverName` (or the configuration's); without a name
    /// it refuses to start unless the configuration says `insecureSkipVerify`.
    public init(context: TLSContext, role: TLSRole, serverName: String? = nil, path: CiphertextPath = .buffered) throws(TLSError) {
        let built = try context.prepared()
        ctls_clear_errors()
        guard let ssl = SSL_new(built.context) else { throw Self.lastError("SSL_new") }
        self.ssl = ssl
        self.context = context
        self.role = role
        self.path = path
        switch path {
        case .buffered:
            inbound = BIO_new(BIO_s_mem())
            outbound = BIO_new(BIO_s_mem())
        case .direct:
            let window = ctls_window_bio_new()
            let sink = ctls_sink_bio_new { context, bytes, length in
                // The SSL (and with it this BIO) lives no longer than the engine: unretained is safe.
                let engine = Unmanaged<TLSEngine>.fromOpaque(context!).takeUnretainedValue()
                guard let sink = engine.ciphertextSink, sink(UnsafeRawBufferPointer(start: bytes, count: Int(length))) else { return -1 }
                return length
            }
            guard let window, let sink else {
                if let window { BIO_free(window) }
                if let sink { BIO_free(sink) }
                SSL_free(ssl)
                throw Self.lastError("making the ciphertext BIOs")
            }
            inbound = window
            outbound = sink
        }
        SSL_set_bio(ssl, inbound, outbound)  // the SSL owns both BIOs now
        if path == .direct { ctls_sink_bio_set_context(outbound, Unmanaged.passUnretained(self).toOpaque()) }
        if role == .server {
            SSL_set_accept_state(ssl)
            if let roots = built.clientCertificateRoots {
                let required = context.configuration.clientCertificateOptional ? 0 : SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                SSL_set_verify(ssl, SSL_VERIFY_PEER | required, nil)
                guard ctls_set1_verify_store(ssl, roots) == 1 else { throw Self.lastError("setting the client CA store") }
            } else {
                SSL_set_verify(ssl, SSL_VERIFY_NONE, nil)  // no client certificates: no CertificateRequest
            }
            return
        }
        SSL_set_connect_state(ssl)
        let name = serverName ?? context.configuration.serverName ?? ""
        let verify = !context.configuration.insecureSkipVerify
        if Self.isIPAddress(name) {
            // RFC 6066: no SNI for addresses; the certificate must list the address itself.
            if verify, X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1 { throw Self.lastError("setting the expected address") }
        } else if !name.isEmpty {
            guard ctls_set_server_name(ssl, name) == 1 else { throw Self.lastError("setting the server name") }
            if verify, SSL_set1_host(ssl, name) != 1 { throw Self.lastError("setting the expected host name") }
        } else if verify {
            throw TLSError("no server name to verify the certificate against (set serverName, or insecureSkipVerify for labs)")
        }
    }

    deinit { SSL_free(ssl) }

    /// With `.buffered`: hands the peer's ciphertext to OpenSSL (copied into the memory BIO).
    public func feed(_ ciphertext: UnsafeRawBufferPointer) {
        precondition(path == .buffered, "feed needs the buffered ciphertext path")
        guard ciphertext.count > 0 else { return }
        _ = BIO_write(inbound, ciphertext.baseAddress, Int32(ciphertext.count))
    }

    /// With `.direct`: OpenSSL may read `ciphertext` during `body` (its handshake and read
    /// calls), in place. Returns how many bytes it took; the rest stays the caller's, to lend
    /// again later (OpenSSL keeps a partial record it took).
    public func lendingCiphertext(_ ciphertext: UnsafeRawBufferPointer, _ body: () -> Void) -> Int {
        precondition(path == .direct, "lendingCiphertext needs the direct ciphertext path")
        ctls_window_bio_set(inbound, ciphertext.baseAddress, ciphertext.count)
        body()
        let taken = ctls_window_bio_taken(inbound)
        ctls_window_bio_set(inbound, nil, 0)
        return taken
    }

    /// Ciphertext waiting to go to the peer.
    public var pendingCiphertext: Int { Int(BIO_ctrl_pending(outbound)) }

    /// Moves up to `buffer.count` bytes of ciphertext for the peer into `buffer`.
    public func takeCiphertext(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let count = BIO_read(outbound, buffer.baseAddress, Int32(buffer.count))
        return max(0, Int(count))
    }

    /// Advances the handshake as far as the fed ciphertext allows.
    public func handshake() -> Status {
        guard !handshakeComplete else { return .done }
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            handshakeComplete = true
            return .done
        }
        return status(after: result, operation: "handshake")
    }

    /// Decrypts into `buffer`: `.done` with the count, or why nothing came.
    public func read(into buffer: UnsafeMutableRawBufferPointer) -> (Status, Int) {
        guard buffer.count > 0 else { return (.done, 0) }
        var count = 0
        let result = SSL_read_ex(ssl, buffer.baseAddress, buffer.count, &count)
        if result == 1 { return (.done, count) }
        return (status(after: result, operation: "read"), 0)
    }

    /// Encrypts `plaintext` (records of up to 16 KiB); the ciphertext waits in `pendingCiphertext`.
    public func write(_ plaintext: UnsafeRawBufferPointer) -> Status {
        var offset = 0
        while offset < plaintext.count {
            var written = 0
            let result = SSL_write_ex(ssl, plaintext.baseAddress! + offset, plaintext.count - offset, &written)
            guard result == 1 else { return status(after: result, operation: "write") }
            offset += written
        }
        return .done
    }

    /// Queues close_notify for the peer.
    public func shutdown() {
        ctls_clear_errors()
        _ = SSL_shutdown(ssl)
    }

    /// The protocol ALPN settled on, if any.
    public var negotiatedALPN: String? {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    public var negotiatedVersion: String { String(cString: SSL_get_version(ssl)) }

    /// The peer's certificate once the handshake is done, if it presented one and it was
    /// verified: a client sees the server's (nil with `insecureSkipVerify`), a server the
    /// client's when it requires one (`clientCAFile`; nil otherwise).
    public var peerCertificate: TLSPeerCertificate? {
        guard handshakeComplete, SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER != 0, SSL_get_verify_result(ssl) == X509_V_OK,
              let certificate = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(certificate) }
        return TLSPeerCertificate(x509: certificate)
    }

    private func status(after result: Int32, operation: String) -> Status {
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .wantRead
        case SSL_ERROR_ZERO_RETURN:
            return .closed
        default:
            let verify = SSL_get_verify_result(ssl)
            if SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER != 0 && verify != X509_V_OK {
                ctls_clear_errors()
                let whose = role == .server ? "client " : ""
                return .failed(TLSError("\(whose)certificate verify failed: \(String(cString: X509_verify_cert_error_string(Int(verify))))"))
            }
            return .failed(Self.lastError("TLS \(operation)"))
        }
    }

    /// The oldest queued OpenSSL error as text, prefixed with what we were doing.
    static func lastError(_ doing: String) -> TLSError {
        let reason = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 256) { buffer in
            ctls_pop_error(buffer.baseAddress, buffer.count)
            return String(cString: buffer.baseAddress!)
        }
        return TLSError(reason.isEmpty ? "\(doing) failed" : "\(doing): \(reason)")
    }

    static func isIPAddress(_ name: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET, name, &address) == 1 || inet_pton(AF_INET6, name, &address) == 1
    }
}
