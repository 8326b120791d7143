import Foundation
import Models
import NN
import PLY
import Fixtures
import TorchShim
import XCTest
import Diagnostics

/// Parity tests of the sparse half of TRELLIS against the official-code oracle (fixtures/trellis, fp32 CPU).
/// Tolerances (fixture README): single network atol 1e-4 + rtol 1e-4; sampler outputs atol 1e-3; coordinates and
/// index maps exact; Gaussian attributes atol 1e-4; PLY compared as parsed floats atol 1e-4, quaternions up to sign.
final class TrellisSparseTests: XCTestCase {
    static let samplerATol = 1e-3
    static let plyATol = 1e-4
    /// save_ply extracts quaternion components as 0.5 sqrt(1 ± d0 ± d1 ± d2) from a float32 rotation matrix: a
    /// component near zero carries up to ~0.5 sqrt(1e-7) ≈ 1.6e-4 of rounding, and any 1e-7 change of the input
    /// moves it by that much. PLY rotations from bit-identical Gaussian fields are checked at `plyATol`; rotations
    /// from our own decoder output (1e-7 away) at this bound.
    static let plyRotationFromDecodedATol = 5e-4

    private func folder() throws -> URL {
        guard let url = TrellisSparseFixturePaths.trellisFolder() else {
            throw MissingFixture("shared/fixtures/trellis not found beside the package")
        }
        return url
    }

    private func fixtureCase(_ stem: String) throws -> FixtureCase {
        let dir = try folder()
        let data = try Data(contentsOf: dir.appendingPathComponent("\(stem).json"))
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        return FixtureCase(directory: dir, stem: stem, json: json)
    }

    private func assertAllPass(_ comparisons: [TensorComparison], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(comparisons.isEmpty, "nothing compared", file: file, line: line)
        for c in comparisons {
            print(c)
            XCTAssertTrue(c.passed, c.description, file: file, line: line)
        }
    }

    // MARK: sparse building blocks

    /// Submanifold conv = dense conv3d (W permuted to [out, in, kx, ky, kz], padding 1) on a zero-filled grid,
    /// read back at the active sites. Both GEMM arrangements (C_in <= C_out and C_in > C_out), two batch items.
    func testSubmanifoldConvMatchesDenseConv() throws {
        let gen = try Generator(seed: 7)
        let (bs, sx, sy, sz) = (2, 5, 6, 7)
        let occupied = try Tensor.rand([bs, sx, sy, sz], generator: gen).lt(0.4)
        let coords = try occupied.nonzero().to(.int32)  // row-major (b, x, y, z): batch-sorted
        let layout = try SparseLayout(coords: coords)
        let n = layout.count
        for (cin, cout) in [(3, 4), (6, 2)] {
            let weight = try Tensor.randn([cout, 3, 3, 3, cin], generator: gen)
            let bias = try Tensor.randn([cout], generator: gen)
            let conv = try SparseSubMConv3d(WeightLoader(TensorDictionary(["conv.weight": weight, "conv.bias": bias])),
                                            inChannels: cin, outChannels: cout)
            let feats = try Tensor.randn([n, cin], generator: gen)
            let got = try conv(SparseTensor(feats: feats, layout: layout)).feats

            let c64 = try coords.to(.int64)
            let index: [Tensor?] = [try c64.select(1, 0), nil, try c64.select(1, 1), try c64.select(1, 2), try c64.select(1, 3)]
            let dense = try Tensor.zeros([bs, cin, sx, sy, sz]).indexPut(index, feats)
            let denseOut = try F.conv3d(dense, weight.permute([0, 4, 1, 2, 3]).contiguous(), bias, padding: [1])
            let expected = try denseOut.index(index)
            let cmp = try TensorComparison.compare("subm conv \(cin)->\(cout)", got: got, expected: expected, atol: 1e-5)
            assertAllPass([cmp])
        }
    }

