import Foundation
import XCTest
import Diagnostics
import Models
import NN
import Fixtures
import TorchShim

/// Parity of the dense TRELLIS networks and DINOv2 with the oracle fixtures (fixtures/trellis/README.md).
/// Tolerances (README): single networks atol 1e-4 + rtol 1e-4; sampler outputs atol 1e-3; occupancy coordinates exact.
final class TrellisDenseTests: XCTestCase {
    func fixtureCase(_ stem: String) throws -> FixtureCase {
        try FixtureChecks.fixtureCase(in: TrellisDenseFixturePaths.trellis(), stem)
    }

    @discardableResult
    func runRegistered(_ stem: String, expecting names: [String]) throws -> FixtureResult {
        try FixtureChecks.runRegistered(in: TrellisDenseFixturePaths.trellis(), stem, expecting: names)
    }

    func testSparseStructureFlowFixture() throws {
        try runRegistered("ss_flow", expecting: ["output", "b2.output", "inter.t_emb", "inter.block0", "inter.block1"])
    }

    func testSparseStructureDecoderFixture() throws {
        try runRegistered("ss_dec", expecting: ["output"])
    }

    func testDINOv2Fixture() throws {
        try runRegistered("dinov2_tiny", expecting: ["pixel_values", "embeddings", "hidden_states_last",
                                                     "last_hidden_state", "cond"])
    }
}

extension TrellisDenseTests {
    /// The SS stage of the tiny pipeline run: schedule (exact), every model call, every step, samples (atol 1e-3),
    /// occupancy logits (atol 1e-3) and coordinates (exact).
    func testSparseStructureSamplerMatchesPipeline() throws {
        let comparisons = try TrellisDenseFixtures.runSparseStructureStage(try fixtureCase("pipeline"))
        comparisons.forEach { print("  \($0)") }
        XCTAssertTrue(comparisons.allSatisfy(\.passed))
        let names = Set(comparisons.map(\.name))
        for j in 0..<9 { XCTAssertTrue(names.contains("ss.call\(j).v"), "call \(j) missing") }
        for i in 0..<5 { XCTAssertTrue(names.contains("ss.step\(i).pred_x0"), "step \(i) missing") }
        for name in ["ss.t_seq", "ss.samples", "occupancy_logits", "coords"] { XCTAssertTrue(names.contains(name)) }
    }

    func testScheduleMatchesReadme() {
        let t = FlowEulerGuidanceIntervalSampler.timeSchedule(steps: 25, rescaleT: 3)
        let params = FlowEulerGuidanceIntervalSampler.Params()
        XCTAssertEqual(t.count, 26)
        XCTAssertEqual(t[1], 0.9863, accuracy: 5e-5)
        XCTAssertEqual(t[18], 0.5385, accuracy: 5e-5)
        XCTAssertEqual(t.last, 0)
        // README: 19 guided steps for the released 25-step schedule.
        XCTAssertEqual(t.dropLast().filter { FlowEulerGuidanceIntervalSampler.isGuided($0, params: params) }.count, 19)
    }
}

// MARK: - checkpoint loading

extension TrellisDenseTests {
    func manifest(_ name: String) throws -> (args: [String: Any], weights: ManifestWeights) {
        let url = try TrellisDenseFixturePaths.trellis().appendingPathComponent("manifest_\(name).json")
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        return (try XCTUnwrap(json["args"] as? [String: Any]), try ManifestWeights(url: url))
    }

    func testFullSizeSparseStructureFlowManifestLoads() throws {
        let (args, weights) = try manifest("ss_flow_img_dit_L_16l8_fp16")
        let loader = WeightLoader(weights)
        let model = try SparseStructureFlowModel(args: args, weights: loader)
        try loader.checkAllUsed()
        XCTAssertEqual(model.blocks.count, 24)
        XCTAssertEqual(model.config.heads, 16)
        XCTAssertEqual(model.dtype, .float16)     // blocks stored fp16, io layers fp32
        XCTAssertEqual(model.inputLayer.weight.dtype, .float32)
        XCTAssertEqual(weights.keys.count, 489)
    }

    func testFullSizeSparseStructureDecoderManifestLoads() throws {
        let (args, weights) = try manifest("ss_dec_conv3d_16l8_fp16")
        let loader = WeightLoader(weights)
        let model = try SparseStructureDecoder(args: args, weights: loader)
        try loader.checkAllUsed()
        XCTAssertEqual(model.dtype, .float16)
        XCTAssertEqual(weights.keys.count, 74)
    }

