/// A setting that cannot be used as written (a flag's value, a URL, a pattern); the text says
/// which and why, e.g. "malformed ws or wss URL http://x".
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
