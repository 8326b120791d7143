import Foundation
import Imaging
import Models
import NN
import PLY
import TorchShim
import XCTest
@testable import Pipeline
import Diagnostics

/// Several generators in one pipeline: the per-job choice of generator and text route, and the errors for choices
/// that cannot run here. Fake stages record what ran; the last test runs the real MVDream -> LGM stage at tiny size.
final class GeneratorRoutingTests: XCTestCase {
    final class RecordingGaussians: GaussianStage {
        let name: String
        var seeds: [UInt64] = []
        init(_ name: String) { self.name = name }
        func generate(image: Image, seed: UInt64, settings: GaussianSettings, output: SplatOutputOptions) throws -> GaussianSplat {
            seeds.append(seed)
            return RecordingGaussians.splat(count: name.contains("lgm") ? 7 : 5)
        }
        static func splat(count n: Int) -> GaussianSplat {
            GaussianSplat(positions: Array(repeating: 0, count: 3 * n), shDC: Array(repeating: 0, count: 3 * n),
                          opacities: Array(repeating: 1, count: n), scales: Array(repeating: -3, count: 3 * n),
                          rotations: Array(repeating: 0.5, count: 4 * n))
        }
    }

    final class RecordingDirectText: TextToGaussianStage {
        let name = "fake mvdream + lgm"
        var calls: [(text: String, seed: UInt64)] = []
        func generate(text: String, seed: UInt64, output: SplatOutputOptions, timings: inout StageTimings) throws
            -> (splat: GaussianSplat, views: Image) {
            calls.append((text, seed))
            timings.append("multiview", seconds: 0)
            return (RecordingGaussians.splat(count: 9), try Image(width: 2, height: 2, filledWith: [1, 2, 3]))
        }
    }

    final class CountingText: TextToImageStage {
        let name = "fake-t2i"
        var calls = 0
        func generateImage(prompt: String, seed: UInt64, steps: Int?) throws -> Image {
            calls += 1
            return try Image(width: 4, height: 4, filledWith: [200, 10, 10, 128])
        }
    }

    struct Fixture {
        let trellis = RecordingGaussians("trellis")
        let lgm = RecordingGaussians("lgm")
        let direct = RecordingDirectText()
        let text = CountingText()

        func pipeline(default name: GeneratorID = .trellis, route: TextRoute = .flux, withDirect: Bool = true,
                      lgmLoaded: Bool = true) throws -> GenerationPipeline {
            var generators: [GeneratorID: GaussianStage] = [.trellis: trellis]
            if lgmLoaded { generators[.lgm] = lgm }
            return try GenerationPipeline(textToImage: text, backgroundRemoval: nil, generators: generators,
                                          defaultGenerator: name, directText: withDirect && lgmLoaded ? [.lgm: direct] : [:],
                                          defaultTextRoute: route, validator: nil,
                                          missingAdvice: [.mvdreamRoute: "fetch mvdream", .generator(.lgm): "fetch lgm"])
        }
    }

    func job(_ prompt: Prompt, generator: String? = nil, route: TextRoute? = nil) -> GenerationJob {
        GenerationJob(prompt: prompt, seed: 11, validate: false, generator: generator, textRoute: route)
    }

    func testJobsPickTheirGeneratorAndTheDefaultServesTheRest() throws {
        let f = Fixture()
        let p = try f.pipeline()
        XCTAssertEqual(p.loadedGenerators, [.trellis, .lgm])
        let image = Prompt.image(try Image(width: 4, height: 4, filledWith: [9, 9, 9, 128]))

        let byDefault = try p.run(job(image))
        XCTAssertEqual(byDefault.generator, .trellis)
        XCTAssertNil(byDefault.textRoute)
        XCTAssertEqual(byDefault.splat.count, 5)
        let chosen = try p.run(job(image, generator: "LGM"))
        XCTAssertEqual(chosen.generator, .lgm)
        XCTAssertEqual(chosen.splat.count, 7)
        XCTAssertEqual(f.trellis.seeds, [11])
        XCTAssertEqual(f.lgm.seeds, [11])
        XCTAssertEqual(f.direct.calls.count, 0)
    }