    /// The tiny checkpoint of `stem` as an editable dictionary.
    func tinyWeights(_ file: String) throws -> TensorDictionary {
        let f = try SafeTensorsFile(url: try TrellisDenseFixturePaths.trellis().appendingPathComponent(file))
        var all: [String: Tensor] = [:]
        for k in f.keys { all[k] = try f.tensor(k) }
        return TensorDictionary(all)
    }

    /// Building with `key` removed, or with `key` reshaped to `badShape`, fails naming that key; an extra key is
    /// reported by checkAllUsed.
    func assertRejectsBadCheckpoint(_ file: String, key: String, badShape: [Int],
                                    build: (WeightLoader) throws -> Void) throws {
        let missing = try tinyWeights(file)
        missing[key] = nil
        XCTAssertThrowsError(try build(WeightLoader(missing))) { error in
            guard case .missing(let k, _)? = error as? WeightError else {
                return XCTFail("expected a missing-key error, got \(error)")
            }
            XCTAssertEqual(k, key)
            XCTAssertTrue("\(error)".contains(key), "\(error)")
        }
        let misshapen = try tinyWeights(file)
        misshapen[key] = try Tensor.zeros(badShape)
        XCTAssertThrowsError(try build(WeightLoader(misshapen))) { error in
            guard case .shapeMismatch(let k, _, let found)? = error as? WeightError else {
                return XCTFail("expected a shape mismatch, got \(error)")
            }
            XCTAssertEqual(k, key)
            XCTAssertEqual(found, badShape)
        }
        let extra = try tinyWeights(file)
        extra["blocks.99.unexpected.weight"] = try Tensor.zeros([1])
        let loader = WeightLoader(extra)
        try build(loader)
        XCTAssertThrowsError(try loader.checkAllUsed()) { error in
            XCTAssertTrue("\(error)".contains("blocks.99.unexpected.weight"), "\(error)")
        }
    }

    func testSparseStructureFlowRejectsBadCheckpoint() throws {
        let args = try fixtureCase("ss_flow").args
        try assertRejectsBadCheckpoint("ss_flow.safetensors", key: "blocks.1.self_attn.q_rms_norm.gamma",
                                       badShape: [4, 15]) { _ = try SparseStructureFlowModel(args: args, weights: $0) }
        try assertRejectsBadCheckpoint("ss_flow.safetensors", key: "pos_emb", badShape: [4095, 64]) {
            _ = try SparseStructureFlowModel(args: args, weights: $0)
        }
    }

    func testSparseStructureDecoderRejectsBadCheckpoint() throws {
        let args = try fixtureCase("ss_dec").args
        try assertRejectsBadCheckpoint("ss_dec.safetensors", key: "blocks.3.conv.weight", badShape: [64, 16, 3, 3, 2]) {
            _ = try SparseStructureDecoder(args: args, weights: $0)
        }
    }

    func testDINOv2RejectsBadCheckpoint() throws {
        let folder = try TrellisDenseFixturePaths.trellis().appendingPathComponent("dinov2_tiny")
        let config = try JSONDecoder().decode(DINOv2.Config.self,
                                              from: Data(contentsOf: folder.appendingPathComponent("config.json")))
        try assertRejectsBadCheckpoint("dinov2_tiny/model.safetensors", key: "encoder.layer.1.attention.attention.key.weight",
                                       badShape: [32, 31]) { _ = try DINOv2(config: config, weights: $0) }
        try assertRejectsBadCheckpoint("dinov2_tiny/model.safetensors", key: "embeddings.register_tokens",
                                       badShape: [1, 3, 32]) { _ = try DINOv2(config: config, weights: $0) }
    }

    func testBadConfigsAreRejectedClearly() throws {
        var args = try fixtureCase("ss_flow").args
        args["pe_mode"] = "rope"
        let weights = WeightLoader(try tinyWeights("ss_flow.safetensors"))
        XCTAssertThrowsError(try SparseStructureFlowModel(args: args, weights: weights)) {
            XCTAssertTrue("\($0)".contains("pe_mode"), "\($0)")
        }
        var config = DINOv2.Config(hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 2, imageSize: 56,
                                   numRegisterTokens: 4)
        config.useSwigluFfn = true
        XCTAssertThrowsError(try DINOv2(config: config, weights: WeightLoader(try tinyWeights("dinov2_tiny/model.safetensors")))) {
            XCTAssertTrue("\($0)".contains("swiglu"), "\($0)")
        }
    }

