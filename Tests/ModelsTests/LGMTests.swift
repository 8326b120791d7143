import Foundation
import XCTest
import Diagnostics
@testable import Models
import NN
import Imaging
import PLY
import Fixtures
import Pipeline
import TorchShim

/// LGM + ImageDream parity against shared/fixtures/lgm (official 3DTopia/LGM code run in float64, stored as float32).
/// The tolerances and the measured spread they rest on are stated once, in LGMFixtures: rays 1e-6, cameras and input
/// 1e-5, networks 1e-4, pipeline 1e-3, PLY fields 1e-5, kept rows exact.
final class LGMTests: XCTestCase {
    private var shared: URL {
        get throws { try XCTUnwrap(LGMFixturePaths.folder, "shared/fixtures/lgm not found above \(#filePath)") }
    }

    @discardableResult
    private func runCase(_ stem: String, file: StaticString = #filePath, line: UInt = #line) throws -> [TensorComparison] {
        let runner = FixtureRunner()
        let cases = try runner.discover(shared)
        let fixture = try XCTUnwrap(cases.first { $0.stem == stem }, "no case \(stem)", file: file, line: line)
        let result = runner.run(fixture)
        print("[\(fixture.label)] \(String(format: "%.2f", result.seconds)) s")
        for c in result.comparisons { print("  \(c)") }
        XCTAssertNil(result.error, result.error ?? "", file: file, line: line)
        XCTAssertFalse(result.comparisons.isEmpty, file: file, line: line)
        for c in result.comparisons { XCTAssertTrue(c.passed, "\(c)", file: file, line: line) }
        return result.comparisons
    }

    func testLGMFixture() throws { try runCase("lgm") }

    /// selftest's view of the folder: three cases, all handled and passing.
    func testEveryFixtureOfTheFolderIsHandled() throws {
        let results = try FixtureRunner().runFolder(shared)
        XCTAssertEqual(results.map(\.fixture.stem).sorted(), ["lgm", "mv_unet_imagedream", "pipeline_imagedream"])
        for r in results { XCTAssertTrue(r.passed, "\(r.fixture.label): \(r.error ?? r.comparisons.map(\.description).joined(separator: "; "))") }
    }

    func testImageDreamUNetFixture() throws {
        let names = try runCase("mv_unet_imagedream").map(\.name)
        for name in ["time_emb", "camera_emb", "ip_emb", "h_in", "input_blocks.5", "middle_block", "output"] {
            XCTAssertTrue(names.contains(name), "\(name) not compared")
        }
    }

    func testImageDreamPipelineFixture() throws {
        let names = try runCase("pipeline_imagedream").map(\.name)
        for name in ["pixel_values", "image_embeds", "image_latents", "prompt_embeds_pos", "init_latents", "camera",
                     "step0.unet_x", "step0.unet_out", "step2.latents", "timesteps", "images"] {
            XCTAssertTrue(names.contains(name), "\(name) not compared")
        }
    }

    func testPipelineRejectsBadCallsClearly() throws {
        let fixture = try XCTUnwrap(FixtureRunner().discover(shared).first { $0.stem == "pipeline_imagedream" })
        let (pipe, processor) = try LGMFixtures.imageDreamPipeline(fixture)
        XCTAssertTrue(pipe.isImageDream)
        let ids = try Tensor([Int32](repeating: 0, count: 77), shape: [1, 77])
        let prompt = try LGMImagePreparation.imagePrompt(Tensor.ones([32, 32, 3]), processor: processor, device: .cpu)
        XCTAssertThrowsError(try pipe(promptIds: ids, negativeIds: ids, options: .init(steps: 1))) {
            XCTAssertTrue("\($0)".contains("needs an image prompt"), "\($0)")
        }
        XCTAssertThrowsError(try pipe(promptIds: ids, negativeIds: ids, image: prompt, options: .init(steps: 1, height: 512, width: 512))) {
            XCTAssertTrue("\($0)".contains("256"), "\($0)")
        }
        XCTAssertThrowsError(try pipe(promptIds: ids.view([77]), negativeIds: ids, image: prompt, options: .init(steps: 1)))
        XCTAssertThrowsError(try pipe(promptIds: ids, negativeIds: ids, image: prompt, options: .init(steps: 0)))
        XCTAssertThrowsError(try LGMImagePreparation.imagePrompt(Tensor.ones([32, 32, 4]), processor: processor, device: .cpu))
        XCTAssertThrowsError(try pipe.imageLatents(Tensor.ones([1, 4, 32, 32])))
        XCTAssertThrowsError(try pipe(promptIds: ids, negativeIds: ids, image: prompt, options: .init(steps: 1),
                                      latents: Tensor.zeros([4, 4, 32, 32]))) { XCTAssertTrue("\($0)".contains("latents"), "\($0)") }
    }

