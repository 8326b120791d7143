import Models
import Foundation
import NN
import TorchShim

/// Real-size timing of the sparse half of TRELLIS with random weights (keys and shapes from the full-size manifests):
/// one SLat flow sampler step (CFG batch 2 and unguided batch 1, with the encode / transformer / decode split),
/// the Gaussian decoder, and the conversion to a `GaussianSplat`. Voxels: a random blob-like shell in 64^3.
public enum TrellisSparseBenchmark {

    public static let flowManifest = "manifest_slat_flow_img_dit_L_64l8p2_fp16.json"
    public static let decoderManifest = "manifest_slat_dec_gs_swin8_B_64l8gs32_fp16.json"
    /// DINOv2-L/14 with 4 registers at 518 px: 1 + 4 + 37 * 37 tokens.
    public static let conditionTokens = 1374

    public static func run(device: Device, dtype: DType, manifestDir: URL, voxels: Int = 20_000, iterations: Int = 5,
                           seed: UInt64 = 0) throws -> [BenchmarkRow] {
        guard voxels > 0, voxels <= 64 * 64 * 64 else { throw SparseTensorError("voxels must be in 1...262144, got \(voxels)") }
        guard iterations > 0 else { throw SparseTensorError("iterations must be > 0") }
        var rows: [BenchmarkRow] = []
        let clock = StageClock(device: device, iterations: iterations)

        let (flowSource, flowArgs) = try randomWeights(manifestDir.appendingPathComponent(flowManifest), device: device,
                                                       dtype: dtype, seed: seed)
        let flowConfig = try JSONDecoder().decode(SLatFlowConfig.self, from: JSONSerialization.data(withJSONObject: flowArgs))
        let flow = try SLatFlowModel(WeightLoader(flowSource, device: device, dtype: dtype), config: flowConfig)
        let (decSource, decArgs) = try randomWeights(manifestDir.appendingPathComponent(decoderManifest), device: device,
                                                     dtype: dtype, seed: seed + 1)
        let decConfig = try JSONDecoder().decode(SLatGaussianDecoderConfig.self, from: JSONSerialization.data(withJSONObject: decArgs))
        let decoder = try SLatGaussianDecoder(WeightLoader(decSource, device: device, dtype: dtype), config: decConfig)

        let generator = try Generator(seed: seed, device: device)
        let coords = try blobVoxels(count: voxels, resolution: flowConfig.resolution, device: device, generator: generator)
        let layout = try SparseLayout(coords: coords)
        let latent = try Tensor.randn([layout.count, flowConfig.inChannels], device: device, generator: generator)
        let cond = try Tensor.randn([1, conditionTokens, flowConfig.condChannels], device: device, generator: generator)
        let denoiser = try SLatGuidedDenoiser(model: flow, layout: layout, cond: cond, negCond: cond.zerosLike())

        // First guided step: builds the neighbour maps, downsampling and packings of both layouts, and the condition's
        // keys and values. In a fresh process it also pays every kernel's first launch (module loading, GEMM
        // heuristics, allocator growth); the same on a second voxel set is what every later request pays.
        let first = try clock.once { _ = try denoiser.velocity(latent, t: 1, cfgStrength: 5, guided: true) }
        rows.append(BenchmarkRow(name: "slat_flow first step (builds layouts)", milliseconds: first.ms, notes: first.memory))
        let otherCoords = try blobVoxels(count: voxels, resolution: flowConfig.resolution, device: device, generator: generator)
        let otherLayout = try SparseLayout(coords: otherCoords)
        let otherLatent = try Tensor.randn([otherLayout.count, flowConfig.inChannels], device: device, generator: generator)
        let nextRequest = try clock.once {
            let d = try SLatGuidedDenoiser(model: flow, layout: SparseLayout(coords: otherCoords), cond: cond,
                                           negCond: cond.zerosLike())
            _ = try d.velocity(otherLatent, t: 1, cfgStrength: 5, guided: true)
            _ = try d.velocity(otherLatent, t: 0.3, cfgStrength: 5, guided: false)
        }
        rows.append(BenchmarkRow(name: "slat_flow new voxel set: guided + unguided step", milliseconds: nextRequest.ms,
                                 notes: "warm process, \(otherLayout.count) voxels; compare with one step of each"))
        let guided = try clock.median { _ = try denoiser.velocity(latent, t: 0.9, cfgStrength: 5, guided: true) }
        rows.append(BenchmarkRow(name: "slat_flow step, CFG batch 2", milliseconds: guided.ms, notes: guided.memory))
        let unguided = try clock.median { _ = try denoiser.velocity(latent, t: 0.3, cfgStrength: 5, guided: false) }
        rows.append(BenchmarkRow(name: "slat_flow step, unguided batch 1", milliseconds: unguided.ms, notes: unguided.memory))

        // Stage split of the batch-2 forward.
        let doubled = try SparseLayout.repeated(layout, copies: 2)
        let x2 = try SparseTensor(feats: Tensor.cat([latent, latent], dim: 0), layout: doubled)
        let t2 = try Tensor.full([2], value: 900, dtype: .float32, device: device)
        let tEmb = try flow.timeEmbedding(t2)
        let condition = try flow.condition(Tensor.cat([cond, cond.zerosLike()], dim: 0))
        let (coarse, skips) = try flow.encode(x2, tEmb: tEmb, capture: nil)
        let encode = try clock.median { _ = try flow.encode(x2, tEmb: tEmb, capture: nil) }
        rows.append(BenchmarkRow(name: "  encode (input layer + res blocks, 64^3)", milliseconds: encode.ms,
                                 notes: "\(layout.count) fine voxels/item"))
        let transformer = try clock.median { _ = try flow.transformer(coarse, tEmb: tEmb, condition: condition, capture: nil) }
        let flops = transformerFLOPs(config: flowConfig, tokensPerItem: coarse.layout.counts, contextTokens: conditionTokens)
        rows.append(BenchmarkRow(name: "  transformer (\(flowConfig.numBlocks) blocks, 32^3)", milliseconds: transformer.ms,
                                 notes: String(format: "%d coarse voxels/item, %.2f TFLOP, %.1f TFLOP/s",
                                               coarse.layout.counts[0], flops / 1e12, flops / 1e12 / (transformer.ms / 1000))))
        let h = try flow.transformer(coarse, tEmb: tEmb, condition: condition, capture: nil)
        let decode = try clock.median { _ = try flow.decode(h, skips: skips, tEmb: tEmb, capture: nil) }
        rows.append(BenchmarkRow(name: "  decode (res blocks + out layer, 64^3)", milliseconds: decode.ms, notes: ""))

        // Gaussian decoder and the PLY-ready splat.
        let slat = try SparseTensor(feats: latent, layout: layout)
        let firstDecode = try clock.once { _ = try decoder(slat) }
        rows.append(BenchmarkRow(name: "gs decoder first call (builds windows)", milliseconds: firstDecode.ms, notes: firstDecode.memory))
        let decodeGS = try clock.median { _ = try decoder(slat) }
        rows.append(BenchmarkRow(name: "gs decoder", milliseconds: decodeGS.ms,
                                 notes: "\(layout.count * decConfig.representation.numGaussians) Gaussians, \(decodeGS.memory)"))
        let otherSlat = try SparseTensor(feats: otherLatent, layout: otherLayout)
        let nextDecode = try clock.once { _ = try decoder(otherSlat) }
        rows.append(BenchmarkRow(name: "gs decoder new voxel set", milliseconds: nextDecode.ms,
                                 notes: "warm process, \(otherLayout.count) voxels"))
        rows += try windowedAttentionComparison(layout: layout, channels: decConfig.modelChannels, heads: decConfig.heads,
                                                dtype: dtype, clock: clock, generator: generator)
        if SparseAttention.useFlashAttention, case .cuda = device {
            SparseAttention.useFlashAttention = false
            defer { SparseAttention.useFlashAttention = true }
            let padded = try clock.median { _ = try decoder(slat) }
            rows.append(BenchmarkRow(name: "gs decoder, padded SDPA windows", milliseconds: padded.ms, notes: padded.memory))
        }
        let gaussians = try decoder(slat)
        let fields = try clock.median { _ = try gaussians.plyFields() }
        rows.append(BenchmarkRow(name: "save_ply fields on device", milliseconds: fields.ms, notes: ""))
        let splat = try clock.median { _ = try gaussians.splat() }
        rows.append(BenchmarkRow(name: "GaussianSplat (fields + host copies)", milliseconds: splat.ms, notes: ""))
        return rows
    }

