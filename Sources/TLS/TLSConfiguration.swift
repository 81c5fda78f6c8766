/// What a TLS endpoint presents and trusts. Verification is on unless explicitly, loudly,
/// turned off.
public struct TLSConfiguration: Sendable {
    public enum Version: Sendable { case tls12, tls13 }

    /// Server: the certificate chain and private key (PEM files).
    public var certificateChainFile: String?
    public var privateKeyFile: String?
    /// Client: trust roots from this PEM file instead of the system store.
    public var caFile: String?
    /// Client: the name sent as SNI and checked against the certificate.
    public var serverName: String?
    /// Client: skip certificate and hostname verification. For throw-away labs only.
    public var insecureSkipVerify = false
    public var alpn: [String] = ["http/1.1"]
    public var minimumVersion = Version.tls12

    public init() {}

    public static func client(serverName: String? = nil) -> TLSConfiguration {
        var configuration = TLSConfiguration()
        configuration.serverName = serverName
        return configuration
    }

    public static func server(certificateChainFile: String, privateKeyFile: String) -> TLSConfiguration {
        var configuration = TLSConfiguration()
        configuration.certificateChainFile = certificateChainFile
        configuration.privateKeyFile = privateKeyFile
        return configuration
    }
}

/// A TLS failure with OpenSSL's reason text, e.g. "certificate verify failed: certificate has expired".
public struct TLSError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