    func testBadInputsAreRejectedClearly() throws {
        let c = try fixtureCase("ss_flow")
        let model = try SparseStructureFlowModel(args: c.args, weights: WeightLoader(try c.weights()))
        XCTAssertThrowsError(try model(Tensor.zeros([1, 8, 8, 8, 8]), time: 500, cond: Tensor.zeros([1, 21, 32]))) {
            XCTAssertTrue("\($0)".contains("x has shape"), "\($0)")
        }
        XCTAssertThrowsError(try model(Tensor.zeros([1, 8, 16, 16, 16]), time: 500, cond: Tensor.zeros([1, 21, 31]))) {
            XCTAssertTrue("\($0)".contains("cond has shape"), "\($0)")
        }
    }
}

// MARK: - preprocessing (oracle: PIL 13 + the official preprocess_image, scripts/trellis_dense_oracles.py)

extension TrellisDenseTests {
    func resource(_ name: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(url: TrellisDenseFixturePaths.resources().appendingPathComponent(name))
    }

    func pixels(_ t: Tensor) throws -> TrellisPreprocess.Pixels {
        try TrellisPreprocess.Pixels(bytes: t.toArray(UInt8.self), width: t.size(1), height: t.size(0), channels: t.size(2))
    }

    /// Number of bytes that differ and the largest difference.
    func byteDiff(_ a: [UInt8], _ b: [UInt8]) -> (count: Int, max: Int) {
        zip(a, b).reduce((0, 0)) { acc, p in
            let d = abs(Int(p.0) - Int(p.1))
            return (acc.0 + (d > 0 ? 1 : 0), max(acc.1, d))
        }
    }

    func testLanczosMatchesPIL() throws {
        let file = try resource("lanczos.safetensors")
        let names = Set(file.keys.map { String($0.split(separator: ".")[0]) }).sorted()
        XCTAssertGreaterThanOrEqual(names.count, 7)
        for name in names {
            let input = try pixels(file.tensor("\(name).input"))
            let expected = try file.tensor("\(name).output")
            let (w, h) = (expected.size(1), expected.size(0))
            let got = input.channels == 4 ? try TrellisPreprocess.Lanczos.resizeRGBA(input, width: w, height: h)
                : try TrellisPreprocess.Lanczos.resize(input, width: w, height: h)
            let diff = byteDiff(got.bytes, try expected.toArray(UInt8.self))
            print("  lanczos \(name): \(input.width)x\(input.height) -> \(w)x\(h), \(diff.count) bytes differ (max \(diff.max))")
            XCTAssertEqual(got.bytes.count, expected.count)
            XCTAssertEqual(diff.count, 0, "\(name): PIL's bytes not reproduced")
        }
    }

