import Foundation
import Models
import NN
import PLY
import TorchShim

/// The end-to-end tiny TRELLIS run (`TrellisImageTo3DPipeline`): the checkpoints of the case folder loaded through
/// `TrellisImageTo3D.load` (the loader used for the real hub folder), fed the stored noises, down to the PLY.
/// Tolerances (fixture README): occupancy coordinates exact; sampler outputs 1e-3; Gaussian attributes and PLY
/// floats 1e-4, except PLY rotation components 5e-4 (save_ply's float32 quaternion recovery amplifies
/// differences near zero; quaternions compared up to sign).
public enum TrellisPipelineFixtures {
    public static let handlers: [String: FixtureHandler] = ["TrellisImageTo3DPipeline": run]

    static func run(_ c: FixtureCase) throws -> [TensorComparison] {
        let dinoFolder = c.url((c.json["dinov2_folder"] as? String) ?? "dinov2_tiny")
        let model = try TrellisImageTo3D.load(folder: c.directory, dinov2Folder: dinoFolder, device: .cpu, dtype: .float32)
        let io = try c.io()
        let dinoIO = try SafeTensorsFile(url: c.url("dinov2_tiny_io.safetensors"))
        var out: [TensorComparison] = []

        // Conditioning from pixels through our DINOv2, against the stored TRELLIS condition.
        let cond = try model.condition(pixelValues: dinoIO.tensor("pixel_values"))
        out.append(try .compare("cond", got: cond, expected: dinoIO.tensor("cond"), atol: 1e-4, rtol: 1e-4))

        let coords = try model.sampleStructure(cond: cond, noise: io.tensor("ss.noise"))
        out.append(try .exact("coords", got: coords, expected: io.tensor("coords")))

        let slat = try model.sampleLatent(coords: coords, cond: cond, noise: io.tensor("slat.noise.feats"))
        out.append(try .compare("slat.denorm.feats", got: slat.feats, expected: io.tensor("slat.denorm.feats"), atol: 1e-3))

        let g = try model.gaussianDecoder(slat)
        out.append(try .compare("gs.xyz", got: g.activatedXYZ(), expected: io.tensor("gs.xyz"), atol: 1e-4))
        out.append(try .compare("gs.features_dc", got: g.activatedFeaturesDC(), expected: io.tensor("gs.features_dc"), atol: 1e-4))
        out.append(try .compare("gs.opacity", got: g.activatedOpacity(), expected: io.tensor("gs.opacity"), atol: 1e-4))
        out.append(try .compare("gs.scaling", got: g.activatedScaling(), expected: io.tensor("gs.scaling"), atol: 1e-4))
        out.append(try .compare("gs.rotation", got: g.activatedRotation(), expected: io.tensor("gs.rotation"), atol: 1e-4))

        // The PLY as written, against the official save_ply bytes parsed back.
        let ours = try PLYReader.read(PLYWriter(includeNormals: true).encode(g.splat(orientation: .yDown)))
        let reference = try PLYReader.read(contentsOf: c.url("pipeline_out.ply"))
        func field(_ name: String, _ a: [Float], _ b: [Float], width: Int, atol: Double) throws -> TensorComparison {
            try .compare("ply.\(name)", got: Tensor(a, shape: [a.count / width, width]),
                         expected: Tensor(b, shape: [b.count / width, width]), atol: atol)
        }
        out.append(try field("xyz", ours.positions, reference.positions, width: 3, atol: 1e-4))
        out.append(try field("f_dc", ours.shDC, reference.shDC, width: 3, atol: 1e-4))
        out.append(try field("opacity", ours.opacities, reference.opacities, width: 1, atol: 1e-4))
        out.append(try field("scale", ours.scales, reference.scales, width: 3, atol: 1e-4))
        // Quaternions are equal up to sign.
        let q = try Tensor(ours.rotations, shape: [ours.count, 4]), r = try Tensor(reference.rotations, shape: [reference.count, 4])
        let sign = try (q * r).sum(1, keepDim: true).sign()
        out.append(try .compare("ply.rot (up to sign)", got: q * sign, expected: r, atol: 5e-4))
        return out
    }
}