    func testDownsampleAndUpsampleMatchFixture() throws {
        let io = try SafeTensorsFile(url: folder().appendingPathComponent("slat_flow_io.safetensors"))
        let layout = try SparseLayout(coords: io.tensor("input.coords"))
        let (coarse, fineToCoarse) = try SparseResample.downsampleMap(layout)
        var results = [
            try TensorComparison.exact("downsample.coords", got: coarse.coords, expected: io.tensor("inter.downsample.coords")),
            try TensorComparison.exact("downsample.fine_to_coarse", got: fineToCoarse,
                                       expected: io.tensor("inter.downsample.fine_to_coarse")),
        ]
        // Features: scatter_reduce "mean" with include_self (the zero start counts): ones -> k / (k + 1).
        let ones = try SparseTensor(feats: Tensor.ones([layout.count, 2]), layout: layout)
        let down = try SparseResample.downsample(ones)
        let k = try Tensor.zeros([coarse.count]).indexAdd(0, fineToCoarse, Tensor.ones([layout.count]))
        let expectedMean = try (k / (k + 1)).unsqueeze(1).expand([coarse.count, 2])
        results.append(try TensorComparison.compare("downsample feats", got: down.feats, expected: expectedMean, atol: 1e-7))
        // Upsampling returns to the fine voxel set, each voxel copying its parent.
        let feats = try Tensor.arange(0, Double(coarse.count), dtype: .float32).unsqueeze(1)
        let up = try SparseResample.upsample(SparseTensor(feats: feats, layout: coarse))
        XCTAssertTrue(up.layout === layout)
        results.append(try TensorComparison.exact("upsample coords", got: up.coords, expected: io.tensor("input.coords")))
        results.append(try TensorComparison.compare("upsample feats", got: up.feats.squeeze(1),
                                                    expected: fineToCoarse.to(.float32), atol: 0))
        assertAllPass(results)
        XCTAssertThrowsError(try SparseResample.upsample(SparseTensor(feats: Tensor.zeros([layout.count, 1]), layout: layout)))
    }

    func testSwinPartitionMatchesFixture() throws {
        let io = try SafeTensorsFile(url: folder().appendingPathComponent("slat_dec_gs_io.safetensors"))
        let layout = try SparseLayout(coords: io.tensor("input.coords"))
        var results: [TensorComparison] = []
        for k in 0..<2 {
            let shift = Int(try io.tensor("swin.block\(k).shift").toArray(Int32.self)[0])
            results.append(try TensorComparison.exact("swin.block\(k).window_coord", got: layout.windowCoords(size: 8, shift: shift),
                                                      expected: io.tensor("swin.block\(k).window_coord")))
        }
        assertAllPass(results)
    }

    /// One padded SDPA over all windows equals attention computed window by window.
    func testWindowedAttentionMatchesPerWindowAttention() throws {
        let io = try SafeTensorsFile(url: folder().appendingPathComponent("slat_dec_gs_io.safetensors"))
        let layout = try SparseLayout(coords: io.tensor("input.coords"))
        let (n, h, d) = (layout.count, 2, 4)
        let qkv = try Tensor.randn([n, 3, h, d], generator: Generator(seed: 3))
        for shift in [0, 4] {
            let got = try SparseAttention.windowed(qkv: qkv, layout: layout, windowSize: 8, shift: shift)
            let windows = try layout.windowCoords(size: 8, shift: shift).toArray(Int32.self)
            var members: [[Int32]: [Int64]] = [:]
            for i in 0..<n { members[Array(windows[4 * i ..< 4 * i + 4]), default: []].append(Int64(i)) }
            let expected = try Tensor.zeros([n, h * d])
            for rows in members.values {
                let idx = try Tensor(rows)
                let part = try qkv.indexSelect(0, idx)  // [m, 3, H, D]
                func heads(_ j: Int) throws -> Tensor { try part.select(1, j).transpose(0, 1).unsqueeze(0) }
                let o = try F.scaledDotProductAttention(heads(0), heads(1), heads(2))
                try expected.indexPut_([idx], o.squeeze(0).transpose(0, 1).reshape([rows.count, h * d]))
            }
            assertAllPass([try TensorComparison.compare("windowed attention shift \(shift)", got: got, expected: expected, atol: 1e-5)])
        }
    }

