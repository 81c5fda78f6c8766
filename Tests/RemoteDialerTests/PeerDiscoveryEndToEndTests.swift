import Foundation
import Glibc
import Testing

/// `-peers-dns` with the real programs: two servers on 127.0.0.1 and 127.0.0.2 find each other
/// through a name that resolves to both (an /etc/hosts of their own, see `Subprocess`), and a
/// replica that leaves the answer is dropped.
@Suite(.serialized)
struct PeerDiscoveryEndToEndTests {
    @Test func serversFindEachOtherByNameAndDropAReplicaThatLeaves() throws {
        let deployment = try Deployment(fileSize: 1 << 20)
        let hosts = deployment.directory.appendingPathComponent("hosts")
        try "127.0.0.1 replicas\n127.0.0.2 replicas\n".write(to: hosts, atomically: false, encoding: .utf8)
        let port = freePort()
        for (id, address) in [("a", "127.0.0.1"), ("b", "127.0.0.2")] {
            deployment.servers.append(try Subprocess("remotedialer-server", ["-listen", "\(address):\(port)", "-id", id, "-token", "shared-peer-token",
                                                                             "-peers-dns", "replicas:\(port)", "-peers-dns-interval", "1s",
                                                                             "-proxy-allow-from", "127.0.0.0/8"], hosts: hosts))
        }
        let (a, b) = (deployment.servers[0], deployment.servers[1])
        #expect(waitUntil(seconds: 10) { a.output.contains("peer dns:127.0.0.2 found in replicas") && b.output.contains("peer dns:127.0.0.1 found in replicas") },
                "\(a.output)\n\(b.output)")
        #expect(!a.output.contains("peer dns:127.0.0.1 found"), "a server is never its own peer")
        try deployment.startClient(serverPort: port, waitOn: nil)

        // B reaches foo (connected to A) through the peer it found in DNS.
        let viaB = "http://127.0.0.2:\(port)/client/foo/http/127.0.0.1:\(deployment.filePort)/file"
        #expect(waitUntil(seconds: 10) { (try? curl([viaB]))?.body == deployment.file }, "\(b.output)")

        // A leaves the answer (rewritten in place: the bind mount shows the same file).
        try FileHandle(forWritingTo: hosts).truncateAndWrite(Data("127.0.0.2 replicas\n".utf8))
        // (B still reaches foo over A's own link to B: A keeps B, which is still in the answer.)
        #expect(waitUntil(seconds: 10) { b.output.contains("peer dns:127.0.0.1 left replicas") }, "\(b.output)")
        #expect(!a.output.contains("left replicas"))
    }
}

extension FileHandle {
    func truncateAndWrite(_ data: Data) throws {
        try truncate(atOffset: 0)
        try write(contentsOf: data)
        try close()
    }
}
