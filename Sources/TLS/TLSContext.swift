import CTLS

public enum TLSRole: Sendable { case client, server }

/// An OpenSSL SSL_CTX built from a configuration: certificates loaded and verified once,
/// shared by every connection (OpenSSL makes SSL_CTX safe to share once configured).
/// The same context serves either role; the role is chosen per connection.
public final class TLSContext: @unchecked Sendable {  // immutable after init; SSL_CTX is thread-safe for SSL_new
    let context: OpaquePointer
    public let configuration: TLSConfiguration
    /// The ALPN list the server callback reads; lives exactly as long as the SSL_CTX.
    private let alpnList: UnsafeMutablePointer<ctls_alpn_list>
    private let alpnWire: UnsafeMutableBufferPointer<UInt8>

    public init(_ configuration: TLSConfiguration) throws(TLSError) {
        var wire: [UInt8] = []
        for name in configuration.alpn {
            guard (1...255).contains(name.utf8.count) else { throw TLSError("ALPN protocol names must be 1 to 255 bytes: \"\(name)\"") }
            wire.append(UInt8(name.utf8.count))
            wire += name.utf8
        }
        ctls_clear_errors()
        guard let context = SSL_CTX_new(TLS_method()) else { throw TLSEngine.lastError("SSL_CTX_new") }
        self.context = context
        self.configuration = configuration
        alpnWire = .allocate(capacity: wire.count)
        _ = alpnWire.initialize(from: wire)
        alpnList = .allocate(capacity: 1)
        alpnList.initialize(to: ctls_alpn_list(protocols: alpnWire.baseAddress, length: UInt32(wire.count)))
        ctls_ctx_set_stream_mode(context)
        ctls_ctx_set_secure_options(context)
        _ = configuration.minimumVersion == .tls13 ? ctls_ctx_set_min_tls13(context) : ctls_ctx_set_min_tls12(context)

        if let chain = configuration.certificateChainFile {
            guard SSL_CTX_use_certificate_chain_file(context, chain) == 1 else { throw TLSEngine.lastError("loading certificate chain \(chain)") }
            let key = configuration.privateKeyFile ?? chain
            guard SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) == 1 else { throw TLSEngine.lastError("loading private key \(key)") }
            guard SSL_CTX_check_private_key(context) == 1 else { throw TLSEngine.lastError("private key does not match the certificate") }
        }
        // Verification of servers by clients; a server connection turns it off (no client certificates).
        if configuration.insecureSkipVerify {
            SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
        } else {
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
            if let caFile = configuration.caFile {
                guard SSL_CTX_load_verify_locations(context, caFile, nil) == 1 else { throw TLSEngine.lastError("loading CA file \(caFile)") }
            } else {
                guard SSL_CTX_set_default_verify_paths(context) == 1 else { throw TLSEngine.lastError("loading the system trust store") }
            }
        }
        if !wire.isEmpty {
            _ = SSL_CTX_set_alpn_protos(context, wire, UInt32(wire.count))
            ctls_ctx_select_alpn(context, alpnList)
        }
    }

    deinit {
        SSL_CTX_free(context)
        alpnList.deallocate()
        alpnWire.deallocate()
    }
}