    /// Batch items of different sizes: one masked SDPA equals per-item attention.
    func testFullAttentionWithUnequalBatchItems() throws {
        let gen = try Generator(seed: 5)
        let coords = try Tensor([Int32](
            [0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 2, 3, 0, 4, 4, 4, 0, 9, 1, 1, 1, 0, 0, 0, 1, 3, 3, 3]), shape: [7, 4])
        let layout = try SparseLayout(coords: coords)
        XCTAssertEqual(layout.counts, [5, 2])
        let (h, d) = (2, 3)
        let q = try Tensor.randn([7, h, d], generator: gen), k = try Tensor.randn([7, h, d], generator: gen)
        let v = try Tensor.randn([7, h, d], generator: gen)
        let got = try SparseAttention.full(q: q, k: k, v: v, layout: layout)
        var parts: [Tensor] = []
        for (start, length) in [(0, 5), (5, 2)] {
            func heads(_ t: Tensor) throws -> Tensor { try t.narrow(0, start: start, length: length).transpose(0, 1) }
            let o = try F.scaledDotProductAttention(heads(q), heads(k), heads(v))
            parts.append(try o.transpose(0, 1).reshape([length, h * d]))
        }
        assertAllPass([try TensorComparison.compare("full attention", got: got, expected: Tensor.cat(parts, dim: 0), atol: 1e-6)])
    }

    func testLayoutRejectsBadCoordinates() throws {
        XCTAssertThrowsError(try SparseLayout(coords: Tensor([Int32](repeating: 0, count: 6), shape: [2, 3])))
        XCTAssertThrowsError(try SparseLayout(coords: Tensor([Int32]([1, 0, 0, 0]), shape: [1, 4])))     // starts at batch 1
        XCTAssertThrowsError(try SparseLayout(coords: Tensor([Int32]([0, 0, 0, 0, 2, 0, 0, 0]), shape: [2, 4])))  // skips 1
        XCTAssertThrowsError(try SparseLayout(coords: Tensor([Int32]([0, -1, 0, 0]), shape: [1, 4])))
        XCTAssertThrowsError(try SparseLayout(coords: Tensor([Float]([0, 0, 0, 0]), shape: [1, 4])))
        let layout = try SparseLayout(coords: Tensor([Int32]([0, 1, 2, 3]), shape: [1, 4]))
        XCTAssertThrowsError(try SparseTensor(feats: Tensor.zeros([2, 8]), layout: layout))
    }

    // MARK: networks

    func testSLatFlowFixture() throws {
        let result = FixtureRunner().run(try fixtureCase("slat_flow"))
        XCTAssertNil(result.error)
        assertAllPass(result.comparisons)
        let names = Set(result.comparisons.map(\.name))
        for expected in ["output.feats", "b2.output.feats", "inter.input_layer.feats", "inter.input_block0.feats",
                         "inter.downsample.coords", "inter.downsample.fine_to_coarse", "inter.input_block1.feats",
                         "inter.block0.feats", "inter.block1.feats", "inter.out_block0.feats", "inter.out_block1.feats"] {
            XCTAssertTrue(names.contains(expected), "missing comparison \(expected)")
        }
    }

    func testGaussianDecoderFixture() throws {
        let result = FixtureRunner().run(try fixtureCase("slat_dec_gs"))
        XCTAssertNil(result.error)
        assertAllPass(result.comparisons)
        let names = Set(result.comparisons.map(\.name))
        for expected in ["inter.block0.feats", "output.raw_feats", "output.raw._xyz", "output.rotation", "output.opacity",
                         "swin.block1.window_coord"] {
            XCTAssertTrue(names.contains(expected), "missing comparison \(expected)")
        }
    }

