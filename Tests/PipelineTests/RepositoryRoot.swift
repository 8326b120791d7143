import Foundation

/// The repository's root folder (this file is Tests/PipelineTests/RepositoryRoot.swift), for assets/smoke and the
/// built binary.
func repositoryRoot(file: String = #filePath) -> URL {
    URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}
