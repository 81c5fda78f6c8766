import Testing
import HTTP

/// The byte-wise string helpers the HTTP layer (and the programs) use instead of
/// _StringProcessing's.
struct StringBytesTests {
    @Test(arguments: [
        ("dial tcp 10.0.0.1:80: i/o timeout", "i/o timeout", true),
        ("no route to host", "no route to host", true),
        ("no route to hos", "no route to host", false),
        ("aaab", "aab", true),
        ("abc", "", true),
        ("", "a", false),
        ("malloc.mmap_threshold=131072", "malloc.mmap_threshold", true),
        ("glibc.malloc.arena_max=2", "malloc.mmap_threshold", false),
        ("caf\u{E9} au lait", "\u{E9} au", true),
    ])
    func includesFindsASubstringAnywhere(text: String, part: String, expected: Bool) {
        #expect(text.includes(part) == expected)
    }
}
