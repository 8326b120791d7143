import ArgumentParser

@main
struct Gen3D: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "gen3d",
        abstract: "Text or image to 3D Gaussian splat (PLY), on one GPU: a daemon and its tools.",
        version: version,
        subcommands: [InfoCommand.self, SelfTestCommand.self, BenchCommand.self, BenchPLYCommand.self, FetchCLICommand.self, ServeCommand.self, GenerateCommand.self, BenchPipelineCommand.self, ReadinessCommand.self]
    )
}
