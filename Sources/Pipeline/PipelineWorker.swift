import Foundation
import Models
import Imaging
import TorchShim

/// Why a job failed, sorted by who can act on it. Each case fails only its own job.
public enum JobFailure: Error, Equatable, CustomStringConvertible {
    /// The device ran out of memory during this job; the same job may fit later or on another worker.
    case outOfMemory(String)
    /// A stage the job needs has no model loaded; the message says how to get it.
    case missingStage(String)
    /// The job's settings are invalid.
    case badInput(String)
    /// The prompt image cannot be used.
    case unprocessable(String)
    /// Anything else that was thrown while the job ran.
    case `internal`(String)
    /// The job's cancellation token fired (its client left); it stopped at a stage boundary.
    case cancelled(String)

    /// Sorts an error thrown by a pipeline run.
    public init(classifying error: Error) {
        switch error {
        case let failure as JobFailure: self = failure
        case let torch as TorchError where torch.isOutOfMemory: self = .outOfMemory(torch.message)
        case PipelineError.missingStage(let why): self = .missingStage(why)
        case PipelineError.badInput(let why): self = .badInput(why)
        case PipelineError.cancelled: self = .cancelled("\(error)")
        case let imaging as ImagingError: self = .unprocessable("\(imaging)")
        // The image has nothing to reconstruct (no foreground after the cut-out): the request's content, not a fault.
        case let preprocess as TrellisPreprocess.PreprocessError: self = .unprocessable("\(preprocess)")
        default: self = .internal("\(error)")
        }
    }

    /// A failure of the device or the code rather than of the request: the worker cleans up after it.
    public var isServerSide: Bool {
        switch self {
        case .outOfMemory, .internal: return true
        case .missingStage, .badInput, .unprocessable, .cancelled: return false
        }
    }

    public var description: String {
        switch self {
        case .outOfMemory(let message): return "out of memory: \(message)"
        case .missingStage(let why), .badInput(let why), .unprocessable(let why), .cancelled(let why): return why
        case .internal(let message): return message
        }
    }
}

/// One serving worker: its own pipeline on one device, used by one thread, one job at a time.
///
/// A job that throws fails alone. Its tensors are released as the error unwinds the stack; after a
/// server-side failure (out of memory, or any unexpected error) the worker also hands the CUDA
/// caching allocator's unused blocks back to the driver, so its next job starts from an unfragmented
/// pool, and then takes the next job as usual. Workers on other devices are not involved, beyond
/// the short device synchronisation `cudaFree` implies.
///
/// What cannot be isolated: a Swift runtime trap (a failed `precondition`, an index out of range, a
/// force-unwrapped nil) or a fatal signal inside libtorch ends the whole process, every worker with
/// it. Run the daemon under a supervisor that restarts it (systemd `Restart=always`, pm2, Docker
/// `--restart`), and put several daemons behind a balancer (docs/MULTI_GPU.md) so one crash does not
/// take every GPU offline.
public final class PipelineWorker {
    public let device: Device
    public let pipeline: GenerationPipeline
    private let releaseCache: (Device) -> Void
    private var injectedOutOfMemoryJobs: Int

    /// `releaseCache` runs after each server-side failure (default: `CUDA.emptyCache()` on a CUDA
    /// device, nothing on the CPU). `injectOutOfMemoryJobs` (debugging and failure drills): the first
    /// that many jobs fail with a real allocator out-of-memory error before the pipeline runs.
    public init(device: Device, pipeline: GenerationPipeline, injectOutOfMemoryJobs: Int = 0,
                releaseCache: @escaping (Device) -> Void = PipelineWorker.releaseCUDACache) {
        self.device = device
        self.pipeline = pipeline
        self.injectedOutOfMemoryJobs = max(0, injectOutOfMemoryJobs)
        self.releaseCache = releaseCache
    }

    /// Runs `job`; every error comes out as a `JobFailure`.
    public func run(_ job: GenerationJob) throws -> GenerationOutcome {
        do {
            if injectedOutOfMemoryJobs > 0 {
                injectedOutOfMemoryJobs -= 1
                try exhaustMemory()
            }
            return try pipeline.run(job)
        } catch {
            let failure = JobFailure(classifying: error)
            if failure.isServerSide { releaseCache(device) }
            throw failure
        }
    }

    public static func releaseCUDACache(_ device: Device) {
        if device.isCUDA { try? CUDA.emptyCache() }
    }

    /// Asks the device's allocator for 1 PiB, which no device has: the allocator's own out-of-memory
    /// error comes back through the shim exactly as a real one does.
    private func exhaustMemory() throws {
        do {
            _ = try Tensor.empty([1 << 50], dtype: .uint8, device: device)
        } catch let error as TorchError where error.isOutOfMemory {
            throw JobFailure.outOfMemory("injected for a failure drill: \(error.message)")
        }
        throw JobFailure.internal("the injected 1 PiB allocation on \(device) unexpectedly succeeded")
    }
}