    func testSaveplyConversionMatchesReferencePLY() throws {
        let c = try fixtureCase("slat_dec_gs")
        let io = try c.io()
        let decoder = try TrellisSparseFixtures.loadDecoder(c)
        let ply = try ReferencePLY(url: folder().appendingPathComponent("slat_dec_gs_out.ply"))
        // The reference's own Gaussian fields -> PLY (tests the conversion alone).
        let stored = try storedGaussians(io, prefix: "output.raw.", decoder: decoder)
        var results = try ply.compare(to: stored.splat(), atol: Self.plyATol, rotationATol: Self.plyATol)
        // Our decoder output -> PLY.
        let decoded = try decoder(SparseTensor(coords: io.tensor("input.coords"), feats: io.tensor("input.feats")))
        results += try ply.compare(to: decoded.splat(), atol: Self.plyATol, rotationATol: Self.plyRotationFromDecodedATol)
            .map { $0.renamed("decoded." + $0.name) }
        assertAllPass(results)
    }

    /// A TrellisGaussians holding the fixture's stored `_xyz`, `_features_dc`, ... fields.
    private func storedGaussians(_ io: SafeTensorsFile, prefix: String, decoder: SLatGaussianDecoder) throws -> TrellisGaussians {
        let xyz = try io.tensor(prefix + "_xyz")
        let g = decoder.config.representation.numGaussians
        return try TrellisGaussians(xyz: xyz, featuresDC: io.tensor(prefix + "_features_dc"), scaling: io.tensor(prefix + "_scaling"),
                                    rotation: io.tensor(prefix + "_rotation"), opacity: io.tensor(prefix + "_opacity"),
                                    activation: GaussianActivation(decoder.config.representation), gaussiansPerVoxel: g,
                                    voxelOffsets: [0, xyz.size(0) / g])
    }

