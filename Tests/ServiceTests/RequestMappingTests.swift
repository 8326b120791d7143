import Foundation
import HTTPServer
import Imaging
import PLY
import XCTest
@testable import Pipeline
@testable import Service

/// The request-to-job mapping of `PipelineService`: what a decoded request asks for is what the stages see, each
/// limit is checked once (by the decoder), and the route decides the PLY orientation.
final class RequestMappingTests: XCTestCase {
    final class RecordingText: TextToImageStage {
        let name = "recording-t2i"
        var calls: [(prompt: String, seed: UInt64, steps: Int?)] = []
        func generateImage(prompt: String, seed: UInt64, steps: Int?) throws -> Image {
            calls.append((prompt, seed, steps))
            return try Image(width: 4, height: 4, filledWith: [200, 10, 10, 128])
        }
    }

    final class RecordingGaussians: GaussianStage {
        let name = "trellis"
        var calls: [(seed: UInt64, settings: GaussianSettings, output: SplatOutputOptions)] = []
        func generate(image: Image, seed: UInt64, settings: GaussianSettings, output: SplatOutputOptions) throws -> GaussianSplat {
            calls.append((seed, settings, output))
            return GaussianSplat(positions: [0, 0, 0], shDC: [0, 0, 0], opacities: [1], scales: [-3, -3, -3],
                                 rotations: [1, 0, 0, 0])
        }
    }

    private func service(_ text: RecordingText, _ gaussians: RecordingGaussians) -> PipelineService {
        let pipeline = GenerationPipeline(textToImage: text, backgroundRemoval: nil, gaussians: gaussians, validator: nil)
        var defaults = PipelineService.ServiceDefaults()
        defaults.validate = false
        return PipelineService(workers: [PipelineWorker(device: .cpu, pipeline: pipeline)],
                               status: ServiceStatus(pipelineName: "fake", isSmoke: false, device: "cpu", models: [:],
                                                     missing: [], version: "test"),
                               defaults: defaults)
    }

    private func decode(_ json: String) throws -> GenerationRequest {
        let request = HTTPRequest(method: HTTPMethod("POST"), target: "/generate",
                                  headers: HTTPHeaders([("Host", "x"), ("Content-Type", "application/json")]),
                                  body: Data(json.utf8))
        return try GenerationRequestDecoder.decode(request, route: .competition, requestID: "t")
    }

    func testOptionsReachTheStages() throws {
        let text = RecordingText(), gaussians = RecordingGaussians()
        let request = try decode("""
            {"prompt": "  a brass lamp ", "seed": 7, "options": {"preset": "quality", "image_steps": 2,
             "structure_steps": 9, "latent_steps": 11, "guidance": 4.5}}
            """)
        let answer = try service(text, gaussians).generate(request, worker: 0)
        XCTAssertEqual(answer.headers["X-Seed"], "7")
        XCTAssertEqual(text.calls.map(\.prompt), ["a brass lamp"])
        XCTAssertEqual(text.calls.map(\.seed), [7])
        XCTAssertEqual(text.calls.map(\.steps), [2], "image_steps is passed on, not dropped")
        let job = try XCTUnwrap(gaussians.calls.first)
        XCTAssertEqual(job.seed, 7)
        XCTAssertEqual(job.settings.structureSteps, 9)
        XCTAssertEqual(job.settings.latentSteps, 11)
        XCTAssertEqual(job.settings.structureGuidance, 4.5)
        XCTAssertEqual(job.settings.latentGuidance, GaussianSettings.quality.latentGuidance)
        XCTAssertEqual(job.output.orientation, .yDown, "Competition 0 renders TRELLIS's -Y up")
    }

    func testWithoutImageStepsTheStageKeepsItsOwn() throws {
        let text = RecordingText(), gaussians = RecordingGaussians()
        _ = try service(text, gaussians).generate(try decode("{\"prompt\": \"a cup\"}"), worker: 0)
        XCTAssertEqual(text.calls.count, 1)
        XCTAssertNil(text.calls[0].steps)
        XCTAssertEqual(gaussians.calls.first?.settings, PipelineService.ServiceDefaults().settings)
    }

    func testStepLimitIsTheDecodersAndThePipelinesOne() {
        let range = GaussianSettings.stepRange
        for key in ["image_steps", "structure_steps", "latent_steps"] {
            XCTAssertNoThrow(try decode("{\"prompt\": \"x\", \"options\": {\"\(key)\": \(range.upperBound)}}"), key)
            XCTAssertThrowsError(try decode("{\"prompt\": \"x\", \"options\": {\"\(key)\": \(range.upperBound + 1)}}")) {
                XCTAssertEqual(($0 as? HTTPError)?.status, .badRequest, key)
                XCTAssertTrue("\($0)".contains("between \(range.lowerBound) and \(range.upperBound)"), "\($0)")
            }
        }
    }

    func testLegacyRouteWritesYUp() throws {
        let text = RecordingText(), gaussians = RecordingGaussians()
        let request = GenerationRequest(prompt: .text("a chair"), seed: 3, route: .legacy, requestID: "t")
        _ = try service(text, gaussians).generate(request, worker: 0)
        XCTAssertEqual(gaussians.calls.first?.output.orientation, .yUp)
    }

    func testUnknownGeneratorAndRouteAre400() throws {
        let svc = service(RecordingText(), RecordingGaussians())
        for json in ["{\"prompt\": \"x\", \"options\": {\"generator\": \"nerf\"}}",
                     "{\"prompt\": \"x\", \"options\": {\"text_route\": \"dalle\"}}"] {
            XCTAssertThrowsError(try svc.generate(try decode(json), worker: 0)) {
                XCTAssertEqual(($0 as? JobFailure)?.status, .badRequest, "\($0)")
            }
        }
    }
}
