import Foundation
import XCTest
import Models
import NN
import Pipeline
import TorchShim

/// Parity of the dense TRELLIS networks and DINOv2 with the oracle fixtures (fixtures/trellis/README.md).
/// Tolerances (README): single networks atol 1e-4 + rtol 1e-4; sampler outputs atol 1e-3; occupancy coordinates exact.
final class TrellisDenseTests: XCTestCase {
    func fixtureCase(_ stem: String) throws -> FixtureCase {
        let dir = try TrellisDenseFixturePaths.trellis()
        let cases = try FixtureRunner().discover(dir)
        return try XCTUnwrap(cases.first { $0.stem == stem }, "fixture case \(stem) not found in \(dir.path)")
    }

    /// Runs a case through the registered selftest handler, prints the comparisons and asserts they all pass.
    @discardableResult
    func runRegistered(_ stem: String, expecting names: [String]) throws -> FixtureResult {
        let result = FixtureRunner().run(try fixtureCase(stem))
        print("\(stem): \(result.seconds) s")
        result.comparisons.forEach { print("  \($0)") }
        XCTAssertNil(result.error, result.error ?? "")
        XCTAssertTrue(result.passed)
        let compared = Set(result.comparisons.map(\.name))
        for name in names { XCTAssertTrue(compared.contains(name), "\(stem): \(name) was not compared") }
        return result
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