    /// The stage end to end on the tiny fixture networks (ImageDream 2 steps at 256 px, LGM at 64 px): a cut-out object
    /// in, a pruned splat out, deterministic per seed, turned for each validator convention.
    func testLGMStageOnTinyNetworks() throws {
        let runner = FixtureRunner()
        let cases = try runner.discover(shared)
        let (pipe, processor) = try LGMFixtures.imageDreamPipeline(try XCTUnwrap(cases.first { $0.stem == "pipeline_imagedream" }))
        let lgmCase = try XCTUnwrap(cases.first { $0.stem == "lgm" })
        let model = try LGM(WeightLoader(lgmCase.weights()), config: lgmCase.decodeArgs(LGM.Config.self))
        let stage = try LGMGaussianStage(imageDream: pipe, model: model, processor: processor,
                                         promptIds: [998, 999] + [Int32](repeating: 0, count: 75), device: .cpu,
                                         options: .init(steps: 2, decodeReferenceView: false))
        XCTAssertEqual(stage.name, "lgm")
        var pixels = [UInt8](repeating: 0, count: 48 * 32 * 4)
        for y in 6..<26 { for x in 10..<40 { pixels.replaceSubrange((y * 48 + x) * 4..<(y * 48 + x) * 4 + 4, with: [220, UInt8(4 * y), UInt8(5 * x), 255]) } }
        let image = try Image(width: 48, height: 32, channels: 4, pixels: pixels)

        let up = try stage.generate(image: image, seed: 7, settings: .fast, output: SplatOutputOptions(orientation: .yUp, includeNormals: false))
        let down = try stage.generate(image: image, seed: 7, settings: .fast, output: SplatOutputOptions(orientation: .yDown))
        XCTAssertGreaterThan(up.count, 0)
        XCTAssertLessThanOrEqual(up.count, 4 * 32 * 32)
        XCTAssertEqual(up.count, down.count)
        XCTAssertNil(up.normals)
        XCTAssertEqual(down.normals?.count, 3 * down.count)
        XCTAssertEqual(up.opacities, down.opacities)
        XCTAssertEqual(up.shDC, down.shDC)
        for i in 0..<up.count {
            XCTAssertEqual(down.positions[3 * i], up.positions[3 * i], accuracy: 1e-6)
            XCTAssertEqual(down.positions[3 * i + 1], -up.positions[3 * i + 1], accuracy: 1e-6)
            XCTAssertEqual(down.positions[3 * i + 2], -up.positions[3 * i + 2], accuracy: 1e-6)
        }
        let data = try PLYWriter().encode(up)
        XCTAssertEqual(try PLYReader.read(data).count, up.count)
        XCTAssertThrowsError(try stage.generate(image: Image(width: 8, height: 8, filledWith: [0, 0, 0, 0]), seed: 1,
                                                settings: .fast, output: .init()))
    }

