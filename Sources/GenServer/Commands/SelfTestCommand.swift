import ArgumentParser
import Foundation
import Pipeline
import Fixtures
import TorchShim

struct SelfTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Run every oracle fixture of a folder through the same loaders as real checkpoints.",
        discussion: """
        FOLDER holds cases in the shared fixture format (<name>.json = {"name": class, "args": config}, \
        <name>.safetensors, <name>_io.safetensors). Prints max abs/rel error per output; exits non-zero when any \
        output is beyond tolerance, a case fails to run, or a class has no Swift implementation.
        """)

    @Option(name: .long, help: "Fixture folder (repeatable).")
    var fixtures: [String]

    @Option(name: .long, help: "Run only cases whose file stem contains this text.")
    var filter: String?

    @Flag(name: .long, help: "List the registered classes and exit.")
    var listClasses = false

    func run() throws {
        let runner = FixtureRunner()
        if listClasses {
            runner.handlers.keys.sorted().forEach { print($0) }
            return
        }
        var passed = 0, failed = 0, emptyFolders = 0
        for folder in fixtures {
            let dir = URL(fileURLWithPath: folder)
            var cases = try runner.discover(dir)
            if let filter { cases = cases.filter { $0.stem.contains(filter) } }
            if cases.isEmpty { print("\(folder): no cases found"); emptyFolders += 1 }
            for c in cases {
                let r = runner.run(c)
                print(String(format: "%@ %@ (%@) %.2fs", r.passed ? "PASS" : "FAIL", c.label, c.className, r.seconds))
                for cmp in r.comparisons { print("    \(cmp)") }
                if let e = r.error { print("    error: \(e)") }
                if r.passed { passed += 1 } else { failed += 1 }
            }
        }
        // A folder without cases is a mistake in the command line, not a case: it fails the run but is not counted.
        print("\(passed) passed, \(failed) failed" + (emptyFolders > 0 ? " (\(emptyFolders) folders had no cases)" : ""))
        if failed > 0 || emptyFolders > 0 { throw ExitCode(1) }
    }
}
