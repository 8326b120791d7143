import Foundation
import Splatting

/// One reason the validator refuses a splat before rendering it (three-gen-subnet
/// `is_input_data_valid`, on the loaded, activated data).
public enum SplatCheckFailure: Equatable, Sendable, CustomStringConvertible {
    /// Fewer Gaussians than the validator's minimum.
    case tooFewGaussians(count: Int, minimum: Int)
    /// One of the first three centres is (1, 1, 1) within torch.allclose tolerance: a quirk of the
    /// validator's centroid check, mirrored as written.
    case leadingCentreAtOnes(index: Int)
    /// More than the allowed share of Gaussians is practically invisible (opacity < 1e-3 after sigmoid).
    case mostlyTransparent(transparentPercent: Double, limitPercent: Double)
    /// Every rotation is the identity quaternion (within torch.allclose tolerance) after normalisation.
    case allRotationsIdentity

    public var description: String {
        switch self {
        case let .tooFewGaussians(count, minimum):
            return "too few Gaussians: \(count) < \(minimum)"
        case let .leadingCentreAtOnes(index):
            return "Gaussian \(index) sits at (1, 1, 1), which the validator's centroid check rejects"
        case let .mostlyTransparent(percent, limit):
            return "\(String(format: "%.1f", percent))% of Gaussians have opacity < 1e-3 (limit \(limit)%)"
        case .allRotationsIdentity:
            return "every rotation is the identity quaternion"
        }
    }
}

public struct SplatCheckResult: Equatable, Sendable {
    /// Every failed check, in the validator's order; the validator stops at the first.
    public let failures: [SplatCheckFailure]
    public var passed: Bool { failures.isEmpty }
    public var firstFailure: SplatCheckFailure? { failures.first }
}

/// The validator's data checks. The validator's scale check counts `torch.all(scales < 0.05)` (one
/// boolean for the whole tensor) as a percentage of N, which cannot exceed 80% once N >= 7000, so it
/// never rejects anything and is not repeated here; neither is its GPU-memory check.
public enum SplatChecks {
    public static let minimumGaussians = 7000
    public static let transparentOpacity: Float = 1e-3
    public static let transparentLimitPercent = 80.0

    public static func run(_ splat: ActivatedSplat) -> SplatCheckResult {
        var failures: [SplatCheckFailure] = []
        let n = splat.count
        if n < minimumGaussians {
            failures.append(.tooFewGaussians(count: n, minimum: minimumGaussians))
        }
        for i in 0..<min(3, n) {
            let p = splat.positions[(3 * i)..<(3 * i + 3)]
            if p.allSatisfy({ isClose($0, 1) }) {
                failures.append(.leadingCentreAtOnes(index: i))
                break
            }
        }
        if n > 0 {
            let transparent = splat.opacities.reduce(0) { $0 + ($1 < transparentOpacity ? 1 : 0) }
            let percent = 100 * Double(transparent) / Double(n)
            if percent > transparentLimitPercent {
                failures.append(.mostlyTransparent(transparentPercent: percent, limitPercent: transparentLimitPercent))
            }
            let identity: [Float] = [1, 0, 0, 0]
            let allIdentity = splat.rotations.indices.allSatisfy { isClose(splat.rotations[$0], identity[$0 % 4]) }
            if allIdentity {
                failures.append(.allRotationsIdentity)
            }
        }
        return SplatCheckResult(failures: failures)
    }

    /// torch.isclose with its defaults: |a - b| <= 1e-8 + 1e-5 * |b|; NaN is never close.
    @inline(__always)
    static func isClose(_ a: Float, _ b: Float) -> Bool {
        abs(a - b) <= 1e-8 + 1e-5 * abs(b)
    }
}
