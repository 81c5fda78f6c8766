import Dispatch
import Foundation
import RemoteDialer

// What the multi-loop server's one shared structure costs: SessionDirectory lookups (one per
// dial) and session add/remove pairs (one per session), alone and with every core at it.
// usage: directory-bench [keys, default 10000] [operations per thread, default 5000000]
let arguments = CommandLine.arguments
let keys = arguments.count > 1 ? Int(arguments[1])! : 10_000
let operations = arguments.count > 2 ? Int(arguments[2])! : 5_000_000
let loops = 4
let names = (0..<keys).map { "client-\($0)" }
let directory = SessionDirectory()
for (index, name) in names.enumerated() { directory.addClient(name, loop: index % loops) }

/// Runs `body(thread)` on `threads` threads at once; nanoseconds per operation (wall time).
func measure(threads: Int, _ body: @escaping @Sendable (Int) -> Void) -> Double {
    let group = DispatchGroup()
    let start = DispatchTime.now().uptimeNanoseconds
    for thread in 0..<threads {
        group.enter()
        Thread { body(thread); group.leave() }.start()
    }
    group.wait()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / Double(operations)
}

let cores = ProcessInfo.processInfo.activeProcessorCount
let lookup: @Sendable (Int) -> Void = { thread in
    var found = 0
    for index in 0..<operations where directory.loopIndex(forClient: names[(index &* 7919 &+ thread) % keys], local: thread % loops) != nil { found += 1 }
    precondition(found == operations)
}
let churn: @Sendable (Int) -> Void = { thread in
    for index in 0..<operations {
        let name = names[(index &* 31 &+ thread) % keys]
        directory.addClient(name, loop: thread % loops)
        directory.removeClient(name, loop: thread % loops)
    }
}
print("SessionDirectory, \(keys) client keys over \(loops) loops, \(operations) operations per thread, \(cores) cores")
print(String(format: "  lookup (a dial), 1 thread:            %6.1f ns", measure(threads: 1, lookup)))
print(String(format: "  lookup, %d threads at once:            %6.1f ns per thread's operation", cores, measure(threads: cores, lookup)))
print(String(format: "  add+remove (a session), 1 thread:     %6.1f ns", measure(threads: 1, churn)))
print(String(format: "  add+remove, %d threads at once:        %6.1f ns per thread's operation", cores, measure(threads: cores, churn)))