    /// The benchmark runs end to end at fixture size on the CPU (the real sizes are for the GPU machine).
    func testBenchmarkRunsAtTinySize() throws {
        let rows = try LGMBenchmark.run(device: .cpu, dtype: .float32, manifestDir: nil, sizes: .tiny)
        for row in rows { print(row) }
        XCTAssertEqual(rows.count, 11)
        XCTAssertTrue(rows[0].name.hasPrefix("GEMM"), "the run's own ceiling comes first")
        let lgmRow = try XCTUnwrap(rows.first { $0.name.hasPrefix("LGM forward") })
        XCTAssertTrue(lgmRow.name.contains("4096 Gaussians") && lgmRow.notes.hasPrefix("finite"), "\(lgmRow)")
        // Every network stage is rated against the GEMM from its counted FLOPs.
        for prefix in ["CLIP text", "CLIP vision", "VAE encode", "MV UNet step", "VAE decode", "ImageDream", "LGM forward"] {
            let row = try XCTUnwrap(rows.first { $0.name.hasPrefix(prefix) }, prefix)
            XCTAssertTrue(row.notes.contains("TFLOP/s (") && !row.notes.hasPrefix("0 GFLOP"), "\(row)")
        }
        XCTAssertTrue(rows.allSatisfy { $0.milliseconds >= 0 })
        // The real-size run reads its key lists and configs from the manifests.
        let lgm = try LGMBenchmark.manifest(shared.appendingPathComponent("manifest_lgm_big.json"), LGM.Config.self)
        XCTAssertEqual(lgm.config, .big)
        XCTAssertEqual(lgm.shapes.count, 376)
        let unet = try LGMBenchmark.manifest(shared.appendingPathComponent("manifest_mv_unet_imagedream.json"),
                                             MultiViewUNetModel.Config.self)
        XCTAssertEqual(unet.config, .imagedream)
        XCTAssertEqual(unet.shapes, unet.config.parameterShapes())
        // The configs of the components without a manifest: SD 2.1 text tower and ViT-H/14 parameter counts.
        let text = LGMBenchmark.Sizes.imageDream.text.parameterShapes().values.reduce(0) { $0 + $1.reduce(1, *) }
        XCTAssertEqual(Double(text) / 1e6, 340, accuracy: 15)
        let vision = LGMBenchmark.Sizes.imageDream.vision.parameterShapes().values.reduce(0) { $0 + $1.reduce(1, *) }
        XCTAssertEqual(Double(vision) / 1e6, 632, accuracy: 5)
    }

    /// The ViT-H/14 key set loads whole or for the penultimate layer only (last layer and post_layernorm skipped, an
    /// optional visual_projection ignored); other unexpected keys are still reported.
    func testCLIPVisionKeySets() throws {
        let config = CLIPVisionModel.Config.vitH14
        let infos = config.parameterShapes().mapValues { TensorInfo(dtype: .float16, shape: $0) }
        let full = WeightLoader(ManifestWeights(infos))
        let model = try CLIPVisionModel(full, config: config)
        try full.checkAllUsed()
        XCTAssertEqual(model.encoder.layers.count, 32)
        var withProjection = infos
        withProjection["visual_projection.weight"] = TensorInfo(dtype: .float16, shape: [1024, 1280])
        let penultimate = WeightLoader(ManifestWeights(withProjection))
        let trimmed = try CLIPVisionModel(penultimate, config: config, usesPenultimateLayerOnly: true)
        try penultimate.checkAllUsed()
        XCTAssertEqual(trimmed.encoder.layers.count, 31)
        XCTAssertThrowsError(try trimmed(Tensor.zeros([1, 3, 224, 224])))
        withProjection["vision_model.extra.bias"] = TensorInfo(dtype: .float16, shape: [2])
        let extra = WeightLoader(ManifestWeights(withProjection))
        _ = try CLIPVisionModel(extra, config: config, usesPenultimateLayerOnly: true)
        XCTAssertThrowsError(try extra.checkAllUsed()) { XCTAssertTrue("\($0)".contains("vision_model.extra.bias"), "\($0)") }
    }

    /// README: "leading" spacing with offset 1: 3 steps 667, 334, 1; 30 steps 958, 925, ..., 34, 1.
    func testDDIMTimestepsMatchReadme() throws {
        XCTAssertEqual(try DDIMScheduler(config: .init(), steps: 3).timesteps, [667, 334, 1])
        let thirty = try DDIMScheduler(config: .init(), steps: 30).timesteps
        XCTAssertEqual(thirty.count, 30)
        XCTAssertEqual(Array(thirty.prefix(2)), [958, 925])
        XCTAssertEqual(Array(thirty.suffix(2)), [34, 1])
        XCTAssertThrowsError(try DDIMScheduler(config: .init(), steps: 0))
        var bad = DDIMScheduler.Config()
        bad.betaSchedule = "squaredcos_cap_v2"
        XCTAssertThrowsError(try DDIMScheduler(config: bad, steps: 3)) { XCTAssertTrue("\($0)".contains("squaredcos"), "\($0)") }
    }