    func fnv1a(_ bytes: [UInt8]) -> Int64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return Int64(bitPattern: h)
    }

    func testPreprocessMatchesOfficial() throws {
        let file = try resource("preprocess.safetensors")
        var checked = 0
        for key in file.keys.sorted() where key.hasSuffix(".output") || key.hasSuffix(".fnv1a") {
            let parts = key.split(separator: ".")
            guard parts.count == 3, parts[1].hasPrefix("s"), let size = Int(parts[1].dropFirst()) else { continue }
            let name = String(parts[0])
            let got = try TrellisPreprocess.preprocessImage(pixels(file.tensor("\(name).input")), size: size)
            XCTAssertEqual([got.width, got.height, got.channels], [size, size, 3])
            if key.hasSuffix(".output") {
                let diff = byteDiff(got.bytes, try file.tensor(key).toArray(UInt8.self))
                print("  preprocess \(name) -> \(size): \(diff.count) bytes differ (max \(diff.max))")
                XCTAssertEqual(diff.count, 0, key)
            } else {
                let prefix = "\(name).s\(size)"
                var rows = [Int64](repeating: 0, count: size), cols = [Int64](repeating: 0, count: size)
                for y in 0..<size {
                    for x in 0..<size {
                        for c in 0..<3 {
                            rows[y] += Int64(got.bytes[(y * size + x) * 3 + c])
                            cols[x] += Int64(got.bytes[(y * size + x) * 3 + c])
                        }
                    }
                }
                XCTAssertEqual(rows, try file.tensor("\(prefix).row_sums").toArray(Int64.self), "\(prefix) row sums")
                XCTAssertEqual(cols, try file.tensor("\(prefix).col_sums").toArray(Int64.self), "\(prefix) column sums")
                XCTAssertEqual(fnv1a(got.bytes), try file.tensor(key).toArray(Int64.self)[0], "\(prefix) hash")
                print("  preprocess \(name) -> \(size): hash \(fnv1a(got.bytes) == (try file.tensor(key).toArray(Int64.self)[0]) ? "equal" : "differs")")
            }
            checked += 1
        }
        XCTAssertEqual(checked, 6)
    }

    func testPixelValuesMatchTorchNormalize() throws {
        let file = try resource("preprocess.safetensors")
        let got = try TrellisPreprocess.pixelValues(pixels(file.tensor("normalize.input")))
        // Exact: the official float32 arithmetic ((x / 255 - mean) / std), each op correctly rounded, no reduction,
        // so every CPU path gives the same bits (measured 0 with 1 or 2 threads, MKL AVX2 and SSE4_2).
        let c = try TensorComparison.compare("normalize", got: got, expected: file.tensor("normalize.output"), atol: 0)
        print("  \(c)")
        XCTAssertTrue(c.passed)
    }

    struct FakeRemover: BackgroundRemover {
        let seen: (Int, Int) -> Void
        func alphaMask(rgb: [UInt8], width: Int, height: Int) throws -> [UInt8] {
            seen(width, height)
            // Foreground: a centred rectangle.
            return (0..<(width * height)).map { i in
                let (x, y) = (i % width, i / width)
                return abs(x - width / 2) < width / 4 && abs(y - height / 2) < height / 4 ? 255 : 0
            }
        }
    }

    func testBackgroundRemovalHook() throws {
        let rgb = try TrellisPreprocess.Pixels(bytes: [UInt8](repeating: 200, count: 1100 * 60 * 3), width: 1100,
                                               height: 60, channels: 3)
        XCTAssertThrowsError(try TrellisPreprocess.preprocessImage(rgb)) {
            XCTAssertEqual("\($0)", TrellisPreprocess.backgroundRemovalMissing)
        }
        let opaque = try TrellisPreprocess.Pixels(bytes: [UInt8](repeating: 255, count: 8 * 8 * 4), width: 8, height: 8,
                                                  channels: 4)
        XCTAssertThrowsError(try TrellisPreprocess.preprocessImage(opaque)) {
            XCTAssertEqual("\($0)", "an RGBA image or a mask is required until background removal lands")
        }
        var seen: (Int, Int)?
        let out = try TrellisPreprocess.preprocessImage(rgb, remover: FakeRemover { seen = ($0, $1) }, size: 32)
        XCTAssertEqual(seen?.0, 1024)    // long side reduced to 1024 first, as the reference does
        XCTAssertEqual(seen?.1, Int(60 * (1024.0 / 1100)))
        XCTAssertEqual([out.width, out.height], [32, 32])
        let empty = try TrellisPreprocess.Pixels(bytes: [UInt8](repeating: 0, count: 8 * 8 * 4), width: 8, height: 8,
                                                 channels: 4)
        XCTAssertThrowsError(try TrellisPreprocess.preprocessImage(empty)) { XCTAssertTrue("\($0)".contains("alpha > 0.8")) }
        XCTAssertThrowsError(try TrellisPreprocess.Pixels(bytes: [1, 2, 3], width: 2, height: 2, channels: 4))
    }
}

// MARK: - DINOv2 beyond the fixture (oracle: transformers 5.24, scripts/trellis_dense_oracles.py)

extension TrellisDenseTests {
    /// The oracle's outputs were computed in float64 and stored as float32 (|x| <= 7.6). Measured max abs error, fp32
    /// oracle and this code alike, with default threads, OMP_NUM_THREADS=1, MKL AVX2 (1 thread) and SSE4_2: <= 3.6e-6
    /// (plain_84x70.hidden_states_last); 1e-5 is ~3x that.
    static let dinov2Tolerance = 1e-5

