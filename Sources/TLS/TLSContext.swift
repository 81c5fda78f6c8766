import CTLS
import Reactor

public enum TLSRole: Sendable { case client, server }

/// An OpenSSL SSL_CTX built from a configuration: certificates loaded and verified once,
/// shared by every connection (OpenSSL makes SSL_CTX safe to share once configured).
/// The same context serves either role; the role is chosen per connection.
///
/// A configuration that names files (certificates, keys, CAs) is built at once, so a bad file
/// fails at startup. One that names none (a plain client trusting the system store) is built by
/// the first connection: the programs make such contexts at startup for peers and upstreams
/// they may never reach, and building one loads OpenSSL (~4 MB of RSS) into a process that
/// otherwise never uses TLS.
public final class TLSContext: @unchecked Sendable {  // `built` is guarded by `lock`; the rest is immutable
    public let configuration: TLSConfiguration
    /// The ALPN protocols in wire format; the server callback reads `alpnList`, which lives
    /// exactly as long as the SSL_CTX.
    private let wire: [UInt8]
    private let alpnList: UnsafeMutablePointer<ctls_alpn_list>
    private let alpnWire: UnsafeMutableBufferPointer<UInt8>
    private let lock = Lock()
    private var built: Built?

    struct Built {
        let context: OpaquePointer
        /// Mutual TLS: the roots client certificates must chain to (an X509_STORE), kept apart
        /// from the context's own store; nil when servers request no client certificate.
        let clientCertificateRoots: OpaquePointer?
    }

    public init(_ configuration: TLSConfiguration) throws(TLSError) {
        var wire: [UInt8] = []
        for name in configuration.alpn {
            guard (1...255).contains(name.utf8.count) else { throw TLSError("ALPN protocol names must be 1 to 255 bytes: \"\(name)\"") }
            wire.append(UInt8(name.utf8.count))
            wire += name.utf8
        }
        self.configuration = configuration
        self.wire = wire
        alpnWire = .allocate(capacity: wire.count)
        _ = alpnWire.initialize(from: wire)
        alpnList = .allocate(capacity: 1)
        alpnList.initialize(to: ctls_alpn_list(protocols: alpnWire.baseAddress, length: UInt32(wire.count)))
        if configuration.caFile != nil || configuration.certificateChainFile != nil || configuration.clientCAFile != nil {
            built = try build()
        }
    }

    /// The SSL_CTX, built on first use if `init` did not build it.
    func prepared() throws(TLSError) -> Built {
        try lock.withLock { () throws(TLSError) -> Built in
            if let built { return built }
            let fresh = try build()
            built = fresh
            return fresh
        }
    }

    private func build() throws(TLSError) -> Built {
        ctls_clear_errors()
        guard let context = SSL_CTX_new(TLS_method()) else { throw TLSEngine.lastError("SSL_CTX_new") }
        var clientCertificateRoots: OpaquePointer?
        do throws(TLSError) {
            try configure(context, clientCertificateRoots: &clientCertificateRoots)
        } catch {
            X509_STORE_free(clientCertificateRoots)
            SSL_CTX_free(context)
            throw error
        }
        return Built(context: context, clientCertificateRoots: clientCertificateRoots)
    }

    private func configure(_ context: OpaquePointer, clientCertificateRoots: inout OpaquePointer?) throws(TLSError) {
        if let clientCAFile = configuration.clientCAFile {
            clientCertificateRoots = X509_STORE_new()
            guard let roots = clientCertificateRoots, X509_STORE_load_file(roots, clientCAFile) == 1 else {
                throw TLSEngine.lastError("loading client CA file \(clientCAFile)")
            }
        }
        ctls_ctx_set_stream_mode(context)
        ctls_ctx_set_secure_options(context)
        _ = configuration.minimumVersion == .tls13 ? ctls_ctx_set_min_tls13(context) : ctls_ctx_set_min_tls12(context)

        if let chain = configuration.certificateChainFile {
            guard SSL_CTX_use_certificate_chain_file(context, chain) == 1 else { throw TLSEngine.lastError("loading certificate chain \(chain)") }
            let key = configuration.privateKeyFile ?? chain
            guard SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) == 1 else { throw TLSEngine.lastError("loading private key \(key)") }
            guard SSL_CTX_check_private_key(context) == 1 else { throw TLSEngine.lastError("private key does not match the certificate") }
        }
        if let clientCAFile = configuration.clientCAFile {
            // The names a server's CertificateRequest lists, so a client can pick its certificate.
            guard let names = SSL_load_client_CA_file(clientCAFile) else { throw TLSEngine.lastError("reading CA names from \(clientCAFile)") }
            SSL_CTX_set_client_CA_list(context, names)  // the context owns them now
            // Once clients are verified, OpenSSL refuses to resume sessions without a session id context.
            let sessionContext = Array("remotedialer-mtls".utf8)
            _ = SSL_CTX_set_session_id_context(context, sessionContext, UInt32(sessionContext.count))
        }
        // Verification of servers by clients; a server connection sets its own (see TLSEngine).
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
        if let built {
            SSL_CTX_free(built.context)
            X509_STORE_free(built.clientCertificateRoots)
        }
        alpnList.deallocate()
        alpnWire.deallocate()
    }
}
