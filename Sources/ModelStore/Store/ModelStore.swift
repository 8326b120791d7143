import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Finds model files on disk (plain folders, the Hugging Face cache) and fetches what is missing.
///
/// Lookup never touches the network. Order: `--models-dir` folders (`<dir>/ORG/NAME`, `<dir>/NAME`),
/// then the hub cache at the entry's revision (refs/<branch> resolution; for an unpinned entry without
/// a ref, any complete snapshot). A folder counts as present when every file spec is met and every
/// sharded `*.index.json` it holds has all its shards.
public final class ModelStore {
    public let hub: HubConfiguration
    public let cache: HFCache
    /// Plain folders searched before the cache.
    public let modelsDirectories: [String]

    public init(hub: HubConfiguration, modelsDirectories: [String] = []) {
        self.hub = hub
        cache = HFCache(root: hub.cacheDirectory)
        self.modelsDirectories = modelsDirectories
    }

    public convenience init(environment: [String: String] = ProcessInfo.processInfo.environment,
                            modelsDirectories: [String] = []) {
        self.init(hub: .fromEnvironment(environment), modelsDirectories: modelsDirectories)
    }

    // MARK: check

    /// Present / missing for every model of a pipeline. The daemon calls this at start-up.
    public func check(pipeline: PipelineName) -> StoreReport {
        StoreReport(pipeline: pipeline.rawValue, models: ModelRegistry.models(for: pipeline).map(status))
    }

    public func check(models: [ModelSpec]) -> StoreReport {
        StoreReport(pipeline: nil, models: models.map(status))
    }

    public func status(of spec: ModelSpec) -> ModelStatus {
        let location = locate(FetchTarget(spec: spec))
        return ModelStatus(
            name: spec.name, repo: spec.repo, revision: spec.revision, pinned: spec.isPinned,
            present: location != nil, location: location,
            missing: location == nil ? missingFiles(FetchTarget(spec: spec)) : [],
            fetchCommand: location == nil ? "gen3d fetch --model \(spec.name)" : nil,
            licence: spec.licence.displayName, gated: spec.gating.isGated,
            approxDownloadBytes: spec.approxDownloadBytes)
    }

    /// Where a registry model's files are, without touching the network; nil when incomplete everywhere.
    public func locate(model spec: ModelSpec) -> ModelLocation? {
        locate(FetchTarget(spec: spec))
    }

    /// Where a registry model is, or an error naming the command that fetches it (for model loaders).
    public func requireLocation(of spec: ModelSpec) throws -> ModelLocation {
        let status = status(of: spec)
        guard let location = status.location else {
            try checkNoDirectoryInPlaceOfFiles(model: spec)
            throw ModelStoreError.modelMissing(name: spec.name, repo: spec.repo, missing: status.missing,
                                               fetchCommand: status.fetchCommand ?? "gen3d fetch --model \(spec.name)")
        }
        return location
    }

    /// Full paths, in every folder searched for `spec`, where a directory stands in place of one of its files
    /// (e.g. a folder named `model.safetensors`). Empty when there is none.
    public func directoriesInPlaceOfFiles(model spec: ModelSpec) -> [String] {
        let target = FetchTarget(spec: spec)
        let folders = plainFolderCandidates(target)
            + snapshotCandidates(target).map { cache.snapshotFolder(repo: target.repo, commit: $0) }
        return folders.flatMap { folder in
            FileSelection.directoriesInPlaceOfFiles(target.files, in: folder).map { folder + "/" + $0 }
        }
    }

    /// Throws `directoryInPlaceOfFile` when a folder searched for `spec` has a directory where a file belongs.
    public func checkNoDirectoryInPlaceOfFiles(model spec: ModelSpec) throws {
        let paths = directoriesInPlaceOfFiles(model: spec)
        guard paths.isEmpty else { throw ModelStoreError.directoryInPlaceOfFile(model: spec.name, paths: paths) }
    }

    public func locate(_ target: FetchTarget, extraFolders: [String] = []) -> ModelLocation? {
        for folder in extraFolders + plainFolderCandidates(target)
        where missing(target, in: folder, manifest: FetchManifest.folderPath(folder, specs: target.files)).isEmpty {
            return ModelLocation(kind: .folder, path: folder, commit: nil)
        }
        for commit in snapshotCandidates(target) {
            let folder = cache.snapshotFolder(repo: target.repo, commit: commit)
            let manifest = FetchManifest.cachePath(cache, repo: target.repo, commit: commit, specs: target.files)
            if missing(target, in: folder, manifest: manifest).isEmpty {
                return ModelLocation(kind: .hubCache, path: folder, commit: commit)
            }
        }
        return nil
    }

