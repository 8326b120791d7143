import Foundation
import Imaging
@testable import Models
import NN
import Fixtures
import Pipeline
import TorchShim
import XCTest
import Diagnostics

/// BiRefNet against the oracle fixtures (fixtures/birefnet/README.md), through the same handlers as
/// `gen3d selftest`. Tolerances (README, fp32): backbone/encoder atol 1e-4 rtol 1e-4, decoder intermediates
/// atol 2e-4, logits 1e-3, pred and float alphas 1e-4, uint8 alphas ±1, deform_conv2d unit cases 1e-5,
/// decoded and resized uint8 images exact.
final class BiRefNetTests: XCTestCase {
    func fixtureCase(_ stem: String) throws -> FixtureCase {
        let cases = try FixtureRunner().discover(BiRefNetFixturePaths.folder())
        guard let c = cases.first(where: { $0.stem == stem }) else {
            throw FixtureError.malformed(stem, "not discovered; found \(cases.map(\.stem))")
        }
        return c
    }

    @discardableResult
    func assertPasses(_ fixture: FixtureCase, file: StaticString = #filePath, line: UInt = #line) -> FixtureResult {
        let result = FixtureRunner().run(fixture)
        print("\(fixture.label) (\(fixture.className)) \(String(format: "%.2f", result.seconds)) s")
        for c in result.comparisons { print("    \(c)") }
        XCTAssertNil(result.error, "\(fixture.label): \(result.error ?? "")", file: file, line: line)
        XCTAssertFalse(result.comparisons.isEmpty, file: file, line: line)
        for c in result.comparisons where !c.passed { XCTFail("\(fixture.label): \(c)", file: file, line: line) }
        return result
    }

    func tinyWeights() throws -> SafeTensorsFile { try SafeTensorsFile(url: BiRefNetFixturePaths.url("tiny.safetensors")) }

    func tinyConfig() throws -> BiRefNetConfig { try BiRefNetConfig.load(BiRefNetFixturePaths.url("tiny_config.json")) }

    func tinyModel() throws -> BiRefNet { try BiRefNet(WeightLoader(tinyWeights(), device: .cpu, dtype: .float32), config: tinyConfig()) }

    // MARK: the fixtures

    /// birefnet.json: the tiny network at 256×256 and at 224×352 (odd PatchMerging in the half-scale pass),
    /// every intermediate of both io files.
    func testTinyNetworkAtBothSizes() throws {
        let result = assertPasses(try fixtureCase("birefnet"))
        let expected = try ["tiny_io.safetensors", "tiny_io_224x352.safetensors"].reduce(0) {
            $0 + (try SafeTensorsFile(url: BiRefNetFixturePaths.url($1)).keys.count - 1)
        }
        XCTAssertEqual(result.comparisons.count, expected, "every tensor but the input is compared")
        XCTAssertTrue(result.comparisons.contains { $0.name.hasSuffix("aspp_deforms.2.atrous_conv.offset_conv:out") })
    }

    func testDeformConvUnitCases() throws {
        let result = assertPasses(try fixtureCase("deform_conv2d_unit"))
        XCTAssertEqual(result.comparisons.count, 3)
    }

