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
