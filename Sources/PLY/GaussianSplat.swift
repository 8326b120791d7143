/// A set of 3D Gaussians in the stored (pre-activation) form of a 3DGS PLY file:
/// opacity as a logit, scale as log, rotation as a quaternion (w, x, y, z), colour as SH coefficients.
/// Every array is flat, Gaussian-major (`positions[3*i ..< 3*i+3]` belongs to Gaussian `i`).
public struct GaussianSplat: Sendable, Equatable {
    public var positions: [Float]      // count * 3
    public var normals: [Float]?       // count * 3, or nil when the file has none
    public var shDC: [Float]           // count * 3  (f_dc_0..2)
    public var shRest: [Float]         // count * 3 * ((degree+1)^2 - 1), in PLY f_rest_* order
    public var shDegree: Int           // 0...3
    public var opacities: [Float]      // count, logit
    public var scales: [Float]         // count * 3, log
    public var rotations: [Float]      // count * 4, (w, x, y, z), not necessarily normalised

    public var count: Int { opacities.count }

    /// Number of `f_rest_*` values per Gaussian for an SH degree.
    public static func restCount(degree: Int) -> Int { 3 * ((degree + 1) * (degree + 1) - 1) }

    public init(positions: [Float], normals: [Float]? = nil, shDC: [Float], shRest: [Float] = [],
                shDegree: Int = 0, opacities: [Float], scales: [Float], rotations: [Float]) {
        self.positions = positions
        self.normals = normals
        self.shDC = shDC
        self.shRest = shRest
        self.shDegree = shDegree
        self.opacities = opacities
        self.scales = scales
        self.rotations = rotations
    }
}