    /// Zero offsets and a unit mask reduce deform_conv2d to conv2d, for any stride, padding and dilation.
    /// Tolerance 5e-5 on outputs up to ~20: grid_sample's own unnormalisation ((g + 1)·W - 1) / 2 in float32
    /// moves integer sample points by ~1e-6 px (PyTorch alone shows 5.7e-6 on N(0,1) data); measured 2.4e-5 here.
    /// A geometry mistake (tap order, stride, dilation, padding) gives errors of order 1.
    func testDeformConvWithZeroOffsetsIsPlainConv() throws {
        let g = try Generator(seed: 7)
        for (k, stride, pad, dilation) in [(3, 1, 1, 1), (3, 2, 1, 1), (3, 1, 2, 2), (5, 2, 3, 1), (1, 1, 0, 1)] {
            let x = try Tensor.randn([2, 4, 13, 10], generator: g)
            let w = try Tensor.randn([6, 4, k, k], generator: g)
            let b = try Tensor.randn([6], generator: g)
            let expected = try F.conv2d(x, w, b, stride: [stride], padding: [pad], dilation: [dilation])
            let (ho, wo) = (expected.size(2), expected.size(3))
            let got = try DeformConv2d.apply(input: x, offset: Tensor.zeros([2, 2 * k * k, ho, wo]),
                                             mask: Tensor.ones([2, k * k, ho, wo]), weight: w, bias: b,
                                             stride: (stride, stride), padding: (pad, pad), dilation: (dilation, dilation))
            let c = try TensorComparison.compare("k\(k) s\(stride) p\(pad) d\(dilation)", got: got, expected: expected, atol: 5e-5)
            print(c)
            XCTAssertTrue(c.passed)
        }
    }

    /// PNG -> resize -> normalise -> model -> alpha by inference.py (float path) and by the HF card (Pillow
    /// bicubic of the 8-bit mask), and the RGBA of `removeBackground`.
    func testEndToEndPNGToAlpha() throws {
        let result = assertPasses(try fixtureCase("tiny_e2e"))
        XCTAssertEqual(Set(result.comparisons.map(\.name)), [
            "image_rgb_uint8_hwc", "resized_rgb_uint8_hwc", "input", "logits", "pred", "alpha_inference_py_float",
            "alpha_inference_py_uint8", "pred_uint8_model_size", "alpha_hf_card_uint8", "removeBackground alpha",
            "removeBackground rgb",
        ])
    }