    /// One block's windowed attention (shift 4) through FlashAttention varlen and through the padded SDPA, with the
    /// largest difference between the two (only where FlashAttention applies).
    static func windowedAttentionComparison(layout: SparseLayout, channels: Int, heads: Int, dtype: DType,
                                            clock: StageClock, generator: Generator) throws -> [BenchmarkRow] {
        let qkv = try Tensor.randn([layout.count, 3, heads, channels / heads], device: layout.device, generator: generator)
            .to(dtype)
        guard SparseAttention.useFlashAttention, SparseAttention.flash(qkv) else {
            guard let failure = SparseAttention.flashFailure else { return [] }
            return [BenchmarkRow(name: "swin attention, flash varlen", milliseconds: .nan, notes: "turned off: \(failure)")]
        }
        let part = try layout.windowPartition(size: 8, shift: 4)
        let flash = try clock.median { _ = try SparseAttention.windowed(qkv: qkv, layout: layout, windowSize: 8, shift: 4) }
        let viaFlash = try SparseAttention.windowed(qkv: qkv, layout: layout, windowSize: 8, shift: 4)
        SparseAttention.useFlashAttention = false
        defer { SparseAttention.useFlashAttention = true }
        let padded = try clock.median { _ = try SparseAttention.windowed(qkv: qkv, layout: layout, windowSize: 8, shift: 4) }
        let viaPadding = try SparseAttention.windowed(qkv: qkv, layout: layout, windowSize: 8, shift: 4)
        let diff = try (viaFlash.to(.float32) - viaPadding.to(.float32)).abs().max().item()
        return [
            BenchmarkRow(name: "swin attention, flash varlen", milliseconds: flash.ms,
                         notes: "\(part.windowCount) windows, longest \(part.maxLength), max |flash - padded| \(diff)"),
            BenchmarkRow(name: "swin attention, padded SDPA + mask", milliseconds: padded.ms, notes: ""),
        ]
    }

