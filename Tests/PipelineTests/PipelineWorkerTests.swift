import Foundation
import Imaging
import Models
import PLY
import TorchShim
import XCTest
@testable import Pipeline

/// Workers on the CPU with fake stages: failures stay in their job and their worker keeps serving.
final class PipelineWorkerTests: XCTestCase {
    /// Throws the scripted errors on its first calls, then returns a small splat.
    final class ScriptedGaussians: GaussianStage, @unchecked Sendable {
        let name = "scripted-3d"
        private let lock = NSLock()
        private var errors: [Error]
        private(set) var calls = 0

        init(failing errors: [Error] = []) { self.errors = errors }

        func generate(image: Image, seed: UInt64, settings: GaussianSettings, output: SplatOutputOptions) throws -> GaussianSplat {
            lock.lock()
            calls += 1
            let error = errors.isEmpty ? nil : errors.removeFirst()
            lock.unlock()
            if let error { throw error }
            // Real work on the device, so a job leaves tensors behind if cleanup is wrong.
            let t = try Tensor.randn([64, 64], generator: Generator(seed: seed)).matmul(Tensor.randn([64, 64]))
            XCTAssertEqual(t.shape, [64, 64])
            let n = 8
            return GaussianSplat(positions: Array(repeating: 0, count: 3 * n), shDC: Array(repeating: 0, count: 3 * n),
                                 opacities: Array(repeating: 1, count: n), scales: Array(repeating: -3, count: 3 * n),
                                 rotations: Array(repeating: 0.5, count: 4 * n))
        }
    }

