import ArgumentParser
import Foundation
import ModelStore

extension PipelineName: ExpressibleByArgument {}
extension ProgressStyle: ExpressibleByArgument {}

struct FetchCLICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Download the official weights (Hugging Face hub layout), verified by SHA-256, resumable.",
        discussion: """
        gen3d fetch                               the default pipeline
        gen3d fetch --pipeline all                every model in the registry
        gen3d fetch --model trellis-image-large   one registry model (repeatable)
        gen3d fetch --repo ORG/NAME [--revision REV] [--include GLOB...] [--dest DIR]
        Files already in the Hugging Face cache ($HF_HOME/hub) or in a --models-dir are used in place.
        HF_TOKEN (or the token file) is sent for gated repositories; HF_ENDPOINT overrides the hub.
        """)

    @Option(help: "default or all.") var pipeline: PipelineName?
    @Option(name: .customLong("model"), help: "A registry model name (repeatable).") var models: [String] = []
    @Option(help: "An arbitrary hub repository ORG/NAME.") var repo: String?
    @Option(help: "Revision of --repo (branch, tag or commit).") var revision: String?
    @Option(name: .customLong("include"), help: "Glob of files of --repo to fetch (repeatable).") var includes: [String] = []
    @Option(help: "A plain folder instead of the hub cache.") var dest: String?
    @Option(name: .customLong("models-dir"), help: "Folder searched for models already present (repeatable).")
    var modelsDirs: [String] = []
    @Flag(help: "Never touch the network; report what is missing.") var offline = false
    @Option(help: "Files downloaded at once.") var jobs: Int?
    @Option(help: "auto, bar, lines or quiet.") var progress: ProgressStyle = .auto

    func run() async throws {
        var o = FetchOptions()
        o.pipeline = pipeline
        o.models = models
        o.repo = repo
        o.revision = revision
        o.includes = includes
        o.dest = dest
        o.modelsDirs = modelsDirs
        o.offline = offline
        o.jobs = jobs
        o.progress = progress
        do {
            try await FetchCommand.run(o)
        } catch {
            StandardError.write("fetch failed: \(error)\n")
            throw ExitCode(1)
        }
    }
}