    /// Host-side cost of a NEW voxel set (every request has one): the layout and everything derived from the
    /// coordinates that the SLat flow and the Gaussian decoder use, each stage on a fresh `SparseLayout` (median of
    /// `iterations`), plus the PLY conversion of `voxels * 32` random Gaussians. No weights: runs on CPU too.
    public static func layouts(device: Device, voxels: Int = 20_000, iterations: Int = 5, seed: UInt64 = 0) throws
        -> [BenchmarkRow] {
        guard voxels > 0, voxels <= 64 * 64 * 64 else { throw SparseTensorError("voxels must be in 1...262144, got \(voxels)") }
        guard iterations > 0 else { throw SparseTensorError("iterations must be > 0") }
        let clock = StageClock(device: device, iterations: iterations)
        let generator = try Generator(seed: seed, device: device)
        let coords = try blobVoxels(count: voxels, resolution: 64, device: device, generator: generator)
        var rows: [BenchmarkRow] = []
        func row(_ name: String, notes: String = "", _ body: () throws -> Void) throws {
            let m = try clock.median(body)
            rows.append(BenchmarkRow(name: name, milliseconds: m.ms, notes: notes))
        }
        try row("layout (validate coords)") { _ = try SparseLayout(coords: coords) }
        try row("layout + CFG copy (batch 2)") { _ = try SparseLayout.repeated(SparseLayout(coords: coords), copies: 2) }
        try row("neighbour map 64^3, batch 2") {
            _ = try SparseLayout.repeated(SparseLayout(coords: coords), copies: 2).neighbourMap()
        }
        try row("downsample map 64^3 -> 32^3, batch 2") {
            _ = try SparseLayout.repeated(SparseLayout(coords: coords), copies: 2).downsampling2()
        }
        let coarseCount = try SparseLayout(coords: coords).downsampling2().coarse.count
        try row("all SLat flow structures, batch 2", notes: "\(voxels) fine, \(coarseCount) coarse voxels/item") {
            let doubled = try SparseLayout.repeated(SparseLayout(coords: coords), copies: 2)
            _ = try doubled.neighbourMap()
            let coarse = try doubled.downsampling2().coarse
            _ = try coarse.neighbourMap()
            _ = try coarse.batchPacking()
        }
        let part = try SparseLayout(coords: coords).windowPartition(size: 8, shift: 4)
        try row("swin windows, shift 0 and 4", notes: "shift 4: \(part.windowCount) windows, longest \(part.maxLength)") {
            let layout = try SparseLayout(coords: coords)
            _ = try layout.windowPartition(size: 8, shift: 0)
            _ = try layout.windowPartition(size: 8, shift: 4)
        }

        let gaussians = voxels * 32
        func field(_ columns: Int) throws -> Tensor {
            try Tensor.randn([gaussians, columns], device: device, generator: generator) * 0.5
        }
        let layout = try SparseLayout(coords: coords)
        let splatInput = try TrellisGaussians(
            xyz: Tensor.rand([gaussians, 3], device: device, generator: generator),
            featuresDC: field(3).view([gaussians, 1, 3]), scaling: field(3), rotation: field(4), opacity: field(1),
            activation: GaussianActivation(minKernelSize: 0, scalingBias: 0.004, opacityBias: 0.1, softplusScaling: false),
            gaussiansPerVoxel: 32, voxelOffsets: layout.offsets)
        try row("save_ply fields on device", notes: "\(gaussians) Gaussians") { _ = try splatInput.plyFields() }
        try row("  of which quaternion round trip") {
            _ = try GaussianOutputRotation.savePlyQuaternions(splatInput.rotationWithBias(), orientation: .yDown)
        }
        try row("GaussianSplat (fields + host copies)") { _ = try splatInput.splat() }
        return rows
    }

