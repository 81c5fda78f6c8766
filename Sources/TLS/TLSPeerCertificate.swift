import CTLS
import Glibc

/// The certificate a peer presented and OpenSSL verified: a server's for a client, a client's
/// for a server that requires them (`TLSConfiguration.clientCAFile`). Only verified
/// certificates become one (see `TLSEngine.peerCertificate`).
public struct TLSPeerCertificate: Sendable, Equatable {
    /// The subject's most specific (last) commonName.
    public let subjectCommonName: String?
    /// The subjectAltName DNS names, in certificate order.
    public let dnsNames: [String]
    /// The subjectAltName IP addresses in text form ("10.0.0.7", "::1"), in certificate order.
    public let ipAddresses: [String]
    /// The whole certificate, DER encoded.
    public let der: [UInt8]

    public init(subjectCommonName: String?, dnsNames: [String], ipAddresses: [String], der: [UInt8]) {
        self.subjectCommonName = subjectCommonName
        self.dnsNames = dnsNames
        self.ipAddresses = ipAddresses
        self.der = der
    }

    /// Reads an OpenSSL `X509`; borrows it (the caller keeps its reference).
    init(x509 certificate: OpaquePointer) {
        var dnsNames: [String] = []
        var ipAddresses: [String] = []
        if let names = ctls_x509_subject_alt_names(certificate) {
            defer { ctls_general_names_free(names) }
            for index in 0..<ctls_general_names_count(names) {
                var bytes: UnsafePointer<UInt8>?
                var length: Int32 = 0
                let type = ctls_general_name(names, index, &bytes, &length)
                guard let bytes else { continue }
                let value = UnsafeBufferPointer(start: bytes, count: Int(length))
                if type == GEN_DNS {
                    dnsNames.append(String(decoding: value, as: UTF8.self))
                } else if type == GEN_IPADD, let address = Self.addressText(value) {
                    ipAddresses.append(address)
                }
            }
        }
        var commonName: String?
        var length: Int32 = 0
        if let utf8 = ctls_x509_common_name(certificate, &length) {
            commonName = String(decoding: UnsafeBufferPointer(start: utf8, count: Int(length)), as: UTF8.self)
            ctls_free(utf8)
        }
        let derLength = Int(i2d_X509(certificate, nil))
        let der = [UInt8](unsafeUninitializedCapacity: max(derLength, 0)) { buffer, count in
            var cursor = buffer.baseAddress
            count = derLength > 0 ? max(0, Int(i2d_X509(certificate, &cursor))) : 0
        }
        self.init(subjectCommonName: commonName, dnsNames: dnsNames, ipAddresses: ipAddresses, der: der)
    }

    /// An address's 4 or 16 bytes as text; nil for any other length (a malformed entry).
    static func addressText(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        let family: Int32
        switch bytes.count {
        case 4: family = AF_INET
        case 16: family = AF_INET6
        default: return nil
        }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(INET6_ADDRSTRLEN)) { text in
            guard inet_ntop(family, bytes.baseAddress, text.baseAddress, socklen_t(text.count)) != nil else { return nil }
            return String(cString: text.baseAddress!)
        }
    }
}
