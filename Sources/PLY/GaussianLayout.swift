/// Where each Gaussian field sits in a row of floats laid out in 3DGS PLY order:
/// `x y z [nx ny nz] f_dc_0..2 [f_rest_*] opacity scale_0..2 rot_0..3`.
/// The writer emits rows in exactly this order; the reader gathers any file into it.
package struct GaussianLayout: Equatable {
    let hasNormals: Bool
    let shDegree: Int

    package init(hasNormals: Bool, shDegree: Int) {
        self.hasNormals = hasNormals
        self.shDegree = shDegree
    }

    var restCount: Int { GaussianSplat.restCount(degree: shDegree) }
    var positionColumn: Int { 0 }
    var normalColumn: Int { 3 }
    var dcColumn: Int { hasNormals ? 6 : 3 }
    var restColumn: Int { dcColumn + 3 }
    var opacityColumn: Int { restColumn + restCount }
    var scaleColumn: Int { opacityColumn + 1 }
    var rotationColumn: Int { scaleColumn + 3 }
    var columnCount: Int { rotationColumn + 4 }

    /// Property names in column order.
    var propertyNames: [String] {
        var names = ["x", "y", "z"]
        if hasNormals { names += ["nx", "ny", "nz"] }
        names += (0..<3).map { "f_dc_\($0)" }
        names += (0..<restCount).map { "f_rest_\($0)" }
        names.append("opacity")
        names += (0..<3).map { "scale_\($0)" }
        names += (0..<4).map { "rot_\($0)" }
        return names
    }

    /// Names every 3DGS PLY must have, whatever its normals and SH degree.
    static let requiredNames: [String] = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
                                          "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
}

extension GaussianSplat {
    /// Checks that every array length agrees with `count` and the SH degree.
    public func validateLayout() throws {
        guard (0...3).contains(shDegree) else {
            throw PLYError.invalidSplat("SH degree \(shDegree) is outside 0...3")
        }
        let n = count
        func check(_ name: String, _ actual: Int, _ perGaussian: Int) throws {
            let (expected, overflow) = n.multipliedReportingOverflow(by: perGaussian)
            guard !overflow, actual == expected else {
                throw PLYError.invalidSplat("\(name) has \(actual) values, expected \(perGaussian) per Gaussian for \(n) Gaussians")
            }
        }
        try check("positions", positions.count, 3)
        if let normals { try check("normals", normals.count, 3) }
        try check("shDC", shDC.count, 3)
        try check("shRest", shRest.count, GaussianSplat.restCount(degree: shDegree))
        try check("scales", scales.count, 3)
        try check("rotations", rotations.count, 4)
    }
}