    /// Multiply-adds x2 of the SLat transformer stack for the given coarse tokens per batch item.
    static func transformerFLOPs(config: SLatFlowConfig, tokensPerItem: [Int], contextTokens: Int) -> Double {
        let c = Double(config.modelChannels), cc = Double(config.condChannels), lc = Double(contextTokens)
        let hidden = Double(Int(Double(config.modelChannels) * config.mlpRatio))
        var total = 0.0
        for tokens in tokensPerItem {
            let l = Double(tokens)
            let selfAttn = 2 * l * c * 3 * c + 4 * l * l * c + 2 * l * c * c
            let crossAttn = 2 * l * c * c + 2 * lc * cc * 2 * c + 4 * l * lc * c + 2 * l * c * c
            let mlp = 2 * l * c * hidden * 2
            let modulation = 2 * c * 6 * c
            total += Double(config.numBlocks) * (selfAttn + crossAttn + mlp + modulation)
        }
        return total
    }

    /// The manifest's keys as random weights on the device, and its `args`.
    static func randomWeights(_ url: URL, device: Device, dtype: DType, seed: UInt64) throws -> (RandomWeights, [String: Any]) {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any]
        guard let args = json?["args"] as? [String: Any] else {
            throw WeightError.badConfig("manifest \(url.lastPathComponent) has no args")
        }
        return (try RandomWeights(manifest: ManifestWeights(url: url), device: device, dtype: dtype, seed: seed), args)
    }

    /// `count` voxels of a 64^3 grid forming thin shells around a few random overlapping spheres (a stand-in for
    /// the surface voxels of a generated object): the cells closest to the union's surface. Sorted (b, x, y, z).
    static func blobVoxels(count: Int, resolution r: Int, device: Device, generator: Generator) throws -> Tensor {
        let cells = try Tensor.arange(0, Double(r * r * r), dtype: .int64, device: device)
        let x = try cells.floorDividedInt(r * r), y = try cells.floorDividedInt(r) - cells.floorDividedInt(r * r).multipliedInt(r)
        let z = try cells - cells.floorDividedInt(r).multipliedInt(r)
        let p = try Tensor.stack([x, y, z], dim: 1).to(.float32)  // [R^3, 3]
        let blobs = 6
        let centres = try Tensor.rand([blobs, 3], device: device, generator: generator) * (Double(r) * 0.4) + Double(r) * 0.3
        let radii = try Tensor.rand([blobs], device: device, generator: generator) * (Double(r) * 0.12) + Double(r) * 0.1
        let distance = try (p.unsqueeze(1) - centres.unsqueeze(0)).norm(2, dims: [2]) - radii.unsqueeze(0)  // [R^3, K]
        let field = try distance.amin([1]).abs()
        let nearest = try field.neg().topk(count, dim: 0).indices
        let sorted = try nearest.sort(dim: 0).values
        let zeros = try Tensor.zeros([count], dtype: .int64, device: device)
        let sx = try sorted.floorDividedInt(r * r), sy = try sorted.floorDividedInt(r) - sorted.floorDividedInt(r * r).multipliedInt(r)
        let sz = try sorted - sorted.floorDividedInt(r).multipliedInt(r)
        return try Tensor.stack([zeros, sx, sy, sz], dim: 1).to(.int32)
    }
}

/// Host-clock timing around device synchronisation, with the peak memory of the measured work.
struct StageClock {
    let device: Device
    let iterations: Int

    struct Measurement {
        let ms: Double
        let memory: String
    }

    private func sync() throws { if case .cuda(let i) = device { try CUDA.synchronize(i) } }

    private func timed(_ body: () throws -> Void) throws -> Double {
        try sync()
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        try sync()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
    }

    private func memoryNote() throws -> String {
        guard case .cuda(let i) = device else { return "" }
        let s = try CUDA.memoryStats(i)
        return "peak " + GiB.text(s.peakAllocated)
    }

    private func resetPeak() throws { if case .cuda(let i) = device { try CUDA.resetPeakMemory(i) } }

    func once(_ body: () throws -> Void) throws -> Measurement {
        try resetPeak()
        let ms = try timed(body)
        return Measurement(ms: ms, memory: try memoryNote())
    }

    /// One warm-up run, then the median of `iterations` runs.
    func median(_ body: () throws -> Void) throws -> Measurement {
        try body()
        try resetPeak()
        var times: [Double] = []
        for _ in 0..<iterations { times.append(try timed(body)) }
        times.sort()
        return Measurement(ms: times[times.count / 2], memory: try memoryNote())
    }
}