    func testTextRoutes() throws {
        let f = Fixture()
        // Default route flux: LGM text goes through the image stages unless the job asks for mvdream.
        let p = try f.pipeline(default: .lgm)
        let viaFlux = try p.run(job(.text("a red chair")))
        XCTAssertEqual(viaFlux.textRoute, .flux)
        XCTAssertEqual(f.text.calls, 1)
        XCTAssertEqual(f.lgm.seeds, [11])

        let viaMVDream = try p.run(job(.text("a red chair"), route: .mvdream))
        XCTAssertEqual(viaMVDream.textRoute, .mvdream)
        XCTAssertEqual(viaMVDream.generator, .lgm)
        XCTAssertEqual(viaMVDream.splat.count, 9)
        XCTAssertEqual(f.direct.calls.map(\.text), ["a red chair"])
        XCTAssertEqual(f.text.calls, 1, "the mvdream route does not run FLUX")
        XCTAssertEqual(viaMVDream.conditioningImage.width, 2, "the outcome shows the views the generator saw")
        XCTAssertEqual(viaMVDream.timings.entries.map(\.name), ["multiview", "ply"])

        // Default route mvdream: LGM jobs take it, TRELLIS jobs keep the flux route.
        let q = try f.pipeline(default: .lgm, route: .mvdream)
        XCTAssertEqual(try q.run(job(.text("a lamp"))).textRoute, .mvdream)
        let trellis = try q.run(job(.text("a lamp"), generator: "trellis"))
        XCTAssertEqual(trellis.textRoute, .flux)
        XCTAssertEqual(trellis.generator, .trellis)
        // A job may still ask for flux.
        XCTAssertEqual(try q.run(job(.text("a lamp"), route: .flux)).textRoute, .flux)
    }

    func testChoicesThatCannotRunAreExplained() throws {
        let f = Fixture()
        let p = try f.pipeline()
        let text = Prompt.text("a boat")
        XCTAssertThrowsError(try p.run(job(text, generator: "nerf"))) { error in
            guard case PipelineError.badInput(let why) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(why.contains("unknown generator 'nerf'"), why)
        }
        XCTAssertThrowsError(try p.run(job(text, route: .mvdream))) { error in
            guard case PipelineError.badInput(let why) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(why.contains("ends in LGM"), why)
        }
        let noMVDream = try f.pipeline(withDirect: false)
        XCTAssertThrowsError(try noMVDream.run(job(text, generator: "lgm", route: .mvdream))) { error in
            guard case PipelineError.missingStage(let why) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(why, "fetch mvdream")
        }
        // Without MVDream a default route of mvdream falls back to flux rather than failing every text job.
        XCTAssertEqual(try f.pipeline(default: .lgm, route: .mvdream, withDirect: false).run(job(text)).textRoute, .flux)
        let trellisOnly = try f.pipeline(lgmLoaded: false)
        XCTAssertThrowsError(try trellisOnly.run(job(text, generator: "lgm"))) { error in
            guard case PipelineError.missingStage(let why) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(why, "fetch lgm")
        }
        XCTAssertThrowsError(try GenerationPipeline(textToImage: nil, backgroundRemoval: nil, generators: [.trellis: f.trellis],
                                                    defaultGenerator: .lgm, validator: nil))
        XCTAssertEqual(try AssemblyOptions.parseGenerators("lgm, trellis"), [.lgm, .trellis])
        XCTAssertThrowsError(try AssemblyOptions.parseGenerators("lgm,lgm"))
        XCTAssertThrowsError(try AssemblyOptions.parseGenerators("gaussians"))
        XCTAssertThrowsError(try AssemblyOptions.parseGenerators(""))
        // Timing-mode token ids never divide by a degenerate vocabulary (this trapped once on the GPU run).
        XCTAssertEqual(try SmokeTokenizer(clipVocab: 49408, t5Vocab: 2).ids("a red chair").t5.count, 24)
    }

    /// Retries of the mvdream route draw new views with new seeds (the multi-view diffusion is part of the attempt).
    func testMVDreamRetriesUseNewSeeds() throws {
        final class Low: ValidationStage {
            let name = "low"
            func evaluate(_ splat: GaussianSplat, prompt: Prompt, orientation: SplatOrientation) throws -> ValidationVerdict {
                ValidationVerdict(score: 0.1, alignment: 0.1, passedChecks: true)
            }
        }
        let f = Fixture()
        let p = try GenerationPipeline(textToImage: nil, backgroundRemoval: nil, generators: [.lgm: f.lgm],
                                       defaultGenerator: .lgm, directText: [.lgm: f.direct], defaultTextRoute: .mvdream,
                                       validator: Low())
        var j = job(.text("a cup"))
        j.validate = true
        j.maxAttempts = 3
        let out = try p.run(j)
        XCTAssertTrue(out.gated)
        XCTAssertEqual(f.direct.calls.map(\.seed), [11, 12, 13])
        XCTAssertTrue(out.ply.isEmpty)
    }

