import ArgumentParser

@main
struct Gen3D: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "gen3d",
        abstract: "Text or image to 3D Gaussian splat (PLY), on one GPU: a daemon and its tools.",
        version: version,
        subcommands: [
            ServeCommand.self, GenerateCommand.self, FetchCLICommand.self, InfoCommand.self, SelfTestCommand.self,
            RenderCommand.self, RenderCheckCommand.self, BenchPipelineCommand.self, ReadinessCommand.self,
            LoadTestCommand.self, FuzzHTTPCommand.self, BenchCommand.self, BenchPLYCommand.self, FuzzFilesCommand.self,
        ]
    )
}