    /// The alpha PNGs of the fixture equal what the remover produces (±1), by either recipe.
    func testAlphaPNGsMatchRemover() throws {
        let remover = try BiRefNetRemover(model: tinyModel(), options: BiRefNetRemoverOptions(inputWidth: 256, inputHeight: 256))
        let image = try ImageDecoder.decode(contentsOf: BiRefNetFixturePaths.url("tiny_synthetic_300x200.png"))
        let pred = try remover.prediction(remover.inputTensor(remover.resizedRGB(image)))
        for (file, method) in [("tiny_alpha_inference_py_300x200.png", BiRefNetMaskResize.bilinearFloat),
                               ("tiny_alpha_hf_card_300x200.png", .pillowBicubic)] {
            let expected = try ImageDecoder.decode(contentsOf: BiRefNetFixturePaths.url(file))
            let got = try remover.alpha(fromPrediction: pred, width: 300, height: 200, method: method)
            XCTAssertEqual(expected.channels, 1, file)
            XCTAssertEqual(got.width, expected.width)
            XCTAssertEqual(got.height, expected.height)
            let worst = zip(got.pixels, expected.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
            print("\(file): max difference \(worst) levels")
            XCTAssertLessThanOrEqual(worst, 1, file)
        }
    }

    /// The scanner finds this layout under any prefix when no case JSON lists the io files.
    func testScannerFindsEveryFileUnderAnyPrefix() throws {
        let source = try BiRefNetFixturePaths.folder()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("birefnet-scan-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let links = [
            "mini_config.json": "tiny_config.json", "mini.safetensors": "tiny.safetensors",
            "mini_io.safetensors": "tiny_io.safetensors", "mini_io_224x352.safetensors": "tiny_io_224x352.safetensors",
            "mini_e2e.safetensors": "tiny_e2e.safetensors", "deform_conv2d_unit.safetensors": "deform_conv2d_unit.safetensors",
            // The io/e2e metadata name the weights and the PNG by their original names.
            "tiny.safetensors": "tiny.safetensors", "tiny_synthetic_300x200.png": "tiny_synthetic_300x200.png",
        ]
        for (name, target) in links {
            try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent(name),
                                                       withDestinationURL: source.appendingPathComponent(target))
        }
        let cases = try FixtureRunner().discover(dir)
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: cases.map { ($0.stem, $0.className) }), [
            "mini_io": "BiRefNet", "mini_io_224x352": "BiRefNet", "mini_e2e": "BiRefNetE2E",
            "deform_conv2d_unit": "DeformConv2d",
        ])
        XCTAssertEqual(cases.first { $0.stem == "mini_io" }?.json["weights"] as? String, "tiny.safetensors")
        XCTAssertEqual(cases.first { $0.stem == "mini_e2e" }?.json["png"] as? String, "tiny_synthetic_300x200.png")
        for c in cases where c.className == "BiRefNet" { assertPasses(c) }
    }

    func testSharedFolderIsCoveredOnce() throws {
        let cases = try FixtureRunner().discover(BiRefNetFixturePaths.folder())
        XCTAssertEqual(cases.map(\.stem).sorted(), ["birefnet", "deform_conv2d_unit", "tiny_e2e"])
    }

    // MARK: loading

    func manifestURL() throws -> URL { try BiRefNetFixturePaths.url("manifest_BiRefNet_general.json") }

    /// Every key and shape of the full general model (754 keys) is accepted; widths come from the shapes.
    func testLoaderAcceptsFullManifest() throws {
        let manifest = try ManifestWeights(url: manifestURL())
        XCTAssertEqual(manifest.keys.count, 754)
        let model = try BiRefNet(WeightLoader(manifest, device: .cpu, dtype: .float32))
        XCTAssertEqual(model.backbone.embedDim, 192)
        XCTAssertEqual(model.backbone.windowSize, 12)
        XCTAssertEqual(model.backbone.depths, [2, 2, 18, 2])
        XCTAssertEqual(model.backbone.heads, [6, 12, 24, 48])
        XCTAssertEqual(model.backbone.stageChannels, [192, 384, 768, 1536])
        XCTAssertEqual(model.decoder.blocks.map(\.outChannels), [1536, 768, 384, 192])
        XCTAssertEqual(model.decoder.inputBlocks.map(\.outChannels), [384, 384, 192, 96, 48])
        XCTAssertEqual(model.decoder.blocks[0].attention.branches.map { $0.conv.kernel }, [1, 1, 3, 7])
        XCTAssertEqual(model.decoder.blocks[0].attention.branches[0].conv.outChannels, 256)
        print(String(format: "Swin-L backbone at 1024² + 512²: %.1f GFLOP",
                     (model.backbone.flops(height: 1024, width: 1024) + model.backbone.flops(height: 512, width: 512)) / 1e9))
    }

    func manifestInfos() throws -> [String: TensorInfo] {
        let manifest = try ManifestWeights(url: manifestURL())
        return Dictionary(uniqueKeysWithValues: manifest.keys.map { ($0, manifest.info($0)!) })
    }

    func testMissingKeyIsNamed() throws {
        for key in ["decoder.decoder_block2.dec_att.aspp_deforms.1.atrous_conv.offset_conv.bias",
                    "bb.layers.2.blocks.17.mlp.fc2.weight", "squeeze_module.0.bn_out.running_var",
                    "decoder.ipt_blk3.conv_out.weight", "bb.norm3.bias"] {
            var infos = try manifestInfos()
            infos[key] = nil
            XCTAssertThrowsError(try BiRefNet(WeightLoader(ManifestWeights(infos)))) { error in
                guard case WeightError.missing(let named, _) = error else { return XCTFail("\(key): \(error)") }
                XCTAssertEqual(named, key)
                XCTAssertTrue("\(error)".contains(key))
            }
        }
    }

    func testMisshapenKeyIsNamed() throws {
        let altered: [String: [Int]] = [
            "bb.layers.2.blocks.5.attn.qkv.weight": [2304, 767],
            "bb.layers.1.blocks.0.attn.relative_position_bias_table": [529, 11],
            "bb.layers.0.blocks.1.attn.relative_position_index": [144, 143],
            "squeeze_module.0.conv_in.weight": [64, 5759, 3, 3],
            "decoder.lateral_block3.conv.weight": [768, 767, 1, 1],
            "decoder.decoder_block1.dec_att.aspp_deforms.2.atrous_conv.modulator_conv.weight": [48, 64, 7, 7],
            "decoder.conv_out1.0.weight": [1, 239, 1, 1],
            "decoder.gdt_convs_attn_3.0.weight": [2, 16, 1, 1],
        ]
        for (key, shape) in altered {
            var infos = try manifestInfos()
            infos[key] = TensorInfo(dtype: infos[key]!.dtype, shape: shape)
            XCTAssertThrowsError(try BiRefNet(WeightLoader(ManifestWeights(infos)))) { error in
                guard case WeightError.shapeMismatch(let named, _, let found) = error else { return XCTFail("\(key): \(error)") }
                XCTAssertEqual(named, key)
                XCTAssertEqual(found, shape)
            }
        }
    }

    func testUnexpectedKeyIsNamed() throws {
        var infos = try manifestInfos()
        infos["decoder.refiner.conv.weight"] = TensorInfo(dtype: .float32, shape: [1])
        XCTAssertThrowsError(try BiRefNet(WeightLoader(ManifestWeights(infos)))) { error in
            XCTAssertEqual(error as? WeightError, .unexpected(["decoder.refiner.conv.weight"]))
        }
    }

    /// A real checkpoint (fp16 weights in a TensorDictionary) missing one key is rejected by name too.
    func testCheckpointMissingKeyIsNamed() throws {
        let file = try tinyWeights()
        var tensors: [String: Tensor] = [:]
        for k in file.keys { tensors[k] = try file.tensor(k) }
        tensors["decoder.gdt_convs_4.0.bias"] = nil
        XCTAssertThrowsError(try BiRefNet(WeightLoader(TensorDictionary(tensors)), config: tinyConfig())) { error in
            XCTAssertEqual(error as? WeightError, .missing("decoder.gdt_convs_4.0.bias", expected: [16]))
        }
    }

    /// A Hugging Face style folder: fp16 `model.safetensors` (as the published checkpoint is said to be) and a
    /// config.json without architecture switches, loaded in float32. The only difference from the oracle is
    /// the fp16 rounding of the weights, which moves this random-weight network's pred by 2.6e-2 (bound 6e-2).
    func testLoadsHuggingFaceFolderWithHalfWeights() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("birefnet-hf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = try tinyWeights()
        var half: [String: Tensor] = [:]
        for k in file.keys {
            let t = try file.tensor(k)
            half[k] = t.dtype == .float32 ? try t.to(.float16) : t
        }
        try SafeTensors.write(half, metadata: ["format": "pt"], to: dir.appendingPathComponent("model.safetensors"))
        try Data(#"{"architectures": ["BiRefNet"], "bb_pretrained": false}"#.utf8).write(to: dir.appendingPathComponent("config.json"))

        let model = try BiRefNet.load(dir, device: .cpu, dtype: .float32)
        XCTAssertEqual(model.dtype, .float32)
        XCTAssertEqual(model.config, BiRefNetConfig())
        let io = try SafeTensorsFile(url: BiRefNetFixturePaths.url("tiny_io.safetensors"))
        let pred = try model.predict(io.tensor("input"))
        let c = try TensorComparison.compare("pred (fp16 weights)", got: pred, expected: io.tensor("pred"), atol: 0.06)
        print(c)
        XCTAssertTrue(c.passed)
        XCTAssertThrowsError(try BiRefNet.load(dir.appendingPathComponent("absent")))
    }

    func testRelativePositionIndexMatchesCheckpointBuffer() throws {
        let stored = try tinyWeights().tensor("bb.layers.0.blocks.0.attn.relative_position_index").toArray(Int64.self)
        XCTAssertEqual(WindowAttention.relativePositionIndex(windowSize: 7), stored)
    }

    // MARK: config

    func testConfigDecoding() throws {
        // Hugging Face's config.json carries no architecture switches: the general model's defaults apply.
        let hf = #"{"_name_or_path": "ZhengPeng7/BiRefNet", "architectures": ["BiRefNet"], "bb_pretrained": false}"#
        let config = try JSONDecoder().decode(BiRefNetConfig.self, from: Data(hf.utf8))
        XCTAssertEqual(config, BiRefNetConfig())
        XCTAssertEqual(config.inputSize.width, 1024)
        let tiny = try tinyConfig()
        XCTAssertEqual(tiny.multiScaleInput, "cat")
        XCTAssertEqual(tiny.contextCount, 3)
        let manifest = try BiRefNetConfig.load(manifestURL())
        XCTAssertEqual(manifest.size, [1024, 1024])
        XCTAssertEqual(manifest.backbone, "swin_v1_l")

        var add = BiRefNetConfig()
        add.multiScaleInput = "add"
        XCTAssertThrowsError(try BiRefNet(WeightLoader(tinyWeights()), config: add)) { error in
            XCTAssertEqual(error as? BiRefNetError, .unsupportedConfig("mul_scl_ipt 'add' (only 'cat')"))
        }
        XCTAssertThrowsError(try JSONDecoder().decode(BiRefNetConfig.self, from: Data(#"{"cxt_num": "three"}"#.utf8)))
    }

    // MARK: inputs and the skip rule

    func testBadInputsGiveErrors() throws {
        let model = try tinyModel()
        XCTAssertThrowsError(try model.forward(Tensor.zeros([1, 3, 250, 256]))) { error in
            XCTAssertEqual(error as? BiRefNetError, .badInput("input size 250x256 must be positive multiples of 32"))
        }
        XCTAssertThrowsError(try model.forward(Tensor.zeros([1, 4, 256, 256])))
        XCTAssertThrowsError(try model.forward(Tensor.zeros([3, 256, 256])))
        XCTAssertThrowsError(try DeformConv2d.apply(input: Tensor.zeros([1, 4, 9, 11]), offset: Tensor.zeros([1, 17, 9, 11]),
                                                    mask: nil, weight: Tensor.zeros([5, 4, 3, 3]), padding: (1, 1))) { error in
            XCTAssertTrue("\(error)".contains("offset [1, 17, 9, 11]"), "\(error)")
        }
        XCTAssertThrowsError(try BiRefNetRemover(model: model, options: BiRefNetRemoverOptions(inputWidth: 100, inputHeight: 256)))
    }

    func testSkipRuleForImagesWithAlpha() throws {
        let remover = try BiRefNetRemover(model: tinyModel(), options: BiRefNetRemoverOptions(inputWidth: 64, inputHeight: 64))
        var pixels = [UInt8](repeating: 0, count: 40 * 30 * 4)
        for i in 0..<(40 * 30) {
            pixels[4 * i] = UInt8(i % 251); pixels[4 * i + 1] = UInt8(i % 13 * 19); pixels[4 * i + 2] = 90
            pixels[4 * i + 3] = i % 40 < 20 ? 255 : 0
        }
        let masked = try Image(width: 40, height: 30, channels: 4, pixels: pixels)
        XCTAssertTrue(BiRefNetRemover.hasMeaningfulAlpha(masked))
        XCTAssertEqual(try remover.removeBackground(masked), masked, "an existing mask is kept")

        for fill in [UInt8(255), 0, 128] {
            var flat = pixels
            for i in 0..<(40 * 30) { flat[4 * i + 3] = fill }
            let image = try Image(width: 40, height: 30, channels: 4, pixels: flat)
            XCTAssertFalse(BiRefNetRemover.hasMeaningfulAlpha(image), "uniform alpha \(fill) is no mask")
            let out = try remover.removeBackground(image)
            let expectedAlpha = try remover.alphaMask(for: image).pixels
            XCTAssertEqual(stride(from: 3, to: out.pixels.count, by: 4).map { out.pixels[$0] }, expectedAlpha)
            XCTAssertEqual(out.toRGB(), image.toRGB())
        }

        let always = try BiRefNetRemover(model: remover.model, options: BiRefNetRemoverOptions(
            inputWidth: 64, inputHeight: 64, keepExistingAlpha: false))
        let resegmented = try always.removeBackground(masked)
        XCTAssertEqual(stride(from: 3, to: resegmented.pixels.count, by: 4).map { resegmented.pixels[$0] },
                       try always.alphaMask(for: masked).pixels)
        XCTAssertFalse(BiRefNetRemover.hasMeaningfulAlpha(masked.toRGB()))
    }

    /// The batched cut-out (the MVDream route's four views) gives each image what the one-by-one call gives: the same
    /// RGB, an alpha within one level (batched kernels may round differently), images with a mask kept as they are.
    func testBatchedRemovalMatchesOneByOne() throws {
        let remover = try BiRefNetRemover(model: tinyModel(), options: BiRefNetRemoverOptions(inputWidth: 64, inputHeight: 64))
        func image(_ w: Int, _ h: Int, seed: Int, alpha: Bool = false) throws -> Image {
            var px = [UInt8](repeating: 0, count: w * h * 4)
            for i in 0..<(w * h) {
                px[4 * i] = UInt8((i * 7 + seed) % 256); px[4 * i + 1] = UInt8((i * 13 + 3 * seed) % 256)
                px[4 * i + 2] = UInt8((i / w * 5 + seed) % 256); px[4 * i + 3] = alpha && i % w < w / 2 ? 0 : 255
            }
            return try Image(width: w, height: h, channels: 4, pixels: px)
        }
        let images = [try image(48, 32, seed: 1), try image(40, 40, seed: 2), try image(30, 50, seed: 3, alpha: true),
                      try image(64, 64, seed: 4).toRGB()]
        let batched = try remover.removeBackground(batch: images)
        XCTAssertEqual(batched.count, images.count)
        for (one, many) in zip(try images.map { try remover.removeBackground($0) }, batched) {
            XCTAssertEqual(many.width, one.width)
            XCTAssertEqual(many.toRGB(), one.toRGB())
            let a = stride(from: 3, to: one.pixels.count, by: 4).map { Int(one.pixels[$0]) }
            let b = stride(from: 3, to: many.pixels.count, by: 4).map { Int(many.pixels[$0]) }
            XCTAssertLessThanOrEqual(zip(a, b).map { abs($0 - $1) }.max() ?? 0, 1)
        }
        XCTAssertEqual(batched[2], images[2], "an existing mask is kept")
        // Chunks of two give what one batch of three gives (the 24 GB plan uses chunks of one).
        let chunked = try BiRefNetRemover(model: remover.model, options: BiRefNetRemoverOptions(inputWidth: 64, inputHeight: 64,
                                                                                             maxBatch: 2))
        for (a, b) in zip(try chunked.removeBackground(batch: images), batched) {
            XCTAssertEqual(a.toRGB(), b.toRGB())
            let x = stride(from: 3, to: a.pixels.count, by: 4).map { Int(a.pixels[$0]) }
            let y = stride(from: 3, to: b.pixels.count, by: 4).map { Int(b.pixels[$0]) }
            XCTAssertLessThanOrEqual(zip(x, y).map { abs($0 - $1) }.max() ?? 0, 1)
        }
    }

    /// Half precision runs end to end (weights cast by the loader, deformable sampling in float32) and stays
    /// near the fp32 oracle. Bounds are ~2.5× what this CPU measured (fp16: logits 0.18, pred 0.02; bf16: logits
    /// 0.67, pred 0.12, on logits of magnitude ~19 from random weights); the GPU run is the lead's.
    func testHalfPrecisionForward() throws {
        let io = try SafeTensorsFile(url: BiRefNetFixturePaths.url("tiny_io.safetensors"))
        for (dtype, logitsBound, predBound) in [(DType.float16, 0.5, 0.05), (.bfloat16, 1.7, 0.3)] {
            let model = try BiRefNet(WeightLoader(tinyWeights(), device: .cpu, dtype: dtype), config: tinyConfig())
            XCTAssertEqual(model.dtype, dtype)
            let logits = try model.forward(io.tensor("input"))
            XCTAssertEqual(logits.dtype, dtype)
            let l = try TensorComparison.compare("logits \(dtype)", got: logits, expected: io.tensor("logits"), atol: logitsBound)
            let p = try TensorComparison.compare("pred \(dtype)", got: logits.sigmoid(), expected: io.tensor("pred"), atol: predBound)
            print(l, p, separator: "\n")
            XCTAssertTrue(l.passed && p.passed)
        }
    }

    /// The remover plugs into the pipeline (`BackgroundRemovalStage`) and into TRELLIS preprocessing
    /// (`BackgroundRemover`, the rembg role), giving the same mask either way.
    func testRemoverConformsToPipelineProtocols() throws {
        let remover = try BiRefNetRemover(model: tinyModel(), options: BiRefNetRemoverOptions(inputWidth: 256, inputHeight: 256))
        let image = try ImageDecoder.decode(contentsOf: BiRefNetFixturePaths.url("tiny_synthetic_300x200.png"))
        let stage: BackgroundRemovalStage = remover
        XCTAssertEqual(stage.name, "BiRefNet")
        let rgba = try stage.removeBackground(image)
        XCTAssertEqual(rgba.channels, 4)
        let matte: BackgroundRemover = remover
        let mask = try matte.alphaMask(rgb: image.toRGB().pixels, width: image.width, height: image.height)
        XCTAssertEqual(mask, stride(from: 3, to: rgba.pixels.count, by: 4).map { rgba.pixels[$0] })
        XCTAssertThrowsError(try matte.alphaMask(rgb: [1, 2, 3], width: 2, height: 2))
    }

    // MARK: benchmark

    /// The benchmark runs (CPU, tiny manifest written from the tiny checkpoint, small input): rows and
    /// consistent FLOP counts. Timings are not asserted.
    func testBenchmarkRunsWithTinyManifest() throws {
        let file = try tinyWeights()
        let entries: [[String: Any]] = file.keys.map { k in
            let info = file.info(k)!
            return ["key": k, "shape": info.shape, "dtype": info.dtype == .int64 ? "int64" : "float32"]
        }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("birefnet-tiny-manifest-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: ["state_dict": entries]).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let rows = try BiRefNetBenchmark.run(device: .cpu, dtype: .float32, manifestPath: url.path, size: 64, warmup: 0, iterations: 1)
        rows.forEach { print($0) }
        XCTAssertEqual(rows.map(\.name), ["backbone full-res", "backbone half-res", "squeeze + decoder", "forward + sigmoid",
                                          "backbone throughput"])
        XCTAssertTrue(rows.allSatisfy { $0.milliseconds > 0 })
        XCTAssertTrue(rows[3].notes.contains("output finite"), rows[3].notes)
    }

    func testBackboneFlopCountByHand() throws {
        let model = try tinyModel()
        // Tiny Swin on 32×32: tokens 8×8 (padded 14×14 for window 7), 4×4 (7×7), 2×2 (7×7), 1×1 (7×7).
        var expected = 2.0 * 64 * 16 * 48
        let stages: [(tokens: Double, padded: Double, c: Double)] = [(64, 196, 16), (16, 49, 32), (4, 49, 64), (1, 49, 128)]
        for (i, s) in stages.enumerated() {
            let block = 2 * s.padded * s.c * 3 * s.c + 4 * s.padded * 49 * s.c + 2 * s.padded * s.c * s.c + 4 * s.tokens * s.c * 4 * s.c
            expected += 2 * block
            if i < 3 { expected += 2 * (s.tokens / 4) * 4 * s.c * 2 * s.c }
        }
        XCTAssertEqual(model.backbone.flops(height: 32, width: 32), expected, accuracy: 1e-6)
    }
}