    func checkDINOv2(_ model: DINOv2, case name: String, in file: SafeTensorsFile) throws {
        let out = try model(file.tensor("\(name).pixel_values"))
        for (field, got) in [("embeddings", out.embeddings), ("hidden_states_last", out.hiddenStatesLast),
                             ("last_hidden_state", out.lastHiddenState)] {
            let c = try TensorComparison.compare("\(name).\(field)", got: got, expected: file.tensor("\(name).\(field)"),
                                                 atol: Self.dinov2Tolerance)
            print("  \(c)")
            XCTAssertTrue(c.passed, c.description)
        }
    }

    /// Plain `Dinov2Model` (no registers; bicubic position interpolation without antialias) at its size and 84x70.
    func testDINOv2PlainModel() throws {
        let model = try DINOv2.load(folder: TrellisDenseFixturePaths.resources().appendingPathComponent("dinov2_plain"))
        XCTAssertFalse(model.config.withRegisters)
        let file = try resource("dinov2.safetensors")
        try checkDINOv2(model, case: "plain_56", in: file)
        try checkDINOv2(model, case: "plain_84x70", in: file)
        XCTAssertEqual(try model(file.tensor("plain_84x70.pixel_values")).pooled.shape, [1, 32])
    }

    /// The fixture's with-registers model at inputs whose patch grid differs (antialiased bicubic interpolation).
    func testDINOv2RegistersInterpolation() throws {
        let model = try DINOv2.load(folder: TrellisDenseFixturePaths.trellis().appendingPathComponent("dinov2_tiny"))
        XCTAssertTrue(model.config.withRegisters)
        let file = try resource("dinov2.safetensors")
        try checkDINOv2(model, case: "registers_84x70", in: file)
        try checkDINOv2(model, case: "registers_70", in: file)
    }
}

// MARK: - benchmark plumbing (timings are not asserted)

extension TrellisDenseTests {
    /// The programmatic DINOv2 key list equals the HF checkpoint's (tiny fixture: same structure as the large one).
    func testDINOv2KeyListMatchesCheckpoint() throws {
        let folder = try TrellisDenseFixturePaths.trellis().appendingPathComponent("dinov2_tiny")
        let config = try JSONDecoder().decode(DINOv2.Config.self,
                                              from: Data(contentsOf: folder.appendingPathComponent("config.json")))
        let file = try SafeTensorsFile(url: folder.appendingPathComponent("model.safetensors"))
        let built = TrellisDenseBenchmark.dinov2TensorInfos(config)
        XCTAssertEqual(Set(built.keys), Set(file.keys))
        for k in file.keys { XCTAssertEqual(built[k]?.shape, file.info(k)?.shape, k) }
        let large = TrellisDenseBenchmark.dinov2TensorInfos(TrellisDenseBenchmark.dinov2LargeRegisters)
        // transformers' Dinov2WithRegistersModel of this config: 440 tensors, 304,372,736 parameters.
        XCTAssertEqual(large.count, 440)
        XCTAssertEqual(large.values.reduce(0) { $0 + $1.count }, 304_372_736)
    }

    func testBenchmarkRunsWithTinyConfigsOnCPU() throws {
        let rows = try TrellisDenseBenchmark.run(device: .cpu, dtype: .float32, manifestDir: TrellisDenseFixturePaths.trellis(),
                                                 tinyConfigs: true, iterations: 1, warmup: 0, samplerSteps: [2])
        XCTAssertEqual(rows.count, 6)
        XCTAssertTrue(rows.allSatisfy { $0.milliseconds > 0 })
    }
}

// MARK: - reduced precision (the GPU path): bf16 on the CPU against the fp32 oracle, relative L2 error

extension TrellisDenseTests {
    func relativeError(_ got: Tensor, _ expected: Tensor) throws -> Double {
        let g = try got.to(.cpu, dtype: .float64), e = try expected.to(.cpu, dtype: .float64)
        return try (g - e).norm().item() / e.norm().item()
    }