    /// What `folder` lacks for the target: judged by the manifest of an earlier fetch when there is one,
    /// else by the file specs (and shard indexes).
    private func missing(_ target: FetchTarget, in folder: String, manifest: String) -> [String] {
        var info = stat()
        guard stat(folder, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { return target.files.map(\.description) }
        if let manifest = FetchManifest.read(manifest) { return manifest.missing(in: folder) }
        return FileSelection.missing(target.files, in: folder)
    }

    private func plainFolderCandidates(_ target: FetchTarget) -> [String] {
        let name = target.repo.split(separator: "/").last.map(String.init) ?? target.repo
        return modelsDirectories.flatMap { [$0 + "/" + target.repo, $0 + "/" + name] }
    }

    /// The commit the revision resolves to locally, then (unpinned entries only) every other snapshot,
    /// newest first.
    private func snapshotCandidates(_ target: FetchTarget) -> [String] {
        var commits: [String] = []
        if let commit = cache.commit(repo: target.repo, revision: target.revision) { commits.append(commit) }
        if !HFCache.isCommitHash(target.revision) {
            let folder = cache.repoFolder(target.repo) + "/snapshots"
            let others = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
                .filter { HFCache.isCommitHash($0) && !commits.contains($0) }
                .map { ($0, (try? FileManager.default.attributesOfItem(atPath: folder + "/" + $0)[.modificationDate]
                             as? Date) ?? .distantPast) }
                .sorted { $0.1 > $1.1 }
                .map(\.0)
            commits += others
        }
        return commits
    }

    /// What is missing in the best local candidate (the resolved snapshot), or every spec when none.
    private func missingFiles(_ target: FetchTarget) -> [String] {
        guard let commit = cache.commit(repo: target.repo, revision: target.revision) else {
            return target.files.map(\.description)
        }
        return missing(target, in: cache.snapshotFolder(repo: target.repo, commit: commit),
                       manifest: FetchManifest.cachePath(cache, repo: target.repo, commit: commit, specs: target.files))
    }

    // MARK: fetch

    /// Makes every target present: reuses what is on disk, downloads the rest (several files at once,
    /// resumable, verified). Offline: reports what is missing without touching the network.
    /// Errors of one target do not stop the others; all are thrown together at the end.
    public func fetch(_ targets: [FetchTarget], destination: FetchDestination = .hubCache,
                      reporter: ProgressReporter) throws -> FetchReport {
        try fetch(targets, destination: destination, reporter: reporter, cancellation: CancellationFlag())
    }

    func fetch(_ targets: [FetchTarget], destination: FetchDestination, reporter: ProgressReporter,
               cancellation: CancellationFlag) throws -> FetchReport {
        for target in targets where !HubURL.isValidRepoID(target.repo) {
            throw ModelStoreError.invalidOptions("'\(target.repo)' is not a repository id of the form ORG/NAME")
        }
        let client = HubClient(configuration: hub, cancellation: cancellation)
        var report = FetchReport()
        var errors: [ModelStoreError] = []
        var offlineMissing: [String] = []
        var jobs: [DownloadJob] = []

        for target in targets {
            let folder = destinationFolder(target, destination)
            if let location = locate(target, extraFolders: folder.map { [$0] } ?? []) {
                reporter.note("present  \(target.name) at \(location.path)")
                report.entries.append(.init(name: target.name, repo: target.repo, location: location,
                                            alreadyPresent: true, fetchedFiles: 0, fetchedBytes: 0))
                continue
            }
            if hub.offline {
                let missing = missingFiles(target)
                offlineMissing.append("\(target.name) (\(target.repo)@\(target.revision)): \(missing.joined(separator: ", "))"
                                      + " -> run `\(fetchCommand(target, destination))` with network access")
                continue
            }
            do {
                let plan = try planTarget(target, folder: folder, client: client, reporter: reporter)
                jobs += plan.jobs
                report.entries.append(.init(name: target.name, repo: target.repo, location: plan.location,
                                            alreadyPresent: false, fetchedFiles: plan.fetchedFiles,
                                            fetchedBytes: plan.fetchedBytes))
            } catch let error as ModelStoreError {
                if error == .cancelled { throw error }
                reporter.note("failed   \(target.name): \(error)")
                errors.append(error)
            }
        }
        if !offlineMissing.isEmpty { errors.append(.offlineMissing(offlineMissing)) }

        reporter.plan(files: jobs.count, totalBytes: jobs.reduce(0) { $0 + $1.download.file.size })
        errors += DownloadPool.run(jobs, parallelism: hub.parallelDownloads, configuration: hub,
                                   cancellation: cancellation, reporter: reporter)
        reporter.finish()
        if cancellation.isCancelled { throw ModelStoreError.cancelled }
        if errors.count == 1 { throw errors[0] }
        if errors.count > 1 { throw ModelStoreError.multiple(errors) }
        return report
    }

    private struct TargetPlan {
        var location: ModelLocation
        var jobs: [DownloadJob] = []
        var fetchedFiles = 0
        var fetchedBytes: Int64 = 0
    }

    /// Resolves the revision, lists the repository, and turns every selected file that is not already in
    /// place into a link, a copy or a download job.
    private func planTarget(_ target: FetchTarget, folder: String?, client: HubClient,
                            reporter: ProgressReporter) throws -> TargetPlan {
        let info = try client.repoInfo(repo: target.repo, revision: target.revision)
        reporter.note(describe(target, info: info))
        if target.spec?.gating.isGated ?? (info.gated != nil) {
            if let source = hub.tokenSource {
                reporter.note("         \(target.repo) is gated: using the token from \(source)")
            } else {
                reporter.note("         \(target.repo) is gated and no token is set (HF_TOKEN or ~/.cache/huggingface/token): "
                              + "the download will be refused")
            }
        }
        let listing = try client.listFiles(repo: target.repo, revision: info.commit)
        let selected = Set(try FileSelection.select(target.files, from: listing.map(\.path),
                                                    repo: target.repo, revision: target.revision))
        let files = listing.filter { selected.contains($0.path) }
        let manifest = FetchManifest(repo: target.repo, revision: target.revision, commit: info.commit,
                                     files: files.map { .init(path: $0.path, size: $0.size) })

        if let folder {
            try manifest.write(to: FetchManifest.folderPath(folder, specs: target.files))
            var plan = TargetPlan(location: ModelLocation(kind: .folder, path: folder, commit: nil))
            for file in files {
                let finalPath = folder + "/" + file.path
                if regularFileSize(finalPath) == file.size { continue }
                plan.fetchedFiles += 1
                plan.fetchedBytes += file.size
                if let cached = cachedBlob(repo: target.repo, file: file) {
                    try copyFile(from: cached, to: finalPath)
                    continue
                }
                let download = FileDownload(repo: target.repo, file: file,
                                            url: client.resolveURL(repo: target.repo, revision: info.commit, path: file.path),
                                            partialPath: finalPath + ".incomplete")
                plan.jobs.append(DownloadJob(download: download, lockPath: nil, progressName: target.name + "/" + file.path) {
                    try moveIntoPlace(download.partialPath, finalPath)
                })
            }
            return plan
        }

        try cache.writeRef(repo: target.repo, revision: target.revision, commit: info.commit)
        try manifest.write(to: FetchManifest.cachePath(cache, repo: target.repo, commit: info.commit, specs: target.files))
        var plan = TargetPlan(location: ModelLocation(
            kind: .hubCache, path: cache.snapshotFolder(repo: target.repo, commit: info.commit), commit: info.commit))
        for file in files {
            let snapshotPath = plan.location.path(of: file.path)
            if regularFileSize(snapshotPath) == file.size { continue }
            let blob = cache.blobPath(repo: target.repo, blob: file.blobName)
            if regularFileSize(blob) == file.size {
                try cache.linkSnapshotFile(repo: target.repo, commit: info.commit, path: file.path, blob: file.blobName)
                continue
            }
            plan.fetchedFiles += 1
            plan.fetchedBytes += file.size
            let download = FileDownload(repo: target.repo, file: file,
                                        url: client.resolveURL(repo: target.repo, revision: info.commit, path: file.path),
                                        partialPath: cache.incompletePath(repo: target.repo, blob: file.blobName))
            let cache = self.cache
            let repo = target.repo
            plan.jobs.append(DownloadJob(download: download,
                                         lockPath: cache.lockPath(repo: repo, blob: file.blobName),
                                         skipIfPresent: blob,
                                         progressName: target.name + "/" + file.path) {
                if regularFileSize(blob) != file.size { try moveIntoPlace(download.partialPath, blob) }
                try cache.linkSnapshotFile(repo: repo, commit: info.commit, path: file.path, blob: file.blobName)
            })
        }
        return plan
    }

    /// Plain-folder destination of a target, nil for the hub cache.
    private func destinationFolder(_ target: FetchTarget, _ destination: FetchDestination) -> String? {
        guard case .folder(let root) = destination else { return nil }
        return target.spec == nil ? root : root + "/" + target.repo
    }

    /// The same file already in the hub cache (any revision), for copying into a plain folder.
    private func cachedBlob(repo: String, file: RemoteFile) -> String? {
        let blob = cache.blobPath(repo: repo, blob: file.blobName)
        return regularFileSize(blob) == file.size ? blob : nil
    }

    private func describe(_ target: FetchTarget, info: RepoInfo) -> String {
        let pin = HFCache.isCommitHash(target.revision) ? "pinned" : "unpinned, now \(info.commit.prefix(12))"
        var text = "fetching \(target.name): \(target.repo)@\(target.revision) (\(pin))"
        if let spec = target.spec {
            text += ", ~\(ProgressReporter.formatBytes(spec.approxDownloadBytes)), licence \(spec.licence.displayName)"
            if case .gated(let how) = spec.gating { text += ", GATED: \(how)" }
        } else {
            text += ", licence \(info.licence ?? "not stated on the hub")"
            if let gated = info.gated { text += ", GATED (\(gated) approval): accept the terms on \(hub.endpoint)/\(target.repo)" }
        }
        return text
    }

    private func fetchCommand(_ target: FetchTarget, _ destination: FetchDestination) -> String {
        var command: String
        if let spec = target.spec {
            command = "gen3d fetch --model \(spec.name)"
        } else {
            command = "gen3d fetch --repo \(target.repo)"
            if target.revision != "main" { command += " --revision \(target.revision)" }
            for case .glob(let pattern) in target.files where pattern != "*" { command += " --include '\(pattern)'" }
        }
        if case .folder(let root) = destination { command += " --dest \(root)" }
        return command
    }
}

/// One file to download and what to do once it is verified.
struct DownloadJob {
    let download: FileDownload
    /// Blob lock held during the transfer (hub cache only).
    let lockPath: String?
    /// When this file exists with the right size after the lock is taken, another process fetched it.
    var skipIfPresent: String? = nil
    let progressName: String
    let complete: () throws -> Void
}

/// Runs download jobs on a few threads, each with its own libcurl handle (connections are reused).
enum DownloadPool {
    /// The shared queue position and error list of the workers.
    private final class SharedState: @unchecked Sendable {
        private let lock = NSLock()
        private var next = 0
        private(set) var errors: [ModelStoreError] = []

