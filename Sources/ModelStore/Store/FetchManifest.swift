import Foundation

/// The exact file list a fetch selected from the hub listing, written before the first byte is
/// downloaded. It makes completeness exact for glob specs: a folder with some of the files of an
/// interrupted fetch is not taken for a complete one. Folders without a manifest (a cache filled by
/// huggingface_hub) are judged by the specs alone.
///
/// Kept out of the files huggingface_hub reads: `models--ORG--NAME/.gen3d/<commit>/<key>.json` in the hub
/// cache, `<folder>/.cache/gen3d/<key>.json` in a plain folder (`.cache/huggingface/` is where
/// huggingface_hub keeps its own metadata in such folders).
struct FetchManifest: Codable, Equatable {
    struct Entry: Codable, Equatable {
        let path: String
        let size: Int64
    }

    let repo: String
    let revision: String
    let commit: String
    let files: [Entry]

    /// Identifies a set of file specs (two targets of one repo with different specs get two manifests).
    static func key(for specs: [FileSpec]) -> String {
        let text = specs.map(\.description).joined(separator: "\n")
        return String(hexString(SHA256.hash(Array(text.utf8))).prefix(16))
    }

    static func cachePath(_ cache: HFCache, repo: String, commit: String, specs: [FileSpec]) -> String {
        cache.repoFolder(repo) + "/.gen3d/" + commit + "/" + key(for: specs) + ".json"
    }

    static func folderPath(_ folder: String, specs: [FileSpec]) -> String {
        folder + "/.cache/gen3d/" + key(for: specs) + ".json"
    }

    static func read(_ path: String) -> FetchManifest? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(FetchManifest.self, from: data)
    }

    func write(to path: String) throws {
        try createDirectory((path as NSString).deletingLastPathComponent)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(try encoder.encode(self), to: path)
    }

    /// Files of the manifest that `folder` lacks (or holds with another size).
    func missing(in folder: String) -> [String] {
        files.filter { regularFileSize(folder + "/" + $0.path) != $0.size }.map(\.path)
    }
}