    /// With eps = 0 a DDIM step rescales x by sqrt(a_prev / a_t); the last step (t = 1) lands on alphas_cumprod[0].
    func testDDIMStepClosedForm() throws {
        let scheduler = try DDIMScheduler(config: .init(), steps: 3)
        let x = try Tensor([Float(1), -2, 0.5], shape: [3])
        let out = try scheduler.step(modelOutput: x.zerosLike(), timestep: 667, sample: x).floats()
        let ratio = (scheduler.alphasCumprod[334] / scheduler.alphasCumprod[667]).squareRoot()
        for (o, v) in zip(out, [Float(1), -2, 0.5]) { XCTAssertEqual(o, v * ratio, accuracy: 1e-4) }
        XCTAssertThrowsError(try scheduler.step(modelOutput: x, timestep: 1000, sample: x))
    }

    func testCLIPImageProcessorConfigs() throws {
        func decode(_ json: String) throws -> CLIPImageProcessor {
            try JSONDecoder().decode(CLIPImageProcessor.self, from: Data(json.utf8))
        }
        XCTAssertEqual(try decode(#"{"size": 224, "crop_size": 224}"#), CLIPImageProcessor(side: 224))
        XCTAssertEqual(try decode(#"{"size": {"shortest_edge": 224}, "crop_size": {"height": 224, "width": 224}}"#),
                       CLIPImageProcessor(side: 224))
        XCTAssertThrowsError(try decode(#"{"size": {"height": 224, "width": 224}}"#))
        var nearest = CLIPImageProcessor(side: 8)
        nearest.resample = 0
        XCTAssertThrowsError(try nearest.pixelValues(Image(width: 16, height: 12, filledWith: [1, 2, 3])))
        // A non-square image: the short side becomes 8, then an 8 x 8 centre crop of a constant image.
        let values = try CLIPImageProcessor(side: 8).pixelValues(Image(width: 16, height: 12, filledWith: [255, 0, 128]))
        XCTAssertEqual(values.shape, [1, 3, 8, 8])
        let red = try values.select(1, 0).max().item()
        XCTAssertEqual(red, (1 - 0.48145466) / 0.26862954, accuracy: 1e-5)
    }

    func testRecenterAndWhiteComposite() throws {
        // A 40 x 20 RGBA image with an opaque 10 x 4 block at (x 5..<15, y 2..<6).
        var pixels = [UInt8](repeating: 0, count: 40 * 20 * 4)
        for y in 2..<6 { for x in 5..<15 { pixels.replaceSubrange((y * 40 + x) * 4..<(y * 40 + x) * 4 + 4, with: [200, 100, 50, 255]) } }
        let image = try Image(width: 40, height: 20, channels: 4, pixels: pixels)
        let centred = try LGMImagePreparation.recenter(image)
        XCTAssertEqual([centred.width, centred.height], [40, 40])
        // box 9 x 3 (end-exclusive like the reference) scaled to 32 wide: int(3 * 32 / 9) = 10 rows, centred.
        var rows = Set<Int>(), cols = Set<Int>()
        for y in 0..<40 { for x in 0..<40 where centred.pixels[(y * 40 + x) * 4 + 3] > 0 { rows.insert(y); cols.insert(x) } }
        XCTAssertEqual(cols.min(), 4); XCTAssertEqual(cols.max(), 35)
        XCTAssertEqual(rows.min(), 15); XCTAssertEqual(rows.max(), 24)
        let composite = try LGMImagePreparation.whiteComposite(centred)
        XCTAssertEqual(composite.shape, [40, 40, 3])
        XCTAssertEqual(try composite.select(0, 0).select(0, 0).floats(), [1, 1, 1])
        XCTAssertEqual(try composite.select(0, 20).select(0, 20).floats()[0], 200.0 / 255, accuracy: 1e-6)
        XCTAssertThrowsError(try LGMImagePreparation.recenter(Image(width: 8, height: 8, filledWith: [0, 0, 0, 0]))) {
            XCTAssertTrue("\($0)".contains("no visible object"), "\($0)")
        }
    }

    // MARK: loading

    private func fixtureWeights(_ stem: String) throws -> TensorDictionary {
        try FixtureChecks.weights(shared.appendingPathComponent("\(stem).safetensors"))
    }

    private func args<T: Decodable>(_ name: String, _ type: T.Type, key: String = "args") throws -> T {
        let data = try Data(contentsOf: shared.appendingPathComponent(name))
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try JSONDecoder().decode(T.self, from: JSONSerialization.data(withJSONObject: json[key] as Any))
    }

    private func assertLoaderRejects(_ stem: String, missing: String, reshaped: String,
                                     load: (WeightLoader) throws -> Void) throws {
        try FixtureChecks.assertLoaderRejects(shared.appendingPathComponent("\(stem).safetensors"), missing: missing,
                                              reshaped: reshaped, load: load)
    }

    func testFullSizeLGMManifestLoads() throws {
        let url = try shared.appendingPathComponent("manifest_lgm_big.json")
        let manifest = try ManifestWeights(url: url)
        let config = try args("manifest_lgm_big.json", LGM.Config.self)
        XCTAssertEqual(config, LGM.Config.big)
        let w = WeightLoader(manifest)
        let model = try LGM(w, config: config)
        try w.checkAllUsed()
        XCTAssertEqual(model.config.outputSide, 128)
        let expected = Dictionary(uniqueKeysWithValues: manifest.keys.map { ($0, manifest.info($0)!.shape) })
        XCTAssertEqual(config.parameterShapes(), expected)
        XCTAssertEqual(expected.values.reduce(0) { $0 + $1.reduce(1, *) }, 415_042_848)
    }

    func testParameterShapesMatchTheTinyFixture() throws {
        let file = try SafeTensorsFile(url: shared.appendingPathComponent("lgm.safetensors"))
        let stored = Dictionary(uniqueKeysWithValues: file.keys.map { ($0, file.info($0)!.shape) })
        XCTAssertEqual(try args("lgm.json", LGM.Config.self).parameterShapes(), stored)
    }

    func testLGMLoaderNamesMissingMisshapenAndUnexpectedKeys() throws {
        let config = try args("lgm.json", LGM.Config.self)
        try assertLoaderRejects("lgm", missing: "unet.up_blocks.1.attns.2.attn.qkv.weight",
                                reshaped: "unet.down_blocks.4.downsample.weight") { _ = try LGM($0, config: config) }
    }

    /// `LGM.load` ignores LPIPS keys (as `load_state_dict(strict=False)` on a training checkpoint) but nothing else.
    func testLoadCheckpointIgnoresOnlyLPIPSKeys() throws {
        let config = try args("lgm.json", LGM.Config.self)
        let weights = try fixtureWeights("lgm")
        var tensors = weights.tensors
        tensors["lpips_loss.net.slice1.0.weight"] = try Tensor.zeros([2, 3])
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lgm-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try SafeTensors.write(tensors, to: url)
        let model = try LGM.load(checkpoint: url, config: config, device: .cpu, dtype: .float32)
        XCTAssertEqual(model.dtype, .float32)
        tensors["extra.bias"] = try Tensor.zeros([2])
        try SafeTensors.write(tensors, to: url)
        XCTAssertThrowsError(try LGM.load(checkpoint: url, config: config, device: .cpu, dtype: .float32)) {
            XCTAssertTrue("\($0)".contains("extra.bias"), "\($0)")
        }
    }

    func testBadLGMConfigsAndInputsAreRejectedClearly() throws {
        var config = try args("lgm.json", LGM.Config.self)
        config.splatSize = 64
        XCTAssertThrowsError(try LGM(WeightLoader(fixtureWeights("lgm")), config: config)) {
            XCTAssertTrue("\($0)".contains("splat_size"), "\($0)")
        }
        var asymmetric = LGM.Config.big
        asymmetric.upChannels = [1024, 512, 512, 256, 128]
        XCTAssertThrowsError(try LGM(WeightLoader(ManifestWeights([:])), config: asymmetric)) {
            XCTAssertTrue("\($0)".contains("up_channels[1]"), "\($0)")
        }
        let model = try LGM(WeightLoader(fixtureWeights("lgm")), config: try args("lgm.json", LGM.Config.self))
        XCTAssertThrowsError(try model.splatterImages(Tensor.zeros([1, 3, 9, 64, 64]))) {
            XCTAssertTrue("\($0)".contains("[batch, 4, 9, 64, 64]"), "\($0)")
        }
        XCTAssertThrowsError(try LGMInput.assemble(views: Tensor.zeros([4, 64, 64, 4]),
                                                   rays: LGMRays.defaultRays(config: model.config), inputSize: 64))
        XCTAssertThrowsError(try LGMInput.fromPipelineViews(Tensor.zeros([3, 8, 8, 3])))
        XCTAssertThrowsError(try LGMGaussians(Tensor.zeros([1, 10, 13])))
    }

    func testFullSizeMultiViewUNetManifestsLoad() throws {
        for (name, preset) in [("manifest_mv_unet_imagedream.json", MultiViewUNetModel.Config.imagedream),
                               ("manifest_mv_unet_mvdream.json", MultiViewUNetModel.Config.mvdream)] {
            let manifest = try ManifestWeights(url: shared.appendingPathComponent(name))
            let config = try args(name, MultiViewUNetModel.Config.self)
            XCTAssertEqual(config, preset, name)
            let w = WeightLoader(manifest)
            _ = try MultiViewUNetModel(w, config: config)
            try w.checkAllUsed()
            let expected = Dictionary(uniqueKeysWithValues: manifest.keys.map { ($0, manifest.info($0)!.shape) })
            XCTAssertEqual(config.parameterShapes(), expected, name)
        }
        // Without camera_dim in the config, the checkpoint's camera MLP decides it.
        var noCamera = MultiViewUNetModel.Config.imagedream
        noCamera.cameraDim = nil
        let w = WeightLoader(try ManifestWeights(url: shared.appendingPathComponent("manifest_mv_unet_imagedream.json")))
        XCTAssertEqual(try MultiViewUNetModel(w, config: noCamera).config.cameraDim, 16)
        try w.checkAllUsed()
    }

    func testMultiViewUNetShapesAndLoaderErrors() throws {
        let config = try args("mv_unet_imagedream.json", MultiViewUNetModel.Config.self)
        let file = try SafeTensorsFile(url: shared.appendingPathComponent("mv_unet_imagedream.safetensors"))
        XCTAssertEqual(config.parameterShapes(), Dictionary(uniqueKeysWithValues: file.keys.map { ($0, file.info($0)!.shape) }))
        try assertLoaderRejects("mv_unet_imagedream", missing: "output_blocks.2.1.transformer_blocks.0.attn2.to_k_ip.weight",
                                reshaped: "image_embed.layers.3.0.to_kv.weight") { _ = try MultiViewUNetModel($0, config: config) }
    }

    func testMultiViewUNetRejectsBadConfigsAndInputs() throws {
        func decode(_ json: String) throws -> MultiViewUNetModel.Config {
            try JSONDecoder().decode(MultiViewUNetModel.Config.self, from: Data(json.utf8))
        }
        let base = #""in_channels": 4, "out_channels": 4, "model_channels": 32, "attention_resolutions": [1], "num_res_blocks": 1, "channel_mult": [1], "context_dim": 16, "num_head_channels": 16"#
        XCTAssertNoThrow(try decode("{\(base), \"num_classes\": null}"))
        XCTAssertThrowsError(try decode("{\(base), \"num_classes\": \"sequential\"}")) {
            XCTAssertTrue("\($0)".contains("num_classes"), "\($0)")
        }
        XCTAssertThrowsError(try decode("{\(base), \"num_attention_blocks\": [1]}"))
        var c = try decode("{\(base)}")
        c.useScaleShiftNorm = true
        XCTAssertThrowsError(try MultiViewUNetModel(WeightLoader(ManifestWeights(c.parameterShapes().mapValues {
            TensorInfo(dtype: .float32, shape: $0) })), config: c))

        let config = try args("mv_unet_imagedream.json", MultiViewUNetModel.Config.self)
        let model = try MultiViewUNetModel(WeightLoader(fixtureWeights("mv_unet_imagedream")), config: config)
        let x = try Tensor.zeros([10, 4, 8, 8]), t = try Tensor.zeros([10]), ctx = try Tensor.zeros([10, 77, 16])
        XCTAssertThrowsError(try model(x, timesteps: t, context: ctx, frames: 3)) { XCTAssertTrue("\($0)".contains("frames"), "\($0)") }
        XCTAssertThrowsError(try model(x, timesteps: t, context: ctx, frames: 5)) { XCTAssertTrue("\($0)".contains("ip"), "\($0)") }
        XCTAssertThrowsError(try model(x, timesteps: t, context: ctx, camera: Tensor.zeros([10, 12]), frames: 5,
                                       ip: Tensor.zeros([10, 5, 1280]), ipImage: Tensor.zeros([2, 4, 8, 8])))
        XCTAssertThrowsError(try model(x, timesteps: t, context: ctx, frames: 5, ip: Tensor.zeros([10, 5, 1280]),
                                       ipImage: Tensor.zeros([1, 4, 8, 8])))
    }

    // MARK: orientation

    private func rotationMatrix(_ q: [Double]) -> [[Double]] {
        let n = q.map { $0 * $0 }.reduce(0, +).squareRoot()
        let (w, x, y, z) = (q[0] / n, q[1] / n, q[2] / n, q[3] / n)
        return [[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]]
    }

    private func multiply(_ a: [[Double]], _ b: [[Double]]) -> [[Double]] {
        (0..<3).map { i in (0..<3).map { j in (0..<3).reduce(0) { $0 + a[i][$1] * b[$1][j] } } }
    }

    /// Turning the splat moves positions by R and composes every Gaussian's rotation with R (R(q') = R R(q)), and
    /// sends LGM's up (+Y) and front (-X) where each convention wants them.
    func testOrientationsRotatePositionsAndGaussiansTogether() throws {
        var rows: [Float] = []
        let quats: [[Float]] = [[0.9, 0.1, -0.3, 0.2], [0.1, -0.7, 0.5, 0.4], [-0.2, 0.3, 0.1, -0.9]]
        for (i, q) in quats.enumerated() {
            let n = q.map { $0 * $0 }.reduce(0, +).squareRoot()
            let position: [Float] = i == 0 ? [-1, 0, 0] : i == 1 ? [0, 1, 0] : [0.2, -0.4, 0.6]
            rows += position + [0.9, 0.1, 0.2, 0.3] + q.map { $0 / n } + [0.5, 0.25, 0.75]
        }
        let gaussians = try LGMGaussians(Tensor(rows, shape: [1, 3, 14]))
        let native = try gaussians.plyFields()
        let expectations: [(SplatOrientation?, front: [Float], up: [Float])] = [
            (nil, [-1, 0, 0], [0, 1, 0]), (.yUp, [0, 0, 1], [0, 1, 0]), (.yDown, [0, 0, -1], [0, -1, 0]),
        ]
        for (orientation, front, up) in expectations {
            let turn = LGMExportTurn(orientation)
            let fromQuaternion = rotationMatrix(turn.quaternion)
            for i in 0..<3 { for j in 0..<3 { XCTAssertEqual(fromQuaternion[i][j], turn.matrix[i][j], accuracy: 1e-12) } }
            let turned = try gaussians.plyFields(orientation: orientation)
            let p = try turned.positions.floats()
            XCTAssertEqual(Array(p[0..<3]), front, "\(orientation) front")
            XCTAssertEqual(Array(p[3..<6]), up, "\(orientation) up")
            let r = turn.matrix
            let q0 = try native.rotations.floats(), q1 = try turned.rotations.floats()
            for g in 0..<3 {
                let before = rotationMatrix((0..<4).map { Double(q0[4 * g + $0]) })
                let after = rotationMatrix((0..<4).map { Double(q1[4 * g + $0]) })
                let expected = multiply(r, before)
                for i in 0..<3 { for j in 0..<3 { XCTAssertEqual(after[i][j], expected[i][j], accuracy: 1e-5) } }
            }
            XCTAssertEqual(try turned.opacity.floats(), try native.opacity.floats())
            XCTAssertEqual(try turned.scales.floats(), try native.scales.floats())
        }
    }
}
