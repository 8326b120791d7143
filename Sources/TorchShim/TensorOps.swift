import CTorchShim

private func i64(_ a: [Int]) -> [Int64] { a.map(Int64.init) }

/// Collects tensors written by a list-returning shim call.
private func tensorList(capacity: Int, _ body: (UnsafeMutablePointer<OpaquePointer?>, Int32,
                                               UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32) throws -> [Tensor] {
    var out = [OpaquePointer?](repeating: nil, count: max(capacity, 1))
    let n = try checked { body(&out, Int32(capacity), $0) }
    guard n >= 0 else { throw TorchError("list operation failed") }
    return out.prefix(Int(n)).map { Tensor(handle: $0!) }
}

private func handles(_ ts: [Tensor]) -> [OpaquePointer?] { ts.map { $0.handle } }

// MARK: - views and indexing

extension Tensor {
    public func reshape(_ shape: [Int]) throws -> Tensor {
        let s = i64(shape)
        return try tensorCall { ts_reshape(handle, s, Int32(s.count), $0) }
    }

    public func view(_ shape: [Int]) throws -> Tensor {
        let s = i64(shape)
        return try tensorCall { ts_view(handle, s, Int32(s.count), $0) }
    }

    public func permute(_ dims: [Int]) throws -> Tensor {
        let d = i64(dims)
        return try tensorCall { ts_permute(handle, d, Int32(d.count), $0) }
    }

    public func transpose(_ d0: Int, _ d1: Int) throws -> Tensor {
        try tensorCall { ts_transpose(handle, Int64(d0), Int64(d1), $0) }
    }

    /// Matrix transpose of the last two dimensions.
    public var mT: Tensor { get throws { try transpose(-2, -1) } }

    public func narrow(_ dim: Int, start: Int, length: Int) throws -> Tensor {
        try tensorCall { ts_narrow(handle, Int64(dim), Int64(start), Int64(length), $0) }
    }

    /// Python-style slice `t[..., start:end:step, ...]` along `dim` (end may exceed the size; negatives count back).
    public func slice(_ dim: Int, _ start: Int = 0, _ end: Int = Int.max, step: Int = 1) throws -> Tensor {
        try tensorCall { ts_slice(handle, Int64(dim), Int64(start), Int64(clamping: end), Int64(step), $0) }
    }

    public func select(_ dim: Int, _ index: Int) throws -> Tensor {
        try tensorCall { ts_select(handle, Int64(dim), Int64(index), $0) }
    }

    public func squeeze(_ dim: Int) throws -> Tensor { try tensorCall { ts_squeeze(handle, Int64(dim), $0) } }
    public func unsqueeze(_ dim: Int) throws -> Tensor { try tensorCall { ts_unsqueeze(handle, Int64(dim), $0) } }

    public func flatten(_ startDim: Int = 0, _ endDim: Int = -1) throws -> Tensor {
        try tensorCall { ts_flatten(handle, Int64(startDim), Int64(endDim), $0) }
    }

    public func expand(_ shape: [Int]) throws -> Tensor {
        let s = i64(shape)
        return try tensorCall { ts_expand(handle, s, Int32(s.count), $0) }
    }

    public func expand(as other: Tensor) throws -> Tensor { try expand(other.shape) }

    public func repeated(_ repeats: [Int]) throws -> Tensor {
        let r = i64(repeats)
        return try tensorCall { ts_repeat(handle, r, Int32(r.count), $0) }
    }

    public func repeatInterleave(_ repeats: Int, dim: Int) throws -> Tensor {
        try tensorCall { ts_repeat_interleave(handle, Int64(repeats), Int64(dim), $0) }
    }

    public func repeatInterleave(_ repeats: Tensor, dim: Int) throws -> Tensor {
        try tensorCall { ts_repeat_interleave_t(handle, repeats.handle, Int64(dim), $0) }
    }

    public func flip(_ dims: [Int]) throws -> Tensor {
        let d = i64(dims)
        return try tensorCall { ts_flip(handle, d, Int32(d.count), $0) }
    }

    public func roll(_ shifts: [Int], dims: [Int]) throws -> Tensor {
        precondition(shifts.count == dims.count, "roll: one shift per dim")
        let s = i64(shifts), d = i64(dims)
        return try tensorCall { ts_roll(handle, s, d, Int32(d.count), $0) }
    }

    public func tril(_ diagonal: Int = 0) throws -> Tensor { try tensorCall { ts_tril(handle, Int64(diagonal), $0) } }
    public func triu(_ diagonal: Int = 0) throws -> Tensor { try tensorCall { ts_triu(handle, Int64(diagonal), $0) } }

    public func indexSelect(_ dim: Int, _ index: Tensor) throws -> Tensor {
        try tensorCall { ts_index_select(handle, Int64(dim), index.handle, $0) }
    }

    public func gather(_ dim: Int, _ index: Tensor) throws -> Tensor {
        try tensorCall { ts_gather(handle, Int64(dim), index.handle, $0) }
    }

    public func scatter(_ dim: Int, _ index: Tensor, _ src: Tensor) throws -> Tensor {
        try tensorCall { ts_scatter(handle, Int64(dim), index.handle, src.handle, $0) }
    }

    public func scatterAdd(_ dim: Int, _ index: Tensor, _ src: Tensor) throws -> Tensor {
        try tensorCall { ts_scatter_add(handle, Int64(dim), index.handle, src.handle, $0) }
    }

    public enum ScatterReduction: String { case sum, prod, mean, amax, amin }

    public func scatterReduce(_ dim: Int, _ index: Tensor, _ src: Tensor, _ reduce: ScatterReduction,
                              includeSelf: Bool = true) throws -> Tensor {
        try tensorCall { ts_scatter_reduce(handle, Int64(dim), index.handle, src.handle, reduce.rawValue, includeSelf ? 1 : 0, $0) }
    }

    public func indexAdd(_ dim: Int, _ index: Tensor, _ src: Tensor) throws -> Tensor {
        try tensorCall { ts_index_add(handle, Int64(dim), index.handle, src.handle, $0) }
    }

    /// Advanced indexing `t[i0, i1, ...]`; nil means ":" for that dimension.
    public func index(_ indices: [Tensor?]) throws -> Tensor {
        let hs: [OpaquePointer?] = indices.map { $0?.handle }
        return try tensorCall { ts_index(handle, hs, Int32(hs.count), $0) }
    }

    /// Out-of-place `t[indices] = values` (or `+=` with accumulate).
    public func indexPut(_ indices: [Tensor?], _ values: Tensor, accumulate: Bool = false) throws -> Tensor {
        let hs: [OpaquePointer?] = indices.map { $0?.handle }
        return try tensorCall { ts_index_put(handle, hs, Int32(hs.count), values.handle, accumulate ? 1 : 0, $0) }
    }

    /// In-place `t[indices] = values` (or `+=` with accumulate).
    public func indexPut_(_ indices: [Tensor?], _ values: Tensor, accumulate: Bool = false) throws {
        let hs: [OpaquePointer?] = indices.map { $0?.handle }
        _ = try checked { ts_index_put_(handle, hs, Int32(hs.count), values.handle, accumulate ? 1 : 0, $0) }
    }

    public func maskedFill(_ mask: Tensor, _ value: Double) throws -> Tensor {
        try tensorCall { ts_masked_fill(handle, mask.handle, value, $0) }
    }

    public func maskedSelect(_ mask: Tensor) throws -> Tensor { try tensorCall { ts_masked_select(handle, mask.handle, $0) } }

    public func maskedScatter(_ mask: Tensor, _ source: Tensor) throws -> Tensor {
        try tensorCall { ts_masked_scatter(handle, mask.handle, source.handle, $0) }
    }

    /// `where(cond, a, b)`.
    public static func `where`(_ cond: Tensor, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        try tensorCall { ts_where(cond.handle, a.handle, b.handle, $0) }
    }

    public static func cat(_ tensors: [Tensor], dim: Int = 0) throws -> Tensor {
        let hs = handles(tensors)
        return try tensorCall { ts_cat(hs, Int32(hs.count), Int64(dim), $0) }
    }

    public static func stack(_ tensors: [Tensor], dim: Int = 0) throws -> Tensor {
        let hs = handles(tensors)
        return try tensorCall { ts_stack(hs, Int32(hs.count), Int64(dim), $0) }
    }

    /// Pieces of `size` along `dim` (the last may be smaller).
    public func split(_ size: Int, dim: Int = 0) throws -> [Tensor] {
        let n = size > 0 ? (self.size(dim) + size - 1) / size : 0
        return try tensorList(capacity: n) { ts_split(handle, Int64(size), Int64(dim), $0, $1, $2) }
    }

    public func split(sizes: [Int], dim: Int = 0) throws -> [Tensor] {
        let s = i64(sizes)
        return try tensorList(capacity: sizes.count) { ts_split_sizes(handle, s, Int32(s.count), Int64(dim), $0, $1, $2) }
    }

    public func chunk(_ chunks: Int, dim: Int = 0) throws -> [Tensor] {
        try tensorList(capacity: chunks) { ts_chunk(handle, Int64(chunks), Int64(dim), $0, $1, $2) }
    }

    public func unbind(_ dim: Int = 0) throws -> [Tensor] {
        try tensorList(capacity: size(dim)) { ts_unbind(handle, Int64(dim), $0, $1, $2) }
    }

    /// [N, ndim] int64 coordinates of non-zero elements (row-major order).
    public func nonzero() throws -> Tensor { try tensorCall { ts_nonzero(handle, $0) } }

    /// Sorted unique values, with optional inverse indices and counts.
    public func unique(dim: Int? = nil, returnInverse: Bool = false, returnCounts: Bool = false) throws
        -> (values: Tensor, inverse: Tensor?, counts: Tensor?) {
        var inv: OpaquePointer? = nil, cnt: OpaquePointer? = nil
        let values = try withUnsafeMutablePointer(to: &inv) { ip in
            try withUnsafeMutablePointer(to: &cnt) { cp in
                try tensorCall {
                    ts_unique(handle, Int64(dim ?? 0), dim == nil ? 0 : 1, returnInverse ? ip : nil,
                              returnCounts ? cp : nil, $0)
                }
            }
        }
        return (values, inv.map { Tensor(handle: $0) }, cnt.map { Tensor(handle: $0) })
    }

    public static func searchsorted(_ sorted: Tensor, _ values: Tensor, right: Bool = false) throws -> Tensor {
        try tensorCall { ts_searchsorted(sorted.handle, values.handle, right ? 1 : 0, $0) }
    }

    public static func meshgrid(_ tensors: [Tensor]) throws -> [Tensor] {
        let hs = handles(tensors)
        return try tensorList(capacity: tensors.count) { out, _, err in ts_meshgrid_ij(hs, Int32(hs.count), out, err) }
    }
}

// MARK: - elementwise

extension Tensor {
    func unary(_ op: ts_unary_op) throws -> Tensor { try tensorCall { ts_unary(Int32(op.rawValue), handle, $0) } }
    func binary(_ op: ts_binary_op, _ other: Tensor) throws -> Tensor {
        try tensorCall { ts_binary(Int32(op.rawValue), handle, other.handle, $0) }
    }
    func binary(_ op: ts_binary_op, _ s: Double) throws -> Tensor {
        try tensorCall { ts_binary_scalar(Int32(op.rawValue), handle, s, $0) }
    }
    func rbinary(_ op: ts_binary_op, _ s: Double) throws -> Tensor {
        try tensorCall { ts_binary_rscalar(Int32(op.rawValue), s, handle, $0) }
    }

    public func neg() throws -> Tensor { try unary(TS_NEG) }
    public func abs() throws -> Tensor { try unary(TS_ABS) }
    public func exp() throws -> Tensor { try unary(TS_EXP) }
    public func log() throws -> Tensor { try unary(TS_LOG) }
    public func sqrt() throws -> Tensor { try unary(TS_SQRT) }
    public func rsqrt() throws -> Tensor { try unary(TS_RSQRT) }
    public func sin() throws -> Tensor { try unary(TS_SIN) }
    public func cos() throws -> Tensor { try unary(TS_COS) }
    public func tan() throws -> Tensor { try unary(TS_TAN) }
    public func atan() throws -> Tensor { try unary(TS_ATAN) }
    public func asin() throws -> Tensor { try unary(TS_ASIN) }
    public func acos() throws -> Tensor { try unary(TS_ACOS) }
    public func tanh() throws -> Tensor { try unary(TS_TANH) }
    public func sigmoid() throws -> Tensor { try unary(TS_SIGMOID) }
    public func relu() throws -> Tensor { try unary(TS_RELU) }
    public func silu() throws -> Tensor { try unary(TS_SILU) }
    /// GELU; `approximate: true` is the tanh form (`approximate="tanh"`).
    public func gelu(approximate: Bool = false) throws -> Tensor { try unary(approximate ? TS_GELU_TANH : TS_GELU) }
    /// x * sigmoid(1.702 x) (OpenAI CLIP's QuickGELU).
    public func quickGelu() throws -> Tensor { try unary(TS_QUICK_GELU) }
    public func mish() throws -> Tensor { try unary(TS_MISH) }
    public func hardswish() throws -> Tensor { try unary(TS_HARDSWISH) }
    public func erf() throws -> Tensor { try unary(TS_ERF) }
    public func floor() throws -> Tensor { try unary(TS_FLOOR) }
    public func ceil() throws -> Tensor { try unary(TS_CEIL) }
    public func round() throws -> Tensor { try unary(TS_ROUND) }
    public func trunc() throws -> Tensor { try unary(TS_TRUNC) }
    public func frac() throws -> Tensor { try unary(TS_FRAC) }
    public func sign() throws -> Tensor { try unary(TS_SIGN) }
    public func reciprocal() throws -> Tensor { try unary(TS_RECIPROCAL) }
    public func log1p() throws -> Tensor { try unary(TS_LOG1P) }
    public func log2() throws -> Tensor { try unary(TS_LOG2) }
    public func exp2() throws -> Tensor { try unary(TS_EXP2) }
    public func expm1() throws -> Tensor { try unary(TS_EXPM1) }
    public func square() throws -> Tensor { try unary(TS_SQUARE) }
    public func logit() throws -> Tensor { try unary(TS_LOGIT) }
    public func logicalNot() throws -> Tensor { try unary(TS_LOGICAL_NOT) }
    public func isnan() throws -> Tensor { try unary(TS_ISNAN) }
    public func isfinite() throws -> Tensor { try unary(TS_ISFINITE) }

    public func pow(_ exponent: Double) throws -> Tensor { try tensorCall { ts_pow_tensor_scalar(handle, exponent, $0) } }
    public func pow(_ exponent: Tensor) throws -> Tensor { try binary(TS_POW, exponent) }
    public func maximum(_ other: Tensor) throws -> Tensor { try binary(TS_MAXIMUM, other) }
    public func minimum(_ other: Tensor) throws -> Tensor { try binary(TS_MINIMUM, other) }
    public func atan2(_ other: Tensor) throws -> Tensor { try binary(TS_ATAN2, other) }
    public func remainder(_ s: Double) throws -> Tensor { try binary(TS_REMAINDER, s) }
    public func floorDivide(_ s: Double) throws -> Tensor { try binary(TS_FLOOR_DIVIDE, s) }
    public func floorDivide(_ other: Tensor) throws -> Tensor { try binary(TS_FLOOR_DIVIDE, other) }
    public func bitwiseAnd(_ other: Tensor) throws -> Tensor { try binary(TS_BITWISE_AND, other) }
    public func bitwiseOr(_ other: Tensor) throws -> Tensor { try binary(TS_BITWISE_OR, other) }
    public func logicalAnd(_ other: Tensor) throws -> Tensor { try binary(TS_LOGICAL_AND, other) }
    public func logicalOr(_ other: Tensor) throws -> Tensor { try binary(TS_LOGICAL_OR, other) }

    public func eq(_ o: Tensor) throws -> Tensor { try binary(TS_EQ, o) }
    public func ne(_ o: Tensor) throws -> Tensor { try binary(TS_NE, o) }
    public func lt(_ o: Tensor) throws -> Tensor { try binary(TS_LT, o) }
    public func le(_ o: Tensor) throws -> Tensor { try binary(TS_LE, o) }
    public func gt(_ o: Tensor) throws -> Tensor { try binary(TS_GT, o) }
    public func ge(_ o: Tensor) throws -> Tensor { try binary(TS_GE, o) }
    public func eq(_ s: Double) throws -> Tensor { try binary(TS_EQ, s) }
    public func ne(_ s: Double) throws -> Tensor { try binary(TS_NE, s) }
    public func lt(_ s: Double) throws -> Tensor { try binary(TS_LT, s) }
    public func le(_ s: Double) throws -> Tensor { try binary(TS_LE, s) }
    public func gt(_ s: Double) throws -> Tensor { try binary(TS_GT, s) }
    public func ge(_ s: Double) throws -> Tensor { try binary(TS_GE, s) }

    /// self + alpha * other
    public func add(_ other: Tensor, alpha: Double) throws -> Tensor {
        try tensorCall { ts_add_scaled(handle, other.handle, alpha, $0) }
    }

    /// self + value * t1 * t2
    public func addcmul(_ t1: Tensor, _ t2: Tensor, value: Double = 1) throws -> Tensor {
        try tensorCall { ts_addcmul(handle, t1.handle, t2.handle, value, $0) }
    }

    public func lerp(_ end: Tensor, weight: Double) throws -> Tensor {
        try tensorCall { ts_lerp(handle, end.handle, weight, $0) }
    }

    // In-place arithmetic (avoid allocations in loops).
    public func add_(_ other: Tensor, alpha: Double = 1) throws { _ = try checked { ts_binary_(Int32(TS_ADD.rawValue), handle, other.handle, alpha, $0) } }
    public func sub_(_ other: Tensor, alpha: Double = 1) throws { _ = try checked { ts_binary_(Int32(TS_SUB.rawValue), handle, other.handle, alpha, $0) } }
    public func mul_(_ other: Tensor) throws { _ = try checked { ts_binary_(Int32(TS_MUL.rawValue), handle, other.handle, 1, $0) } }
    public func div_(_ other: Tensor) throws { _ = try checked { ts_binary_(Int32(TS_DIV.rawValue), handle, other.handle, 1, $0) } }
    public func add_(_ s: Double) throws { _ = try checked { ts_binary_scalar_(Int32(TS_ADD.rawValue), handle, s, $0) } }
    public func mul_(_ s: Double) throws { _ = try checked { ts_binary_scalar_(Int32(TS_MUL.rawValue), handle, s, $0) } }

    public func clamp(min: Double? = nil, max: Double? = nil) throws -> Tensor {
        try tensorCall { ts_clamp(handle, min ?? 0, min == nil ? 0 : 1, max ?? 0, max == nil ? 0 : 1, $0) }
    }

    public func clamp(min: Tensor?, max: Tensor?) throws -> Tensor {
        try tensorCall { ts_clamp_t(handle, min?.handle, max?.handle, $0) }
    }

    public func nanToNum(nan: Double = 0, posinf: Double = Double(Float.greatestFiniteMagnitude),
                         neginf: Double = -Double(Float.greatestFiniteMagnitude)) throws -> Tensor {
        try tensorCall { ts_nan_to_num(handle, nan, posinf, neginf, $0) }
    }

    public func softplus(beta: Double = 1, threshold: Double = 20) throws -> Tensor {
        try tensorCall { ts_softplus(handle, beta, threshold, $0) }
    }

    public func leakyRelu(_ slope: Double = 0.01) throws -> Tensor { try tensorCall { ts_leaky_relu(handle, slope, $0) } }
    public func elu(_ alpha: Double = 1) throws -> Tensor { try tensorCall { ts_elu(handle, alpha, $0) } }
    public func hardtanh(min: Double = -1, max: Double = 1) throws -> Tensor {
        try tensorCall { ts_hardtanh(handle, min, max, $0) }
    }
}

// MARK: - operators (a single `try` covers a whole expression)

public func + (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(TS_ADD, b) }
public func - (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(TS_SUB, b) }
public func * (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(TS_MUL, b) }
public func / (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(TS_DIV, b) }
public func + (a: Tensor, s: Double) throws -> Tensor { try a.binary(TS_ADD, s) }
public func - (a: Tensor, s: Double) throws -> Tensor { try a.binary(TS_SUB, s) }
public func * (a: Tensor, s: Double) throws -> Tensor { try a.binary(TS_MUL, s) }
public func / (a: Tensor, s: Double) throws -> Tensor { try a.binary(TS_DIV, s) }
public func + (s: Double, a: Tensor) throws -> Tensor { try a.binary(TS_ADD, s) }
public func - (s: Double, a: Tensor) throws -> Tensor { try a.rbinary(TS_SUB, s) }
public func * (s: Double, a: Tensor) throws -> Tensor { try a.binary(TS_MUL, s) }
public func / (s: Double, a: Tensor) throws -> Tensor { try a.rbinary(TS_DIV, s) }
public prefix func - (a: Tensor) throws -> Tensor { try a.neg() }

// MARK: - linear algebra

extension Tensor {
    public func matmul(_ other: Tensor) throws -> Tensor {
        let out = try tensorCall { ts_matmul(handle, other.handle, $0) }
        if FLOPCounter.isCounting { FLOPCounter.add(2 * Double(out.count) * Double(size(-1))) }
        return out
    }
    public func bmm(_ other: Tensor) throws -> Tensor {
        let out = try tensorCall { ts_bmm(handle, other.handle, $0) }
        if FLOPCounter.isCounting { FLOPCounter.add(2 * Double(out.count) * Double(size(-1))) }
        return out
    }

    /// self + alpha * (b1 @ b2) scaled by beta on self.
    public func baddbmm(_ b1: Tensor, _ b2: Tensor, beta: Double = 1, alpha: Double = 1) throws -> Tensor {
        try tensorCall { ts_baddbmm(handle, b1.handle, b2.handle, beta, alpha, $0) }
    }

    public func addmm(_ m1: Tensor, _ m2: Tensor, beta: Double = 1, alpha: Double = 1) throws -> Tensor {
        try tensorCall { ts_addmm(handle, m1.handle, m2.handle, beta, alpha, $0) }
    }

    public static func einsum(_ equation: String, _ operands: [Tensor]) throws -> Tensor {
        let hs = handles(operands)
        return try tensorCall { ts_einsum(equation, hs, Int32(hs.count), $0) }
    }

    public func outer(_ other: Tensor) throws -> Tensor { try tensorCall { ts_outer(handle, other.handle, $0) } }
    public func inverse() throws -> Tensor { try tensorCall { ts_linalg_inv(handle, $0) } }
    public func det() throws -> Tensor { try tensorCall { ts_linalg_det(handle, $0) } }
}

infix operator .* : MultiplicationPrecedence
/// Matrix product (`@` in Python).
public func .* (a: Tensor, b: Tensor) throws -> Tensor { try a.matmul(b) }

// MARK: - reductions

extension Tensor {
    public func sum(_ dims: [Int] = [], keepDim: Bool = false, dtype: DType? = nil) throws -> Tensor {
        let d = i64(dims)
        return try tensorCall { ts_sum(handle, d, Int32(d.count), keepDim ? 1 : 0, dtype.map { $0.rawValue } ?? -1, $0) }
    }

    public func sum(_ dim: Int, keepDim: Bool = false) throws -> Tensor { try sum([dim], keepDim: keepDim) }

    public func mean(_ dims: [Int] = [], keepDim: Bool = false) throws -> Tensor {
        let d = i64(dims)
        return try tensorCall { ts_mean(handle, d, Int32(d.count), keepDim ? 1 : 0, $0) }
    }

    public func mean(_ dim: Int, keepDim: Bool = false) throws -> Tensor { try mean([dim], keepDim: keepDim) }

    public func prod(_ dim: Int, keepDim: Bool = false) throws -> Tensor {
        try tensorCall { ts_prod(handle, Int64(dim), keepDim ? 1 : 0, $0) }
    }

    public func variance(_ dims: [Int] = [], correction: Int = 1, keepDim: Bool = false) throws -> Tensor {
        let d = i64(dims)
        return try tensorCall { ts_var(handle, d, Int32(d.count), Int64(correction), keepDim ? 1 : 0, $0) }
    }

    public func std(_ dims: [Int] = [], correction: Int = 1, keepDim: Bool = false) throws -> Tensor {
        let d = i64(dims)
        return try tensorCall { ts_std(handle, d, Int32(d.count), Int64(correction), keepDim ? 1 : 0, $0) }
    }

    public func amax(_ dims: [Int] = [], keepDim: Bool = false) throws -> Tensor {
        let d = i64(dims)
        return try tensorCall { ts_amax(handle, d, Int32(d.count), keepDim ? 1 : 0, $0) }
    }

    public func amin(_ dims: [Int] = [], keepDim: Bool = false) throws -> Tensor {
        let d = i64(dims)
        return try tensorCall { ts_amin(handle, d, Int32(d.count), keepDim ? 1 : 0, $0) }
    }

    public func logsumexp(_ dims: [Int], keepDim: Bool = false) throws -> Tensor {
        let d = i64(dims)
        return try tensorCall { ts_logsumexp(handle, d, Int32(d.count), keepDim ? 1 : 0, $0) }
    }

    public func norm(_ p: Double = 2, dims: [Int] = [], keepDim: Bool = false) throws -> Tensor {
        let d = i64(dims)
        return try tensorCall { ts_norm(handle, p, d, Int32(d.count), keepDim ? 1 : 0, $0) }
    }

    public func max() throws -> Tensor { try tensorCall { ts_max_all(handle, $0) } }
    public func min() throws -> Tensor { try tensorCall { ts_min_all(handle, $0) } }

    public func max(_ dim: Int, keepDim: Bool = false) throws -> (values: Tensor, indices: Tensor) {
        var idx: OpaquePointer? = nil
        let v = try tensorCall { ts_max_dim(handle, Int64(dim), keepDim ? 1 : 0, &idx, $0) }
        return (v, Tensor(handle: idx!))
    }

    public func min(_ dim: Int, keepDim: Bool = false) throws -> (values: Tensor, indices: Tensor) {
        var idx: OpaquePointer? = nil
        let v = try tensorCall { ts_min_dim(handle, Int64(dim), keepDim ? 1 : 0, &idx, $0) }
        return (v, Tensor(handle: idx!))
    }

    public func argmax(_ dim: Int, keepDim: Bool = false) throws -> Tensor {
        try tensorCall { ts_argmax(handle, Int64(dim), keepDim ? 1 : 0, $0) }
    }

    public func argmin(_ dim: Int, keepDim: Bool = false) throws -> Tensor {
        try tensorCall { ts_argmin(handle, Int64(dim), keepDim ? 1 : 0, $0) }
    }

    public func any() throws -> Tensor { try tensorCall { ts_any(handle, $0) } }
    public func all() throws -> Tensor { try tensorCall { ts_all(handle, $0) } }

    public func topk(_ k: Int, dim: Int = -1, largest: Bool = true, sorted: Bool = true) throws -> (values: Tensor, indices: Tensor) {
        var idx: OpaquePointer? = nil
        let v = try tensorCall { ts_topk(handle, Int64(k), Int64(dim), largest ? 1 : 0, sorted ? 1 : 0, &idx, $0) }
        return (v, Tensor(handle: idx!))
    }

    public func sort(dim: Int = -1, descending: Bool = false, stable: Bool = false) throws -> (values: Tensor, indices: Tensor) {
        var idx: OpaquePointer? = nil
        let v = try tensorCall { ts_sort(handle, Int64(dim), descending ? 1 : 0, stable ? 1 : 0, &idx, $0) }
        return (v, Tensor(handle: idx!))
    }

    public func argsort(dim: Int = -1, descending: Bool = false, stable: Bool = false) throws -> Tensor {
        try tensorCall { ts_argsort(handle, Int64(dim), descending ? 1 : 0, stable ? 1 : 0, $0) }
    }

    public func cumsum(_ dim: Int) throws -> Tensor { try tensorCall { ts_cumsum(handle, Int64(dim), $0) } }
    public func cumprod(_ dim: Int) throws -> Tensor { try tensorCall { ts_cumprod(handle, Int64(dim), $0) } }

    public func bincount(weights: Tensor? = nil, minLength: Int = 0) throws -> Tensor {
        try tensorCall { ts_bincount(handle, weights?.handle, Int64(minLength), $0) }
    }

    public func allClose(_ other: Tensor, rtol: Double = 1e-5, atol: Double = 1e-8) throws -> Bool {
        try checked { ts_allclose(handle, other.handle, rtol, atol, $0) } == 1
    }

    public func equal(_ other: Tensor) throws -> Bool { try checked { ts_equal(handle, other.handle, $0) } == 1 }
}
