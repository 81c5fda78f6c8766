/// The oldest protocol version a context accepts.
public enum TLSVersion: Sendable { case tls12, tls13 }

/// What a TLS endpoint presents and trusts. Verification is on unless explicitly, loudly,
/// turned off.
public struct TLSConfiguration: Sendable {

    /// The certificate chain and private key this side presents (PEM files): a server's always,
    /// a client's when the server asks for one.
    public var certificateChainFile: String?
    public var privateKeyFile: String?
    /// Client: trust roots from this PEM file instead of the system store.
    public var caFile: String?
    /// Server: require a client certificate that chains to a CA in this PEM file (mutual TLS).
    /// Its CAs' names are sent in the CertificateRequest; a client that presents no certificate,
    /// or one that does not chain to these CAs (and only these: not `caFile`, not the system
    /// store), fails the handshake. Nil: no client certificate is requested.
    public var clientCAFile: String?
    /// Server with `clientCAFile`: also admit clients that present no certificate (their
    /// `peerCertificate` is nil, and the application decides, e.g. a tunnel server whose proxy
    /// users come without one). A certificate that is presented must still verify.
    public var clientCertificateOptional = false
    /// Client: the name sent as SNI and checked against the certificate (an IP address is
    /// checked against the certificate's IP addresses and not sent). A client needs one unless
    /// `insecureSkipVerify` is set.
    public var serverName: String?
    /// Client: skip certificate and hostname verification. For throw-away labs only.
    public var insecureSkipVerify = false
    /// ALPN protocols in order of preference: offered by clients, chosen from by servers.
    public var alpn: [String] = ["http/1.1"]
    public var minimumVersion = TLSVersion.tls12

    public init() {}

    public static func client(serverName: String? = nil) -> TLSConfiguration {
        var configuration = TLSConfiguration()
        configuration.serverName = serverName
        return configuration
    }

    public static func server(certificateChainFile: String, privateKeyFile: String, clientCAFile: String? = nil) -> TLSConfiguration {
        var configuration = TLSConfiguration()
        configuration.certificateChainFile = certificateChainFile
        configuration.privateKeyFile = privateKeyFile
        configuration.clientCAFile = clientCAFile
        return configuration
    }
}

/// A TLS failure with OpenSSL's reason text, e.g. "certificate verify failed: certificate has expired".
public struct TLSError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