    /// The real stage at fixture-like size on the CPU (random weights): MVDream's text call, the per-view cut-out
    /// and recentring, LGM, and the PLY conventions.
    func testMVDreamLGMStageRunsEndToEnd() throws {
        final class BoxCutter: BackgroundRemovalStage {
            let name = "box"
            var calls = 0
            func removeBackground(_ image: Image) throws -> Image {
                calls += 1
                var px = image.toRGBA().pixels
                let (w, h) = (image.width, image.height)
                for y in 0..<h { for x in 0..<w where !(h / 4..<3 * h / 4).contains(y) || !(w / 3..<2 * w / 3).contains(x) {
                    px[4 * (y * w + x) + 3] = 0
                } }
                return try Image(width: w, height: h, channels: 4, pixels: px)
            }
        }
        let sizes = LGMBenchmark.Sizes.tiny
        var unetConfig = sizes.unet
        unetConfig.ipDim = 0
        func random(_ shapes: [String: [Int]], _ seed: UInt64) throws -> WeightLoader {
            try FluxBenchmark.randomLoader(shapes, device: .cpu, dtype: .float32, seed: seed)
        }
        let mvdream = try MVDreamPipeline(
            unet: MultiViewUNetModel(random(unetConfig.parameterShapes(), 4), config: unetConfig),
            vae: AutoencoderKL(random(sizes.vae.parameterShapes(), 3), config: sizes.vae),
            textEncoder: CLIPTextModel(random(sizes.text.parameterShapes(), 1), config: sizes.text),
            imageEncoder: nil, schedulerConfig: DDIMScheduler.Config())
        let lgm = try LGM(random(sizes.lgm.parameterShapes(), 5), config: sizes.lgm)
        let cutter = BoxCutter()
        var prompts: [String] = []
        let stage = try MVDreamLGMStage(mvdream: mvdream, model: lgm, tokenize: { text in
            prompts.append(text)
            return [998] + [Int32](repeating: Int32(text.count % 900 + 1), count: 75) + [999]
        }, backgroundRemoval: cutter, device: .cpu, options: MVDreamPipeline.Options(steps: 2, guidanceScale: 7.5, height: 64, width: 64))

        var timings = StageTimings()
        let (splat, views) = try stage.generate(text: "a chair", seed: 3, output: SplatOutputOptions(orientation: .yDown),
                                                timings: &timings)
        XCTAssertEqual(prompts, ["a chair", MVDreamLGMStage.appNegativePrompt])
        XCTAssertEqual(cutter.calls, 4, "each view is cut out")
        XCTAssertEqual(timings.entries.map(\.name), ["multiview", "background", "gaussians"])
        XCTAssertEqual(views.width, 128)
        XCTAssertEqual(views.height, 128)
        XCTAssertGreaterThan(splat.count, 0)
        XCTAssertLessThanOrEqual(splat.count, 4 * 32 * 32)
        XCTAssertTrue(splat.positions.allSatisfy { $0.isFinite && abs($0) <= 1 })
        XCTAssertEqual(splat.normals?.count, 3 * splat.count)

        // Same seed, same splat; another seed draws other views.
        var t2 = StageTimings()
        let again = try stage.generate(text: "a chair", seed: 3, output: SplatOutputOptions(orientation: .yDown), timings: &t2)
        XCTAssertEqual(again.splat.positions, splat.positions)
        let other = try stage.generate(text: "a chair", seed: 4, output: SplatOutputOptions(orientation: .yDown), timings: &t2)
        XCTAssertNotEqual(other.splat.positions, splat.positions)

        // An ImageDream UNet cannot serve the text stage.
        let imageDream = try MVDreamPipeline(
            unet: MultiViewUNetModel(random(sizes.unet.parameterShapes(), 4), config: sizes.unet),
            vae: AutoencoderKL(random(sizes.vae.parameterShapes(), 3), config: sizes.vae),
            textEncoder: CLIPTextModel(random(sizes.text.parameterShapes(), 1), config: sizes.text),
            imageEncoder: CLIPVisionModel(random(sizes.vision.parameterShapes(), 2), config: sizes.vision,
                                          usesPenultimateLayerOnly: true),
            schedulerConfig: DDIMScheduler.Config())
        XCTAssertThrowsError(try MVDreamLGMStage(mvdream: imageDream, model: lgm, tokenize: { _ in [] }, backgroundRemoval: nil,
                                                 device: .cpu))
    }
}
