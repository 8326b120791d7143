import Splatting
import CLIPValidate
import XCTest

final class SplatChecksTests: XCTestCase {
    /// n Gaussians spread on a line, opacity 0.5, rotations turning slowly (not identity).
    private func splat(count n: Int, opacity: (Int) -> Float = { _ in 0.5 },
                       rotation: (Int) -> [Float] = { i in [1, Float(i % 7) * 0.01, 0, 0] },
                       position: (Int) -> [Float] = { i in [Float(i) * 1e-3, 0, 0] }) throws -> ActivatedSplat {
        try ActivatedSplat(positions: (0..<n).flatMap(position), colors: Array(repeating: 0.5, count: 3 * n),
                           opacities: (0..<n).map(opacity), scales: Array(repeating: 0.01, count: 3 * n),
                           rotations: (0..<n).flatMap(rotation))
    }

    func testAReasonableSplatPasses() throws {
        let result = SplatChecks.run(try splat(count: 7000))
        XCTAssertTrue(result.passed, "\(result.failures)")
        XCTAssertNil(result.firstFailure)
    }

    func testTooFewGaussiansFails() throws {
        let result = SplatChecks.run(try splat(count: 6999))
        XCTAssertEqual(result.failures, [.tooFewGaussians(count: 6999, minimum: 7000)])
        XCTAssertTrue(result.firstFailure!.description.contains("6999"))
    }

    func testMostlyTransparentFailsAboveEightyPercent() throws {
        let atLimit = SplatChecks.run(try splat(count: 10_000, opacity: { $0 < 8000 ? 1e-4 : 0.5 }))
        XCTAssertTrue(atLimit.passed, "exactly 80% is allowed")
        let over = SplatChecks.run(try splat(count: 10_000, opacity: { $0 < 8001 ? 1e-4 : 0.5 }))
        XCTAssertEqual(over.failures.count, 1)
        guard case let .mostlyTransparent(percent, limit)? = over.firstFailure else {
            return XCTFail("expected mostlyTransparent, got \(over.failures)")
        }
        XCTAssertEqual(percent, 80.01, accuracy: 1e-9)
        XCTAssertEqual(limit, 80)
        let justAbove = SplatChecks.run(try splat(count: 10_000, opacity: { $0 < 9000 ? 1e-3 : 0.5 }))
        XCTAssertTrue(justAbove.passed, "opacity 1e-3 itself is not transparent")
    }

    func testAllIdentityRotationsFail() throws {
        let identity = SplatChecks.run(try splat(count: 7000, rotation: { _ in [1, 0, 0, 0] }))
        XCTAssertEqual(identity.failures, [.allRotationsIdentity])
        let nearlyIdentity = SplatChecks.run(try splat(count: 7000, rotation: { _ in [1, 5e-9, 0, 0] }))
        XCTAssertEqual(nearlyIdentity.failures, [.allRotationsIdentity], "torch.allclose tolerance")
        let oneTurned = SplatChecks.run(try splat(count: 7000, rotation: { $0 == 6999 ? [0, 1, 0, 0] : [1, 0, 0, 0] }))
        XCTAssertTrue(oneTurned.passed)
    }

    func testLeadingCentreAtOnesFails() throws {
        let result = SplatChecks.run(try splat(count: 7000, position: { $0 == 1 ? [1, 1, 1] : [Float($0) * 1e-3, 0, 0] }))
        XCTAssertEqual(result.failures, [.leadingCentreAtOnes(index: 1)])
        let later = SplatChecks.run(try splat(count: 7000, position: { $0 == 3 ? [1, 1, 1] : [Float($0) * 1e-3, 0, 0] }))
        XCTAssertTrue(later.passed, "only the first three centres are looked at")
    }

    func testEveryFailureIsReportedInTheValidatorsOrder() throws {
        let result = SplatChecks.run(try splat(count: 10, opacity: { _ in 0 }, rotation: { _ in [1, 0, 0, 0] },
                                               position: { _ in [1, 1, 1] }))
        XCTAssertEqual(result.failures, [.tooFewGaussians(count: 10, minimum: 7000), .leadingCentreAtOnes(index: 0),
                                         .mostlyTransparent(transparentPercent: 100, limitPercent: 80),
                                         .allRotationsIdentity])
        XCTAssertEqual(result.firstFailure, .tooFewGaussians(count: 10, minimum: 7000))
        let empty = SplatChecks.run(try ActivatedSplat(positions: [], colors: [], opacities: [], scales: [], rotations: []))
        XCTAssertEqual(empty.failures, [.tooFewGaussians(count: 0, minimum: 7000)])
    }
}