    /// bf16 blocks (io layers fp32, as with use_fp16) stay within bf16 noise of the oracle: rel. L2 < 2e-2.
    func testReducedPrecisionPathsTrackFloat32() throws {
        let dir = try TrellisDenseFixturePaths.trellis()
        let flowCase = try fixtureCase("ss_flow")
        let flow = try SparseStructureFlowModel(args: flowCase.args, weights: WeightLoader(try flowCase.weights(), dtype: .bfloat16))
        XCTAssertEqual(flow.dtype, .bfloat16)
        XCTAssertEqual(flow.inputLayer.weight.dtype, .float32)
        let io = try flowCase.io()
        let v = try flow(io.tensor("b2.input.x"), t: io.tensor("b2.input.t"), cond: io.tensor("b2.input.cond"))
        XCTAssertEqual(v.dtype, .float32)
        let flowError = try relativeError(v, io.tensor("b2.output"))

        let decCase = try fixtureCase("ss_dec")
        let decoder = try SparseStructureDecoder(args: decCase.args, weights: WeightLoader(try decCase.weights(), dtype: .bfloat16))
        let logits = try decoder(decCase.io().tensor("input.x"))
        XCTAssertEqual(logits.dtype, .float32)
        let decoderError = try relativeError(logits, decCase.io().tensor("output"))

        let dino = try DINOv2.load(folder: dir.appendingPathComponent("dinov2_tiny"), dtype: .bfloat16)
        let dinoIO = try SafeTensorsFile(url: dir.appendingPathComponent("dinov2_tiny_io.safetensors"))
        let cond = try dino.trellisCondition(pixelValues: dinoIO.tensor("pixel_values"))
        XCTAssertEqual(cond.dtype, .float32)
        let dinoError = try relativeError(cond, dinoIO.tensor("cond"))
        print("  bf16 relative L2 error: ss_flow \(flowError), ss_dec \(decoderError), dinov2 cond \(dinoError)")
        XCTAssertLessThan(flowError, 2e-2)
        XCTAssertLessThan(decoderError, 2e-2)
        XCTAssertLessThan(dinoError, 2e-2)
    }
}

extension TrellisDenseTests {
    /// `absolutePositionEmbedding` reproduces the SS flow's `pos_emb` buffer (x-major 16^3 grid, 64 channels).
    func testAbsolutePositionEmbeddingMatchesBuffer() throws {
        let weights = try SafeTensorsFile(url: TrellisDenseFixturePaths.trellis().appendingPathComponent("ss_flow.safetensors"))
        let axis = try Tensor.arange(0, 16)
        let grid = try Tensor.meshgrid([axis, axis, axis])
        let coords = try Tensor.stack(grid, dim: -1).reshape([-1, 3])
        let got = try absolutePositionEmbedding(coords: coords, channels: 64)
        let c = try TensorComparison.compare("pos_emb", got: got, expected: weights.tensor("pos_emb"), atol: 1e-6)
        print("  \(c)")
        XCTAssertTrue(c.passed)
        XCTAssertThrowsError(try absolutePositionEmbedding(coords: Tensor.zeros([4]), channels: 64))
    }
}

extension TrellisDenseTests {
    /// From pixels: DINOv2 (fixture weights) -> TRELLIS cond -> SS sampler -> decoder reproduces the pipeline's
    /// occupied voxels exactly (the stored cond is dinov2_tiny_io:cond).
    func testSparseStructureStageFromPixels() throws {
        let dir = try TrellisDenseFixturePaths.trellis()
        let dinoIO = try SafeTensorsFile(url: dir.appendingPathComponent("dinov2_tiny_io.safetensors"))
        let pipelineIO = try SafeTensorsFile(url: dir.appendingPathComponent("pipeline_io.safetensors"))
        XCTAssertTrue(try pipelineIO.tensor("cond").equal(dinoIO.tensor("cond")))
        let dino = try DINOv2.load(folder: dir.appendingPathComponent("dinov2_tiny"))
        let cond = try dino.trellisCondition(pixelValues: DINOv2.imagenetNormalize(dinoIO.tensor("pixel_rgb01")))
        let comparisons = try TrellisDenseFixtures.runSparseStructureStage(try fixtureCase("pipeline"), cond: cond)
        comparisons.filter { !$0.name.hasPrefix("ss.call") && !$0.name.hasPrefix("ss.step") }.forEach { print("  \($0)") }
        XCTAssertTrue(comparisons.allSatisfy(\.passed))
        XCTAssertTrue(comparisons.contains { $0.name == "coords" && $0.passed })
    }
}