    /// The SLat half of the end-to-end fixture: noise + occupied coords + DINO cond -> 4-step guided Euler sampler
    /// (CFG batched) -> de-normalisation -> Gaussian decoder -> save_ply fields.
    func testPipelineSLatHalf() throws {
        let dir = try folder()
        let io = try SafeTensorsFile(url: dir.appendingPathComponent("pipeline_io.safetensors"))
        let pipelineJSON = try XCTUnwrap(JSONSerialization.jsonObject(
            with: Data(contentsOf: dir.appendingPathComponent("pipeline.json"))) as? [String: Any])
        let sampler = try XCTUnwrap(pipelineJSON["slat_sampler"] as? [String: Any])
        let params = try XCTUnwrap(sampler["params"] as? [String: Any])
        let sigmaMin = try XCTUnwrap((sampler["args"] as? [String: Any])?["sigma_min"] as? Double)
        let steps = try XCTUnwrap(params["steps"] as? Int)
        let cfg = try XCTUnwrap(params["cfg_strength"] as? Double)
        let interval = try XCTUnwrap(params["cfg_interval"] as? [Double])
        let rescale = try XCTUnwrap(params["rescale_t"] as? Double)
        let normalization = try XCTUnwrap(pipelineJSON["slat_normalization"] as? [String: [Double]])

        let flow = try TrellisSparseFixtures.loadFlow(fixtureCase("slat_flow"))
        let decoder = try TrellisSparseFixtures.loadDecoder(fixtureCase("slat_dec_gs"))
        let layout = try SparseLayout(coords: io.tensor("coords"))
        var results = [try TensorComparison.exact("slat.coords", got: layout.coords, expected: io.tensor("slat.coords"))]
        let denoiser = try SLatGuidedDenoiser(model: flow, layout: layout, cond: io.tensor("cond"), negCond: io.tensor("neg_cond"))

        // FlowEulerGuidanceIntervalSampler: rescaled linspace(1, 0), guidance inside [lo, hi] inclusive.
        let tSeq = (0...steps).map { i -> Double in
            let t = 1 - Double(i) / Double(steps)
            return rescale * t / (1 + (rescale - 1) * t)
        }
        results.append(try TensorComparison.compare("slat.t_seq", got: Tensor(tSeq), expected: io.tensor("slat.t_seq"), atol: 1e-12))
        var x = try io.tensor("slat.noise.feats")
        for i in 0..<steps {
            let (t, tPrev) = (tSeq[i], tSeq[i + 1])
            let guided = interval[0] <= t && t <= interval[1]
            let v = try denoiser.velocity(x, t: t, cfgStrength: cfg, guided: guided)
            let predX0 = try x * (1 - sigmaMin) - v * (sigmaMin + (1 - sigmaMin) * t)
            x = try x - v * (t - tPrev)
            results.append(try TensorComparison.compare("slat.step\(i).x_prev.feats", got: x,
                                                        expected: io.tensor("slat.step\(i).x_prev.feats"), atol: Self.samplerATol))
            results.append(try TensorComparison.compare("slat.step\(i).pred_x0.feats", got: predX0,
                                                        expected: io.tensor("slat.step\(i).pred_x0.feats"), atol: Self.samplerATol))
        }
        results.append(try TensorComparison.compare("slat.samples.feats", got: x, expected: io.tensor("slat.samples.feats"),
                                                    atol: Self.samplerATol))
        let denorm = try SLatNormalization(mean: XCTUnwrap(normalization["mean"]), std: XCTUnwrap(normalization["std"]))
            .denormalize(x)
        results.append(try TensorComparison.compare("slat.denorm.feats", got: denorm, expected: io.tensor("slat.denorm.feats"),
                                                    atol: Self.samplerATol))

        // Decoder on the reference latent: Gaussian attributes at 1e-4 and the PLY.
        let reference = try decoder(SparseTensor(feats: io.tensor("slat.denorm.feats"), layout: layout)) { name, t in
            if name == "raw_feats", let c = try? TensorComparison.compare("gs.raw_feats", got: t, expected: io.tensor("gs.raw_feats"),
                                                                          atol: TrellisSparseFixtures.networkATol,
                                                                          rtol: TrellisSparseFixtures.networkRTol) {
                results.append(c)
            }
        }
        results += try TrellisSparseFixtures.compareGaussians(reference, io: io, prefix: "gs.")
        let ply = try ReferencePLY(url: dir.appendingPathComponent("pipeline_out.ply"))
        results += try ply.compare(to: storedGaussians(io, prefix: "gs.raw.", decoder: decoder).splat(), atol: Self.plyATol,
                                   rotationATol: Self.plyATol).map { $0.renamed("stored." + $0.name) }
        results += try ply.compare(to: reference.batch(0).splat(), atol: Self.plyATol, rotationATol: Self.plyRotationFromDecodedATol)

        // The whole chain from our own samples, at the sampler tolerance.
        let chained = try decoder(SparseTensor(feats: denorm, layout: layout))
        results += try TrellisSparseFixtures.compareGaussians(chained, io: io, prefix: "gs.", atol: Self.samplerATol)
            .map { $0.renamed("chain." + $0.name) }
        results += try ply.compare(to: chained.splat(), atol: Self.samplerATol, rotationATol: Self.samplerATol)
            .map { $0.renamed("chain." + $0.name) }
        assertAllPass(results)
    }

