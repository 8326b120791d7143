import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Applies `FileSpec`s to a list of repository paths: to the hub's listing before a download, and to a
/// local folder when checking what is present.
enum FileSelection {
    /// fnmatch(3) without FNM_PATHNAME: `*` matches `/` too, as huggingface_hub's allow_patterns do.
    static func matches(_ pattern: String, _ path: String) -> Bool {
        fnmatch(pattern, path, 0) == 0
    }

    /// The paths of `available` the specs select, in listing order. Throws when a spec selects nothing.
    static func select(_ specs: [FileSpec], from available: [String], repo: String, revision: String) throws -> [String] {
        let present = Set(available)
        var chosen = Set<String>()
        var unmatched: [String] = []
        for spec in specs {
            switch spec {
            case .file(let path):
                if present.contains(path) { chosen.insert(path) } else { unmatched.append(path) }
            case .glob(let pattern):
                let hits = available.filter { matches(pattern, $0) }
                if hits.isEmpty { unmatched.append(pattern) } else { chosen.formUnion(hits) }
            case .firstOf(let candidates):
                if let hit = candidates.first(where: present.contains) { chosen.insert(hit) } else {
                    unmatched.append(spec.description)
                }
            }
        }
        if !unmatched.isEmpty {
            throw ModelStoreError.noMatchingFiles(repo: repo, revision: revision, patterns: unmatched)
        }
        return available.filter(chosen.contains)
    }

    /// What the specs still miss in the folder `root`: one line per unmet spec, and one per shard that a
    /// present `*.index.json` names but the folder lacks. Empty when complete.
    static func missing(_ specs: [FileSpec], in root: String) -> [String] {
        let available = listFiles(under: root)
        let present = Set(available)
        var missing: [String] = []
        var selected: [String] = []
        for spec in specs {
            switch spec {
            case .file(let path):
                if present.contains(path) { selected.append(path) } else { missing.append(path) }
            case .glob(let pattern):
                let hits = available.filter { matches(pattern, $0) }
                if hits.isEmpty { missing.append(pattern) } else { selected += hits }
            case .firstOf(let candidates):
                if let hit = candidates.first(where: present.contains) { selected.append(hit) } else {
                    missing.append(spec.description)
                }
            }
        }
        for index in Set(selected) where index.hasSuffix(".index.json") {
            for shard in shardNames(indexAt: root + "/" + index) {
                let directory = (index as NSString).deletingLastPathComponent
                let shardPath = directory.isEmpty ? shard : directory + "/" + shard
                if !present.contains(shardPath) { missing.append(shardPath) }
            }
        }
        return Array(Set(missing)).sorted()
    }

    /// Paths (relative to `root`) that a spec would select but where a directory stands instead of a file:
    /// such a folder is a broken install to report, not a model to treat as simply missing.
    static func directoriesInPlaceOfFiles(_ specs: [FileSpec], in root: String) -> [String] {
        func isDirectory(_ relative: String) -> Bool {
            var info = stat()
            return stat(root + "/" + relative, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
        }
        let files = Set(listFiles(under: root))
        var found: [String] = []
        for spec in specs {
            switch spec {
            case .file(let path):
                if isDirectory(path) { found.append(path) }
            case .firstOf(let candidates):
                if !candidates.contains(where: files.contains) { found += candidates.filter(isDirectory) }
            case .glob(let pattern):
                guard !files.contains(where: { matches(pattern, $0) }),
                      let enumerator = FileManager.default.enumerator(atPath: root) else { continue }
                while let relative = enumerator.nextObject() as? String {
                    if matches(pattern, relative), isDirectory(relative) { found.append(relative) }
                }
            }
        }
        return Array(Set(found)).sorted()
    }

    /// Relative paths of the regular files under `root` (symlinks followed, so dangling links are left
    /// out), skipping download leftovers and hidden folders.
    static func listFiles(under root: String) -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: root) else { return [] }
        var files: [String] = []
        while let relative = enumerator.nextObject() as? String {
            if relative.hasSuffix(".incomplete") || relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }) {
                continue
            }
            if isRegularFile(root + "/" + relative) { files.append(relative) }
        }
        return files.sorted()
    }

    /// Shard file names in a safetensors/pytorch index (`weight_map` values). Unreadable index: no names,
    /// the glob that selected the shards still has to match.
    static func shardNames(indexAt path: String) -> Set<String> {
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let map = object["weight_map"] as? [String: Any] else { return [] }
        return Set(map.values.compactMap { $0 as? String })
    }
}
