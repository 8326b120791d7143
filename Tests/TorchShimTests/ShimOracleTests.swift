import Foundation
import XCTest
@testable import TorchShim

/// Every shim op against PyTorch's own output on the same inputs (scripts/make_shim_oracle.py, torch 2.13 CPU fp32).
/// Tolerance: 1e-5 absolute + 1e-5 relative (the same kernels run on both sides; only threading order differs).
final class ShimOracleTests: XCTestCase {
    static let oracle: SafeTensorsFile = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Resources/shim_oracle.safetensors")
        return try! SafeTensorsFile(url: url)
    }()

    func input(_ name: String) throws -> Tensor { try Self.oracle.tensor("in.\(name)") }

    func check(_ name: String, _ got: Tensor, atol: Double = 1e-5, rtol: Double = 1e-5,
               file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try Self.oracle.tensor("out.\(name)")
        XCTAssertEqual(got.shape, expected.shape, "\(name): shape", file: file, line: line)
        guard got.shape == expected.shape else { return }
        if !expected.dtype.isFloatingPoint {
            XCTAssertTrue(try got.to(expected.dtype).equal(expected), "\(name): integer values differ", file: file, line: line)
            return
        }
        let g = try got.to(.float64), e = try expected.to(.float64)
        let finite = try e.isfinite()
        XCTAssertTrue(try g.isfinite().equal(finite), "\(name): non-finite pattern differs", file: file, line: line)
        let diff = try (g - e).abs().maskedFill(finite.logicalNot(), 0)
        let bound = try e.abs().maskedFill(finite.logicalNot(), 0) * rtol + atol
        let worst = try diff.max().item()
        XCTAssertTrue(try diff.le(bound).all().item() != 0, "\(name): max abs error \(worst)", file: file, line: line)
    }

    func testElementwise() throws {
        let x = try input("x"), y = try input("y"), pos = try input("pos")
        try check("add", x + y)
        try check("sub", x - y)
        try check("mul", x * y)
        try check("div", x / (y.abs() + 0.5))
        try check("add_s", x + 2.5)
        try check("rsub_s", 2.5 - x)
        try check("rdiv_s", 3.0 / (x.abs() + 0.5))
        let b3 = try input("bias3").reshape([1, 3, 1, 1])
        try check("mul_bcast", x * b3.expand([2, 3, 4, 5]).slice(2, 0, 1).slice(3, 0, 1))
        try check("exp", x.exp())
        try check("log", pos.log())
        try check("sqrt", pos.sqrt())
        try check("rsqrt", pos.rsqrt())
        try check("sin", x.sin())
        try check("cos", x.cos())
        try check("tanh", x.tanh())
        try check("sigmoid", x.sigmoid())
        try check("relu", x.relu())
        try check("silu", x.silu())
        try check("gelu", x.gelu())
        try check("gelu_tanh", x.gelu(approximate: true))
        try check("softplus", x.softplus(beta: 2, threshold: 5))
        try check("erf", x.erf())
        try check("pow", pos.pow(1.7))
        try check("clamp", x.clamp(min: -0.5, max: 0.7))
        try check("nan_to_num", input("nan").nanToNum(nan: 0, posinf: 9, neginf: -9))
        try check("where", Tensor.where(input("mask"), x, y))
        try check("normalize", F.normalize(x, dim: -1))
    }

    func testLinearAlgebra() throws {
        let a = try input("a"), b = try input("b")
        try check("matmul", a .* b)
        try check("linear", F.linear(a, b.mT, input("bias3")))
        try check("bmm", input("ba").bmm(input("bb")))
        try check("baddbmm", input("bself").baddbmm(input("ba"), input("bb"), beta: 0.5, alpha: 2))
        try check("einsum", Tensor.einsum("bij,bjk->bik", [input("ba"), input("bb")]))
    }

    func testConvolutionsAndNorms() throws {
        let img = try input("img")
        try check("conv2d", F.conv2d(img, input("w2"), input("b6"), stride: [2], padding: [1]))
        try check("conv2d_groups", F.conv2d(img, input("wg"), nil, padding: [1, 2], dilation: [1, 2], groups: 2))
        try check("conv3d", F.conv3d(input("vol"), input("w3"), padding: [1]))
        try check("conv1d", F.conv1d(input("seq"), input("w1"), padding: 1))
        try check("conv_transpose2d", F.convTranspose2d(img, input("wt2"), stride: [2], padding: [1], outputPadding: [1]))
        try check("group_norm", F.groupNorm(img, groups: 2, weight: input("g4"), bias: input("b4")))
        let x = try input("x")
        try check("layer_norm", F.layerNorm(x, shape: [5], weight: input("g5"), bias: input("b5"), eps: 1e-6))
        try check("rms_norm", F.rmsNorm(x, shape: [5], weight: input("g5"), eps: 1e-6))
        try check("batch_norm", F.batchNorm(img, mean: input("rm"), variance: input("rv"), weight: input("g4"), bias: input("b4")))
        try check("softmax", F.softmax(x, dim: -1))
        try check("log_softmax", F.logSoftmax(x, dim: 1))
    }

    func testAttention() throws {
        let q = try input("q"), k = try input("k"), v = try input("v")
        try check("sdpa", F.scaledDotProductAttention(q, k, v))
        try check("sdpa_mask", F.scaledDotProductAttention(q, k, v, mask: input("amask")))
        try check("sdpa_causal", F.scaledDotProductAttention(q, q, q, isCausal: true))
    }

    func testResampling() throws {
        let img = try input("img")
        try check("interp_nearest", F.interpolate(img, size: [13, 7], mode: .nearest))
        try check("interp_bilinear", F.interpolate(img, size: [13, 7], mode: .bilinear))
        try check("interp_bilinear_ac", F.interpolate(img, size: [13, 7], mode: .bilinear, alignCorners: true))
        try check("interp_bicubic", F.interpolate(img, size: [13, 17], mode: .bicubic))
        try check("interp_bicubic_aa", F.interpolate(img, size: [5, 6], mode: .bicubic, antialias: true))
        try check("interp_bilinear_aa", F.interpolate(img, size: [5, 6], mode: .bilinear, antialias: true))
        try check("interp_area", F.interpolate(img, size: [3, 4], mode: .area))
        try check("interp_trilinear", F.interpolate(input("vol"), size: [7, 3, 9], mode: .trilinear))
        try check("grid_sample", F.gridSample(img, grid: input("grid")))
        try check("grid_sample_border", F.gridSample(img, grid: input("grid"), padding: .border, alignCorners: true))
        try check("pad_constant", F.pad(img, [1, 2, 3, 0], value: 0.5))
        try check("pad_reflect", F.pad(img, [2, 1, 1, 2], mode: .reflect))
        try check("pad_replicate", F.pad(img, [2, 1, 1, 2], mode: .replicate))
        try check("max_pool", F.maxPool(img, kernel: [3, 3], stride: [2, 2], padding: [1, 1]))
        try check("avg_pool", F.avgPool(img, kernel: [2, 2]))
        try check("adaptive_avg_pool", F.adaptiveAvgPool(img, outputSize: [1, 1]))
        try check("pixel_shuffle", F.pixelShuffle(img, 2))
        try check("unfold", F.unfold(img, kernel: [3, 3], padding: [1, 1]))
    }

    func testReductions() throws {
        let x = try input("x")
        try check("sum_dims", x.sum([1, 3]))
        try check("sum_all", x.sum())
        try check("mean_keep", x.mean(2, keepDim: true))
        try check("var", x.variance([1]))
        try check("std", x.std([2, 3], correction: 0))
        try check("amax", x.amax([-1]))
        try check("amin", x.amin([0, 2]))
        let m = try x.max(2)
        try check("max_dim_values", m.values)
        try check("max_dim_indices", m.indices)
        try check("argmax", x.argmax(-1))
        try check("logsumexp", x.logsumexp([3]))
        try check("norm", x.norm(2, dims: [-1]))
        let tk = try x.topk(2, dim: -1)
        try check("topk_values", tk.values)
        try check("topk_indices", tk.indices)
        try check("sort_values", x.sort(dim: -1).values)
        try check("argsort", x.argsort(dim: -1, descending: true))
        try check("cumsum", x.cumsum(1))
        try check("nonzero", input("mask").nonzero())
        let u = try input("ints").unique(returnInverse: true, returnCounts: true)
        try check("unique", u.values)
        try check("unique_inverse", XCTUnwrap(u.inverse))
        try check("unique_counts", XCTUnwrap(u.counts))
    }

    func testViewsAndIndexing() throws {
        let x = try input("x"), y = try input("y"), idx = try input("idx"), a = try input("a")
        try check("index_select", x.indexSelect(2, idx.slice(0, 0, 3)))
        try check("gather", x.gather(3, input("gidx")))
        try check("scatter_add", Tensor.zeros([2, 3, 4, 5]).scatterAdd(3, input("gidx"), x))
        try check("index_add", Tensor.zeros([4, 6]).indexAdd(0, idx, a))
        try check("masked_fill", x.maskedFill(input("mask"), -1))
        try check("permute", x.permute([3, 1, 0, 2]))
        try check("transpose", x.transpose(1, 3))
        try check("slice", x.slice(1, 1, 3).slice(2, 0, Int.max, step: 2).slice(3, 1))
        try check("select", x.select(2, 1))
        try check("narrow", x.narrow(3, start: 1, length: 3))
        try check("flip", x.flip([1, 3]))
        try check("roll", x.roll([1, -2], dims: [2, 3]))
        try check("repeat", a.repeated([2, 3]))
        try check("repeat_interleave", a.repeatInterleave(2, dim: 0))
        try check("expand", input("bias3").unsqueeze(0).expand([4, 3]))
        try check("cat", Tensor.cat([x, y], dim: 2))
        try check("stack", Tensor.stack([x, y], dim: 1))
        try check("tril", a.tril())
        try check("triu", a.triu(1))
        try check("advanced_index", x.index([idx.slice(0, 1, 3), nil, idx.slice(0, 2)]))
        try check("index_put_acc", Tensor.zeros([4, 6]).indexPut([idx], a, accumulate: true))
        try check("chunk1", x.chunk(3, dim: 1)[1])
        try check("split_last", x.split(2, dim: 3)[2])
        try check("arange", Tensor.arange(2, 11, step: 3, dtype: .float32))
        try check("linspace", Tensor.linspace(-1, 1, steps: 7))
    }

    func testRandomNumbersMatchTorch() throws {
        try Torch.manualSeed(42)
        try check("randn_seed42", Tensor.randn([3, 4]), atol: 0, rtol: 0)
        try check("rand_seed42_after", Tensor.rand([5]), atol: 0, rtol: 0)
        let g = try Generator(seed: 7)
        try check("randn_gen7", Tensor.randn([1, 8, 4, 4, 4], generator: g), atol: 0, rtol: 0)
        try check("randint_gen7_after", Tensor.randint(0, 100, shape: [6], generator: g))
    }
}