    func testLegacyOrientationTurnsUpToPlusY() throws {
        // One Gaussian at the top (+Z in TRELLIS) of the box, identity rotation.
        let act = try GaussianActivation(JSONDecoder().decode(GaussianRepresentationConfig.self, from: Data(
            #"{"lr":{},"voxel_size":1.5,"num_gaussians":1,"3d_filter_kernel_size":0.0009,"scaling_bias":0.004,"opacity_bias":0.1,"scaling_activation":"softplus"}"#.utf8)))
        let g = try TrellisGaussians(xyz: Tensor([Float]([0.5, 0.5, 0.9]), shape: [1, 3]), featuresDC: Tensor.zeros([1, 1, 3]),
                                     scaling: Tensor.zeros([1, 3]), rotation: Tensor.zeros([1, 4]), opacity: Tensor.zeros([1, 1]),
                                     activation: act, gaussiansPerVoxel: 1, voxelOffsets: [0, 1])
        let legacy = try g.splat(orientation: .yUp)
        XCTAssertEqual(legacy.positions, [0, 0.4, 0].map { Float($0) }, accuracy: 1e-6)
        let saved = try g.splat(orientation: .yDown)
        XCTAssertEqual(saved.positions, [0, -0.4, 0].map { Float($0) }, accuracy: 1e-6)
        // The identity orientation becomes the frame rotation itself: -90 / +90 degrees about x.
        let h = Float(0.5.squareRoot())
        XCTAssertEqual(legacy.rotations, [h, -h, 0, 0], accuracy: 1e-6)
        XCTAssertEqual(saved.rotations, [h, h, 0, 0], accuracy: 1e-6)
    }

    // MARK: loading

    private func manifest(_ name: String) throws -> (ManifestWeights, [String: Any]) {
        let url = try folder().appendingPathComponent(name)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        return (try ManifestWeights(url: url), try XCTUnwrap(json["args"] as? [String: Any]))
    }

    /// Every key and shape of the released checkpoints loads (fp16 torso, fp32 rest, as in the manifests).
    func testFullSizeManifestsLoad() throws {
        let (flowWeights, flowArgs) = try manifest("manifest_slat_flow_img_dit_L_64l8p2_fp16.json")
        let flowLoader = WeightLoader(flowWeights, dtype: .float16)
        let flowConfig = try JSONDecoder().decode(SLatFlowConfig.self, from: JSONSerialization.data(withJSONObject: flowArgs))
        let flow = try SLatFlowModel(flowLoader, config: flowConfig)
        try flowLoader.checkAllUsed()
        XCTAssertEqual(flow.config.heads, 16)

        let (decWeights, decArgs) = try manifest("manifest_slat_dec_gs_swin8_B_64l8gs32_fp16.json")
        let decLoader = WeightLoader(decWeights, dtype: .float16)
        let decConfig = try JSONDecoder().decode(SLatGaussianDecoderConfig.self, from: JSONSerialization.data(withJSONObject: decArgs))
        let decoder = try SLatGaussianDecoder(decLoader, config: decConfig)
        try decLoader.checkAllUsed()
        XCTAssertEqual(decoder.config.outChannels, 448)
    }

    func testLoaderNamesMissingAndMisshapenKeys() throws {
        for stem in ["slat_flow", "slat_dec_gs"] {
            let c = try fixtureCase(stem)
            let source = try c.weights()
            var tensors: [String: Tensor] = [:]
            for k in source.keys { tensors[k] = try source.tensor(k) }
            let victim = stem == "slat_flow" ? "input_blocks.1.conv2.conv.weight" : "blocks.1.attn.to_qkv.weight"
            func load(_ dict: [String: Tensor]) throws {
                let w = WeightLoader(TensorDictionary(dict))
                if stem == "slat_flow" {
                    _ = try SLatFlowModel(w, config: c.decodeArgs(SLatFlowConfig.self))
                } else {
                    _ = try SLatGaussianDecoder(w, config: c.decodeArgs(SLatGaussianDecoderConfig.self))
                }
            }
            XCTAssertNoThrow(try load(tensors))
            var missing = tensors
            missing[victim] = nil
            XCTAssertThrowsError(try load(missing)) { error in
                XCTAssertEqual(error as? WeightError, .missing(victim, expected: tensors[victim]!.shape))
                XCTAssertTrue("\(error)".contains(victim))
            }
            var misshapen = tensors
            misshapen[victim] = try tensors[victim]!.narrow(0, start: 0, length: 1)
            XCTAssertThrowsError(try load(misshapen)) { error in
                XCTAssertTrue("\(error)".contains(victim), "\(error)")
            }
            // An extra key is reported by checkAllUsed.
            var extra = tensors
            extra["blocks.99.surprise"] = try Tensor.zeros([1])
            let w = WeightLoader(TensorDictionary(extra))
            if stem == "slat_flow" { _ = try SLatFlowModel(w, config: c.decodeArgs(SLatFlowConfig.self)) }
            else { _ = try SLatGaussianDecoder(w, config: c.decodeArgs(SLatGaussianDecoderConfig.self)) }
            XCTAssertThrowsError(try w.checkAllUsed()) { XCTAssertTrue("\($0)".contains("blocks.99.surprise")) }
        }
    }

    /// The benchmark runs end to end (CPU, the fixtures' tiny configurations written as manifests, 300 voxels).
    /// Its numbers are not checked here; the real-size run is on the GPU machine.
    func testBenchmarkRunsOnTinyManifests() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("trellis-sparse-bench-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (stem, name) in [("slat_flow", TrellisSparseBenchmark.flowManifest), ("slat_dec_gs", TrellisSparseBenchmark.decoderManifest)] {
            let c = try fixtureCase(stem)
            let weights = try c.weights()
            let tensors: [[String: Any]] = weights.keys.map { ["key": $0, "shape": weights.info($0)!.shape, "dtype": "float32"] }
            let json: [String: Any] = ["class": c.className, "args": c.args, "tensors": tensors]
            try JSONSerialization.data(withJSONObject: json).write(to: dir.appendingPathComponent(name))
        }
        let rows = try TrellisSparseBenchmark.run(device: .cpu, dtype: .float32, manifestDir: dir, voxels: 300, iterations: 1)
        rows.forEach { print($0) }
        XCTAssertEqual(rows.count, 12)  // + the second voxel set of the flow and of the decoder
        XCTAssertTrue(rows.allSatisfy { $0.milliseconds > 0 })
        XCTAssertTrue(rows.contains { $0.name.contains("transformer") && $0.notes.contains("TFLOP/s") })
    }

    func testForwardRejectsBadInputs() throws {
        let flow = try TrellisSparseFixtures.loadFlow(fixtureCase("slat_flow"))
        let io = try SafeTensorsFile(url: folder().appendingPathComponent("slat_flow_io.safetensors"))
        let x = try SparseTensor(coords: io.tensor("input.coords"), feats: io.tensor("input.feats"))
        XCTAssertThrowsError(try flow(x, t: io.tensor("b2.input.t"), cond: io.tensor("input.cond")))
        XCTAssertThrowsError(try flow(x, t: io.tensor("input.t"), cond: io.tensor("b2.input.cond")))
        let narrow = try SparseTensor(feats: io.tensor("input.feats").narrow(1, start: 0, length: 4), layout: x.layout)
        XCTAssertThrowsError(try flow(narrow, t: io.tensor("input.t"), cond: io.tensor("input.cond")))
        let far = try SparseTensor(coords: Tensor([Int32]([0, 70, 0, 0]), shape: [1, 4]), feats: Tensor.zeros([1, 8]))
        XCTAssertThrowsError(try flow(far, t: io.tensor("input.t"), cond: io.tensor("input.cond"))) {
            XCTAssertTrue("\($0)".contains("resolution"), "\($0)")
        }
    }
}

private extension TensorComparison {
    func renamed(_ newName: String) -> TensorComparison {
        TensorComparison(name: newName, maxAbs: maxAbs, maxRel: maxRel, atol: atol, rtol: rtol, passed: passed, note: note)
    }
}

private func XCTAssertEqual(_ a: [Float], _ b: [Float], accuracy: Float, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, "\(a) vs \(b)", file: file, line: line) }
}