    /// Counts cache releases per device label.
    final class ReleaseLog: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: [String] = []
        var entries: [String] { lock.lock(); defer { lock.unlock() }; return stored }
        func record(_ label: String) { lock.lock(); stored.append(label); lock.unlock() }
    }

    static let cudaOOM = TorchError("[oom] CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.10 GiB")

    func job(seed: UInt64 = 1) throws -> GenerationJob {
        let rgba = try Image(width: 2, height: 2, channels: 4, pixels: [255, 0, 0, 255, 0, 0, 0, 0, 0, 255, 0, 255, 0, 0, 0, 0])
        return GenerationJob(prompt: .image(rgba), seed: seed, validate: false)
    }

    func worker(_ stage: GaussianStage, log: ReleaseLog, label: String, injectOOM: Int = 0) -> PipelineWorker {
        PipelineWorker(device: .cpu, pipeline: GenerationPipeline(textToImage: nil, backgroundRemoval: nil, gaussians: stage,
                                                                  validator: nil),
                       injectOutOfMemoryJobs: injectOOM, releaseCache: { _ in log.record(label) })
    }

    func testOutOfMemoryFailsOnlyItsJobWhileTheOtherWorkerServes() throws {
        let log = ReleaseLog()
        let failing = ScriptedGaussians(failing: [Self.cudaOOM])
        let healthy = ScriptedGaussians()
        let workers = [worker(failing, log: log, label: "w0"), worker(healthy, log: log, label: "w1")]
        let jobs = try (0..<2).map { try job(seed: UInt64($0)) }

        // Both workers at once, each on its own thread, as the daemon runs them.
        let results = Locked([Int: Result<Int, JobFailure>]())
        DispatchQueue.concurrentPerform(iterations: 2) { index in
            let result: Result<Int, JobFailure>
            do {
                result = .success(try workers[index].run(jobs[index]).splat.count)
            } catch let failure as JobFailure {
                result = .failure(failure)
            } catch {
                result = .failure(.internal("not classified: \(error)"))
            }
            results.mutate { $0[index] = result }
        }
        guard case .failure(.outOfMemory(let message))? = results.value[0] else {
            return XCTFail("worker 0 should fail out of memory, got \(String(describing: results.value[0]))")
        }
        XCTAssertTrue(message.contains("Tried to allocate 2.00 GiB"), message)
        XCTAssertEqual(try results.value[1]?.get(), 8)
        XCTAssertEqual(log.entries, ["w0"], "only the failing worker releases its cache")

        // The failing worker serves its next job.
        XCTAssertEqual(try workers[0].run(try job(seed: 5)).splat.count, 8)
        XCTAssertEqual(failing.calls, 2)
        XCTAssertEqual(log.entries, ["w0"])
    }

    func testInjectedOutOfMemoryIsARealAllocatorFailure() throws {
        let log = ReleaseLog()
        let stage = ScriptedGaussians()
        let drill = worker(stage, log: log, label: "drill", injectOOM: 2)
        for _ in 0..<2 {
            XCTAssertThrowsError(try drill.run(try job())) { error in
                guard case JobFailure.outOfMemory(let message) = error else { return XCTFail("\(error)") }
                XCTAssertTrue(message.hasPrefix("injected for a failure drill: "), message)
                XCTAssertGreaterThan(message.count, "injected for a failure drill: ".count + 10, "torch's own message follows")
            }
        }
        XCTAssertEqual(stage.calls, 0, "an injected failure happens before the pipeline runs")
        XCTAssertEqual(try drill.run(try job()).splat.count, 8)
        XCTAssertEqual(log.entries, ["drill", "drill"])
    }

    func testFailuresAreClassifiedAndOnlyServerSideOnesReleaseTheCache() throws {
        let cases: [(Error, JobFailure)] = [
            (Self.cudaOOM, .outOfMemory("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.10 GiB")),
            (TorchError("CUDA error: an illegal memory access was encountered"),
             .internal("CUDA error: an illegal memory access was encountered")),
            (PipelineError.missingStage("fetch flux"), .missingStage("fetch flux")),
            (PipelineError.badInput("steps"), .badInput("steps")),
            (ImagingError.invalidArgument("0x0 image"), .unprocessable("\(ImagingError.invalidArgument("0x0 image"))")),
            (NSError(domain: "other", code: 3), .internal("\(NSError(domain: "other", code: 3))")),
        ]
        for (error, expected) in cases {
            let log = ReleaseLog()
            let stage = ScriptedGaussians(failing: [error])
            let w = worker(stage, log: log, label: "w")
            XCTAssertThrowsError(try w.run(try job())) { XCTAssertEqual($0 as? JobFailure, expected) }
            XCTAssertEqual(log.entries.count, expected.isServerSide ? 1 : 0, "\(expected)")
            XCTAssertEqual(try w.run(try job()).splat.count, 8, "the worker serves after \(expected)")
        }
    }

    // MARK: - Worker plan

    func testDeviceListsAndRoundRobinWorkers() throws {
        XCTAssertEqual(try WorkerPlan.devices("auto", cudaDeviceCount: 0), [.cpu])
        XCTAssertEqual(try WorkerPlan.devices("auto", cudaDeviceCount: 2), [.cuda(0), .cuda(1)])
        XCTAssertEqual(try WorkerPlan.devices("0,2", cudaDeviceCount: 4), [.cuda(0), .cuda(2)])
        XCTAssertEqual(try WorkerPlan.devices("cuda:0, cuda:1", cudaDeviceCount: 2), [.cuda(0), .cuda(1)])
        XCTAssertEqual(try WorkerPlan.devices("CPU", cudaDeviceCount: 0), [.cpu])
        XCTAssertEqual(try WorkerPlan.devices("cuda", cudaDeviceCount: 1), [.cuda(0)])

        XCTAssertEqual(try WorkerPlan.assign(workers: nil, over: [.cuda(0), .cuda(1)]), [.cuda(0), .cuda(1)])
        XCTAssertEqual(try WorkerPlan.assign(workers: 2, over: [.cpu]), [.cpu, .cpu])
        XCTAssertEqual(try WorkerPlan.assign(workers: 3, over: [.cuda(0), .cuda(1)]), [.cuda(0), .cuda(1), .cuda(0)])
        XCTAssertEqual(try WorkerPlan.assign(workers: 1, over: [.cuda(0), .cuda(1)]), [.cuda(0)])
    }

    func testBadDeviceListsAreNamed() {
        func message(_ body: () throws -> Any) -> String {
            do { _ = try body(); return "no error" } catch { return "\(error)" }
        }
        XCTAssertTrue(message { try WorkerPlan.devices("cuda:2", cudaDeviceCount: 2) }.contains("cuda:2 does not exist"))
        XCTAssertTrue(message { try WorkerPlan.devices("1", cudaDeviceCount: 0) }.contains("no CUDA device"))
        XCTAssertTrue(message { try WorkerPlan.devices("tpu", cudaDeviceCount: 1) }.contains("unknown device 'tpu'"))
        XCTAssertTrue(message { try WorkerPlan.devices("-1", cudaDeviceCount: 1) }.contains("unknown device '-1'"))
        XCTAssertTrue(message { try WorkerPlan.devices("0,,1", cudaDeviceCount: 2) }.contains("empty entry"))
        XCTAssertTrue(message { try WorkerPlan.assign(workers: 0, over: [.cpu]) }.contains("at least 1"))
        XCTAssertTrue(message { try WorkerPlan.assign(workers: 2, over: []) }.contains("no device"))
    }
}

/// A value shared between test threads.
private final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value

    init(_ value: Value) { stored = value }

    var value: Value { lock.lock(); defer { lock.unlock() }; return stored }

    func mutate(_ body: (inout Value) -> Void) {
        lock.lock()
        body(&stored)
        lock.unlock()
    }
}

final class FailureClassificationTests: XCTestCase {
    func testNoForegroundIsUnprocessableNotInternal() {
        let f = JobFailure(classifying: TrellisPreprocess.PreprocessError.noForeground("the alpha mask is empty"))
        XCTAssertEqual(f, .unprocessable("\(TrellisPreprocess.PreprocessError.noForeground("the alpha mask is empty"))"))
        XCTAssertFalse(f.isServerSide)
    }
}