        func take() -> Int {
            lock.lock(); defer { lock.unlock() }
            next += 1
            return next - 1
        }

        func record(_ error: ModelStoreError) {
            lock.lock(); errors.append(error); lock.unlock()
        }
    }

    static func run(_ jobs: [DownloadJob], parallelism: Int, configuration: HubConfiguration,
                    cancellation: CancellationFlag, reporter: ProgressReporter) -> [ModelStoreError] {
        guard !jobs.isEmpty else { return [] }
        let shared = SharedState()
        let group = DispatchGroup()
        for _ in 0..<max(1, min(parallelism, jobs.count)) {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                let easy: CurlEasy
                do { easy = try CurlEasy() } catch {
                    shared.record(error as? ModelStoreError ?? .transport(url: "", code: -1, message: "\(error)"))
                    return
                }
                while true {
                    let index = shared.take()
                    guard index < jobs.count, !cancellation.isCancelled else { return }
                    if let error = execute(jobs[index], easy: easy, configuration: configuration,
                                           cancellation: cancellation, reporter: reporter) {
                        shared.record(error)
                    }
                }
            }
            thread.start()
        }
        group.wait()
        return shared.errors.filter { $0 != .cancelled }
    }

    private static func execute(_ job: DownloadJob, easy: CurlEasy, configuration: HubConfiguration,
                                cancellation: CancellationFlag, reporter: ProgressReporter) -> ModelStoreError? {
        let progress = reporter.file(named: job.progressName, size: job.download.file.size)
        do {
            let lock = try job.lockPath.map(FileLock.init(path:))
            defer { lock?.release() }
            if let existing = job.skipIfPresent, regularFileSize(existing) == job.download.file.size {
                progress.started(existingBytes: job.download.file.size)
                try job.complete()
                progress.finished()
                return nil
            }
            try job.download.run(easy: easy, configuration: configuration, cancellation: cancellation, progress: progress)
            try job.complete()
            progress.finished()
            return nil
        } catch {
            let storeError = error as? ModelStoreError ?? .fileSystem(path: job.download.partialPath, reason: "\(error)")
            if storeError != .cancelled { progress.failed(storeError) }
            return storeError
        }
    }
}

/// rename(2) of a verified partial file onto its final name.
func moveIntoPlace(_ source: String, _ destination: String) throws {
    try createDirectory((destination as NSString).deletingLastPathComponent)
    guard rename(source, destination) == 0 else {
        throw ModelStoreError.fileSystem(path: destination, reason: "cannot move \(source) into place: " + errnoText())
    }
}

/// Copies a cached blob into a plain folder (through a temporary name, so a cut copy is never taken
/// for a complete file).
func copyFile(from source: String, to destination: String) throws {
    let temporary = destination + ".incomplete"
    try createDirectory((destination as NSString).deletingLastPathComponent)
    unlink(temporary)
    do {
        try FileManager.default.copyItem(atPath: source, toPath: temporary)
    } catch {
        throw ModelStoreError.fileSystem(path: destination, reason: "cannot copy from \(source): \(error.localizedDescription)")
    }
    try moveIntoPlace(temporary, destination)
}