/// A minimal reader of the binary little-endian float32 PLY that `save_ply` writes (test-only).
private struct ReferencePLY {
    let names: [String]
    let count: Int
    let values: [Float]

    init(url: URL) throws {
        let data = try Data(contentsOf: url)
        guard let end = data.range(of: Data("end_header\n".utf8)) else { throw SparseTensorError("no end_header in \(url.lastPathComponent)") }
        let header = String(decoding: data[..<end.lowerBound], as: UTF8.self)
        var names: [String] = [], count = 0
        for line in header.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.first == "format" && parts.dropFirst().first != "binary_little_endian" {
                throw SparseTensorError("not binary_little_endian")
            }
            if parts.count == 3, parts[0] == "element", parts[1] == "vertex" { count = Int(parts[2]) ?? 0 }
            if parts.count == 3, parts[0] == "property" {
                guard parts[1] == "float" else { throw SparseTensorError("non-float property \(line)") }
                names.append(String(parts[2]))
            }
        }
        let body = data[end.upperBound...]
        guard body.count == count * names.count * 4 else {
            throw SparseTensorError("PLY body has \(body.count) bytes, expected \(count * names.count * 4)")
        }
        var values = [Float](repeating: 0, count: count * names.count)
        _ = values.withUnsafeMutableBytes { body.copyBytes(to: $0) }
        self.names = names
        self.count = count
        self.values = values.map { Float(bitPattern: UInt32(littleEndian: $0.bitPattern)) }
    }

    func column(_ name: String) throws -> [Float] {
        guard let j = names.firstIndex(of: name) else { throw SparseTensorError("PLY has no property \(name)") }
        return (0..<count).map { values[$0 * names.count + j] }
    }

    func columns(_ names: [String]) throws -> Tensor {
        let cols = try names.map { try column($0) }
        var flat = [Float](repeating: 0, count: count * names.count)
        for i in 0..<count { for (j, c) in cols.enumerated() { flat[i * names.count + j] = c[i] } }
        return try Tensor(flat, shape: [count, names.count])
    }

    /// Parsed floats against a splat (atol; quaternions up to sign).
    func compare(to splat: GaussianSplat, atol: Double, rotationATol: Double) throws -> [TensorComparison] {
        XCTAssertEqual(names, ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
                               "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])
        let n = splat.count
        guard n == count else {
            return [TensorComparison(name: "ply.count", maxAbs: .infinity, maxRel: .infinity, atol: 0, rtol: 0, passed: false,
                                     note: "\(n) Gaussians vs \(count) in the PLY")]
        }
        let rot = try Tensor(splat.rotations, shape: [n, 4])
        let refRot = try columns(["rot_0", "rot_1", "rot_2", "rot_3"])
        // Up to sign: flip ours where it points away from the reference.
        let flip = try ((rot * refRot).sum([1], keepDim: true).ge(0).to(.float32) * 2 - 1)
        return [
            try TensorComparison.compare("ply.xyz", got: Tensor(splat.positions, shape: [n, 3]), expected: columns(["x", "y", "z"]), atol: atol),
            try TensorComparison.compare("ply.normals", got: Tensor(splat.normals ?? [], shape: [n, 3]),
                                         expected: columns(["nx", "ny", "nz"]), atol: 0),
            try TensorComparison.compare("ply.f_dc", got: Tensor(splat.shDC, shape: [n, 3]),
                                         expected: columns(["f_dc_0", "f_dc_1", "f_dc_2"]), atol: atol),
            try TensorComparison.compare("ply.opacity", got: Tensor(splat.opacities, shape: [n, 1]), expected: columns(["opacity"]), atol: atol),
            try TensorComparison.compare("ply.scale", got: Tensor(splat.scales, shape: [n, 3]),
                                         expected: columns(["scale_0", "scale_1", "scale_2"]), atol: atol),
            try TensorComparison.compare("ply.rot (up to sign)", got: rot * flip, expected: refRot, atol: rotationATol),
        ]
    }
}
