/// The oldest protocol version a context accepts.
public enum TLSVersion: Sendable { case tls12, tls13 }

/// What a TLS endpoint presents and trusts. Verification is on unless explicitly, loudly,
/// turned off.
public struct TLSConfiguration: Sendable {

    /// Server: the certificate chain and private key (PEM files).
    public var certificateChainFile: String?
    public var privateKeyFile: String?
    /// Client: trust roots from this PEM file instead of the system store.
    public var caFile: String?
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
