import Foundation
import Models
import ModelStore
import NN
import TorchShim
import XCTest
@testable import Pipeline

/// The GPU memory plan: the tier each card size gets, what it changes, and its estimates; and T5 streamed from host
/// memory (the 24 GB plan's lever) giving exactly the resident encoder's output.
final class MemoryPlanTests: XCTestCase {
    let gib: Int64 = 1_073_741_824

    func testTierByCardSize() {
        let h100 = MemoryPlan.choose(device: .cuda(0), budgetBytes: 80 * gib)
        XCTAssertEqual(h100.tier, .resident)
        XCTAssertFalse(h100.fluxFloat8)
        XCTAssertFalse(h100.t5StreamedFromHost)
        // An RTX 4090 reports 23.99 GiB.
        let rtx4090 = MemoryPlan.choose(device: .cuda(0), budgetBytes: 25_757_220_864)
        XCTAssertEqual(rtx4090.tier, .compact)
        XCTAssertTrue(rtx4090.fluxFloat8)
        XCTAssertTrue(rtx4090.t5StreamedFromHost)
        XCTAssertTrue(rtx4090.loadsTextToImage)
        XCTAssertEqual(rtx4090.backgroundBatch, 1)
        XCTAssertEqual(h100.backgroundBatch, 4)
        let small = MemoryPlan.choose(device: .cuda(0), budgetBytes: 16 * gib)
        XCTAssertEqual(small.tier, .imageOnly)
        XCTAssertFalse(small.loadsTextToImage)
        XCTAssertEqual(MemoryPlan.choose(device: .cpu, budgetBytes: nil).tier, .host)
        XCTAssertEqual(MemoryPlan.choose(device: .cpu, budgetBytes: 80 * gib, requested: .resident).tier, .host)
        let named = MemoryPlan.choose(device: .cuda(0), budgetBytes: 80 * gib, requested: .compact)
        XCTAssertEqual(named.tier, .compact)
        XCTAssertTrue(named.reason.contains("named"))
    }

    /// The estimates say what the plan is for: the resident set does not fit a 24 GB card, the 24gb plan does.
    func testEstimatesJustifyThe24GBPlan() throws {
        let models = PipelineAssembly.models(generators: [.trellis])
        let flux = try XCTUnwrap(ModelRegistry.model(named: "flux1-schnell"))
        let resident = MemoryPlan.choose(device: .cuda(0), budgetBytes: 80 * gib)
        let compact = MemoryPlan.choose(device: .cuda(0), budgetBytes: 24 * gib)
        let fluxResident = Double(resident.estimatedWeightBytes(flux)) / Double(gib)
        let fluxCompact = Double(compact.estimatedWeightBytes(flux)) / Double(gib)
        XCTAssertEqual(fluxResident, 31.6, accuracy: 0.3)      // 12B transformer + 4.76B T5 + CLIP + VAE, 2 bytes each
        XCTAssertEqual(fluxCompact, 12.2, accuracy: 0.3)       // fp8 transformer + T5 embedding and one block
        XCTAssertGreaterThan(resident.estimatedPeakBytes(models: models), 24 * gib)
        XCTAssertLessThan(compact.estimatedPeakBytes(models: models), 22 * gib)
        XCTAssertEqual(MemoryPlan.choose(device: .cuda(0), budgetBytes: 16 * gib).estimatedWeightBytes(flux), 0)
        XCTAssertEqual(PipelineAssembly.models(generators: [.trellis, .lgm]).count, models.count + 3)

        let json = MemoryPlanReport.json(compact, resident: ResidentSizes(device: .cpu), models: models)
        XCTAssertEqual(json["plan"] as? String, "24gb")
        XCTAssertEqual(json["estimate_fits"] as? Bool, true)
        XCTAssertEqual(json["budget_gib"] as? Double, 24)
        XCTAssertTrue(MemoryPlanReport.lines(compact, resident: ResidentSizes(device: .cpu))[0].hasPrefix("memory plan: 24gb"))
    }

    /// A 24 GB card takes FLUX fp8 and one generator; a second one is left out (its jobs answer 503) rather than
    /// making every job run out of memory.
    func testAdmissionOfSeveralGenerators() {
        let card24 = MemoryPlan.choose(device: .cuda(0), budgetBytes: 24 * gib)
        XCTAssertEqual(card24.admit(generators: [.trellis, .lgm]).load, [.trellis])
        XCTAssertEqual(card24.admit(generators: [.trellis, .lgm]).dropped, [.lgm])
        XCTAssertEqual(card24.admit(generators: [.lgm, .trellis]).load, [.lgm])
        let h100 = MemoryPlan.choose(device: .cuda(0), budgetBytes: 80 * gib)
        XCTAssertEqual(h100.admit(generators: [.trellis, .lgm]).load, [.trellis, .lgm])
        XCTAssertEqual(MemoryPlan.choose(device: .cpu, budgetBytes: nil).admit(generators: [.lgm, .trellis]).load, [.lgm, .trellis])
        // The first generator is loaded even where the estimate says it will not fit: the operator named it.
        XCTAssertEqual(MemoryPlan.choose(device: .cuda(0), budgetBytes: 8 * gib).admit(generators: [.trellis]).load, [.trellis])
    }

    /// Blocks streamed from host memory compute exactly what resident blocks compute, and every key is still taken.
    func testStreamedT5MatchesResident() throws {
        let config = T5EncoderModel.Config(vocabSize: 64, dModel: 32, dKV: 8, dFF: 48, numLayers: 3, numHeads: 4,
                                           feedForwardProj: "gated-gelu")
        let shapes = try config.parameterShapes()
        let source = try RandomWeights(shapes.mapValues { TensorInfo(dtype: .float32, shape: $0) }, device: .cpu,
                                       dtype: .float32, seed: 9)
        let materialised = TensorDictionary(Dictionary(uniqueKeysWithValues: try source.keys.map { ($0, try source.tensor($0)) }))
        let residentLoader = WeightLoader(materialised)
        let resident = try T5EncoderModel(residentLoader, config: config)
        try residentLoader.checkAllUsed()
        let streamedLoader = WeightLoader(materialised)
        let streamed = try T5EncoderModel(streamedLoader, config: config, blockResidency: .streamedFromHost)
        try streamedLoader.checkAllUsed()
        XCTAssertEqual(streamed.blockResidency, .streamedFromHost)

        let ids = try Tensor([Int64]([5, 9, 1, 63, 0, 17, 2]), shape: [1, 7])
        let a = try resident(ids), b = try streamed(ids)
        XCTAssertEqual(a.shape, [1, 7, 32])
        XCTAssertEqual(try (a - b).abs().max().item(), 0, "same weights, same kernels: bit-identical")

        // A misshapen block weight is caught when the streamed model loads, not at the first prompt.
        var broken = materialised.tensors
        broken["encoder.block.1.layer.1.DenseReluDense.wo.weight"] = try Tensor.zeros([32, 47])
        XCTAssertThrowsError(try T5EncoderModel(WeightLoader(TensorDictionary(broken)), config: config,
                                                blockResidency: .streamedFromHost))
    }
}
