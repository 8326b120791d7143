// Views, indexing, elementwise arithmetic and linear algebra.
#include "shim_internal.h"

using namespace tsi;

namespace {

at::Tensor unary(int op, const at::Tensor &x) {
    switch (op) {
    case TS_NEG: return at::neg(x);
    case TS_ABS: return at::abs(x);
    case TS_EXP: return at::exp(x);
    case TS_LOG: return at::log(x);
    case TS_SQRT: return at::sqrt(x);
    case TS_RSQRT: return at::rsqrt(x);
    case TS_SIN: return at::sin(x);
    case TS_COS: return at::cos(x);
    case TS_TANH: return at::tanh(x);
    case TS_SIGMOID: return at::sigmoid(x);
    case TS_RELU: return at::relu(x);
    case TS_SILU: return at::silu(x);
    case TS_GELU: return at::gelu(x, "none");
    case TS_GELU_TANH: return at::gelu(x, "tanh");
    case TS_ERF: return at::erf(x);
    case TS_FLOOR: return at::floor(x);
    case TS_CEIL: return at::ceil(x);
    case TS_ROUND: return at::round(x);
    case TS_SIGN: return at::sign(x);
    case TS_RECIPROCAL: return at::reciprocal(x);
    case TS_LOG1P: return at::log1p(x);
    case TS_EXPM1: return at::expm1(x);
    case TS_SQUARE: return at::square(x);
    case TS_LOGICAL_NOT: return at::logical_not(x);
    case TS_ISNAN: return at::isnan(x);
    case TS_ISFINITE: return at::isfinite(x);
    case TS_TRUNC: return at::trunc(x);
    case TS_ATAN: return at::atan(x);
    case TS_ASIN: return at::asin(x);
    case TS_ACOS: return at::acos(x);
    case TS_TAN: return at::tan(x);
    case TS_LOG2: return at::log2(x);
    case TS_EXP2: return at::exp2(x);
    case TS_MISH: return at::mish(x);
    case TS_HARDSWISH: return at::hardswish(x);
    case TS_QUICK_GELU: return x * at::sigmoid(x * 1.702);
    case TS_FRAC: return at::frac(x);
    case TS_LOGIT: return at::logit(x);
    }
    throw std::invalid_argument("unknown unary op " + std::to_string(op));
}

template <typename B>
at::Tensor binary(int op, const at::Tensor &a, const B &b) {
    switch (op) {
    case TS_ADD: return at::add(a, b);
    case TS_SUB: return at::sub(a, b);
    case TS_MUL: return at::mul(a, b);
    case TS_DIV: return at::div(a, b);
    case TS_POW: return at::pow(a, b);
    case TS_EQ: return at::eq(a, b);
    case TS_NE: return at::ne(a, b);
    case TS_LT: return at::lt(a, b);
    case TS_LE: return at::le(a, b);
    case TS_GT: return at::gt(a, b);
    case TS_GE: return at::ge(a, b);
    case TS_REMAINDER: return at::remainder(a, b);
    case TS_FLOOR_DIVIDE: return at::floor_divide(a, b);
    case TS_BITWISE_AND: return at::bitwise_and(a, b);
    case TS_BITWISE_OR: return at::bitwise_or(a, b);
    case TS_BITWISE_XOR: return at::bitwise_xor(a, b);
    }
    throw std::invalid_argument("binary op " + std::to_string(op) + " needs two tensors or is unknown");
}

at::Tensor binary_tt(int op, const at::Tensor &a, const at::Tensor &b) {
    switch (op) {
    case TS_MAXIMUM: return at::maximum(a, b);
    case TS_MINIMUM: return at::minimum(a, b);
    case TS_LOGICAL_AND: return at::logical_and(a, b);
    case TS_LOGICAL_OR: return at::logical_or(a, b);
    case TS_LOGICAL_XOR: return at::logical_xor(a, b);
    case TS_ATAN2: return at::atan2(a, b);
    }
    return binary(op, a, b);
}

at::Tensor scalar_like(double s, const at::Tensor &t) {
    // A 0-d tensor of t's dtype/device so that "s op t" keeps t's dtype (like Python scalars do).
    return at::scalar_tensor(s, t.options());
}

} // namespace

extern "C" {

ts_tensor ts_reshape(ts_tensor t, const int64_t *shape, int ndim, char **err) {
    TS_TENSOR(T(t).reshape(dims(shape, ndim)))
}
ts_tensor ts_view(ts_tensor t, const int64_t *shape, int ndim, char **err) { TS_TENSOR(T(t).view(dims(shape, ndim))) }
ts_tensor ts_permute(ts_tensor t, const int64_t *d, int ndim, char **err) { TS_TENSOR(T(t).permute(dims(d, ndim))) }
ts_tensor ts_transpose(ts_tensor t, int64_t d0, int64_t d1, char **err) { TS_TENSOR(T(t).transpose(d0, d1)) }
ts_tensor ts_narrow(ts_tensor t, int64_t dim, int64_t start, int64_t length, char **err) {
    TS_TENSOR(T(t).narrow(dim, start, length))
}
ts_tensor ts_slice(ts_tensor t, int64_t dim, int64_t start, int64_t end, int64_t step, char **err) {
    TS_TENSOR(T(t).slice(dim, start, end, step))
}
ts_tensor ts_select(ts_tensor t, int64_t dim, int64_t index, char **err) { TS_TENSOR(T(t).select(dim, index)) }
ts_tensor ts_squeeze(ts_tensor t, int64_t dim, char **err) { TS_TENSOR(T(t).squeeze(dim)) }
ts_tensor ts_unsqueeze(ts_tensor t, int64_t dim, char **err) { TS_TENSOR(T(t).unsqueeze(dim)) }
ts_tensor ts_flatten(ts_tensor t, int64_t s, int64_t e, char **err) { TS_TENSOR(T(t).flatten(s, e)) }
ts_tensor ts_expand(ts_tensor t, const int64_t *shape, int ndim, char **err) { TS_TENSOR(T(t).expand(dims(shape, ndim))) }
ts_tensor ts_repeat(ts_tensor t, const int64_t *r, int ndim, char **err) { TS_TENSOR(T(t).repeat(dims(r, ndim))) }
ts_tensor ts_repeat_interleave(ts_tensor t, int64_t repeats, int64_t dim, char **err) {
    TS_TENSOR(T(t).repeat_interleave(repeats, dim))
}
ts_tensor ts_repeat_interleave_t(ts_tensor t, ts_tensor repeats, int64_t dim, char **err) {
    TS_TENSOR(T(t).repeat_interleave(T(repeats), dim))
}
ts_tensor ts_flip(ts_tensor t, const int64_t *d, int ndim, char **err) { TS_TENSOR(T(t).flip(dims(d, ndim))) }
ts_tensor ts_roll(ts_tensor t, const int64_t *shifts, const int64_t *d, int ndim, char **err) {
    TS_TENSOR(T(t).roll(dims(shifts, ndim), dims(d, ndim)))
}
ts_tensor ts_tril(ts_tensor t, int64_t k, char **err) { TS_TENSOR(T(t).tril(k)) }
ts_tensor ts_triu(ts_tensor t, int64_t k, char **err) { TS_TENSOR(T(t).triu(k)) }
ts_tensor ts_index_select(ts_tensor t, int64_t dim, ts_tensor index, char **err) {
    TS_TENSOR(T(t).index_select(dim, T(index)))
}
ts_tensor ts_gather(ts_tensor t, int64_t dim, ts_tensor index, char **err) { TS_TENSOR(T(t).gather(dim, T(index))) }
ts_tensor ts_scatter(ts_tensor t, int64_t dim, ts_tensor index, ts_tensor src, char **err) {
    TS_TENSOR(T(t).scatter(dim, T(index), T(src)))
}
ts_tensor ts_scatter_add(ts_tensor t, int64_t dim, ts_tensor index, ts_tensor src, char **err) {
    TS_TENSOR(T(t).scatter_add(dim, T(index), T(src)))
}
ts_tensor ts_scatter_reduce(ts_tensor t, int64_t dim, ts_tensor index, ts_tensor src, const char *reduce,
                            int include_self, char **err) {
    TS_TENSOR(T(t).scatter_reduce(dim, T(index), T(src), reduce, include_self != 0))
}
ts_tensor ts_index_add(ts_tensor t, int64_t dim, ts_tensor index, ts_tensor src, char **err) {
    TS_TENSOR(T(t).index_add(dim, T(index), T(src)))
}

static c10::List<c10::optional<at::Tensor>> index_list(const ts_tensor *indices, int n) {
    c10::List<c10::optional<at::Tensor>> l;
    for (int i = 0; i < n; i++) l.push_back(opt(indices[i]));
    return l;
}

ts_tensor ts_index(ts_tensor t, const ts_tensor *indices, int n, char **err) {
    TS_TENSOR(at::index(T(t), index_list(indices, n)))
}
ts_tensor ts_index_put(ts_tensor t, const ts_tensor *indices, int n, ts_tensor values, int accumulate, char **err) {
    TS_TENSOR(at::index_put(T(t), index_list(indices, n), T(values), accumulate != 0))
}
int ts_index_put_(ts_tensor t, const ts_tensor *indices, int n, ts_tensor values, int accumulate, char **err) {
    TS_GUARD(-1, {
        auto self = T(t);
        at::index_put_(self, index_list(indices, n), T(values), accumulate != 0);
        return 0;
    })
}
ts_tensor ts_masked_fill(ts_tensor t, ts_tensor mask, double value, char **err) {
    TS_TENSOR(T(t).masked_fill(T(mask), value))
}
ts_tensor ts_masked_select(ts_tensor t, ts_tensor mask, char **err) { TS_TENSOR(T(t).masked_select(T(mask))) }
ts_tensor ts_masked_scatter(ts_tensor t, ts_tensor mask, ts_tensor source, char **err) {
    TS_TENSOR(T(t).masked_scatter(T(mask), T(source)))
}
ts_tensor ts_where(ts_tensor c, ts_tensor a, ts_tensor b, char **err) { TS_TENSOR(at::where(T(c), T(a), T(b))) }
ts_tensor ts_cat(const ts_tensor *ts, int n, int64_t dim, char **err) { TS_TENSOR(at::cat(list(ts, n), dim)) }
ts_tensor ts_stack(const ts_tensor *ts, int n, int64_t dim, char **err) { TS_TENSOR(at::stack(list(ts, n), dim)) }

int ts_split(ts_tensor t, int64_t split_size, int64_t dim, ts_tensor *out, int cap, char **err) {
    TS_GUARD(-1, return write_list(T(t).split(split_size, dim), out, cap);)
}
int ts_split_sizes(ts_tensor t, const int64_t *sizes, int nsizes, int64_t dim, ts_tensor *out, int cap, char **err) {
    TS_GUARD(-1, return write_list(T(t).split_with_sizes(dims(sizes, nsizes), dim), out, cap);)
}
int ts_chunk(ts_tensor t, int64_t chunks, int64_t dim, ts_tensor *out, int cap, char **err) {
    TS_GUARD(-1, return write_list(T(t).chunk(chunks, dim), out, cap);)
}
int ts_unbind(ts_tensor t, int64_t dim, ts_tensor *out, int cap, char **err) {
    TS_GUARD(-1, return write_list(T(t).unbind(dim), out, cap);)
}
ts_tensor ts_nonzero(ts_tensor t, char **err) { TS_TENSOR(T(t).nonzero()) }

ts_tensor ts_unique(ts_tensor t, int64_t dim, int use_dim, ts_tensor *inverse, ts_tensor *counts, char **err) {
    TS_GUARD(nullptr, {
        at::Tensor values, inv, cnt;
        if (use_dim) {
            std::tie(values, inv, cnt) = at::unique_dim(T(t), dim, true, inverse != nullptr, counts != nullptr);
        } else {
            std::tie(values, inv, cnt) = at::_unique2(T(t), true, inverse != nullptr, counts != nullptr);
        }
        if (inverse) *inverse = wrap(inv);
        if (counts) *counts = wrap(cnt);
        return wrap(values);
    })
}

ts_tensor ts_searchsorted(ts_tensor sorted, ts_tensor values, int right, char **err) {
    TS_TENSOR(at::searchsorted(T(sorted), T(values), false, right != 0))
}

int ts_meshgrid_ij(const ts_tensor *ts, int n, ts_tensor *out, char **err) {
    TS_GUARD(-1, return write_list(at::meshgrid(list(ts, n), "ij"), out, n);)
}

ts_tensor ts_unary(int op, ts_tensor t, char **err) { TS_TENSOR(unary(op, T(t))) }
ts_tensor ts_binary(int op, ts_tensor a, ts_tensor b, char **err) { TS_TENSOR(binary_tt(op, T(a), T(b))) }

ts_tensor ts_binary_scalar(int op, ts_tensor t, double s, char **err) {
    TS_GUARD(nullptr, {
        const auto &x = T(t);
        switch (op) {
        case TS_MAXIMUM: return wrap(at::clamp_min(x, s));
        case TS_MINIMUM: return wrap(at::clamp_max(x, s));
        case TS_ATAN2: return wrap(at::atan2(x, scalar_like(s, x)));
        case TS_LOGICAL_AND: case TS_LOGICAL_OR: case TS_LOGICAL_XOR:
            return wrap(binary_tt(op, x, scalar_like(s, x)));
        }
        return wrap(binary(op, x, at::Scalar(s)));
    })
}

ts_tensor ts_binary_rscalar(int op, double s, ts_tensor t, char **err) {
    TS_GUARD(nullptr, {
        const auto &x = T(t);
        return wrap(binary_tt(op, scalar_like(s, x), x));
    })
}

int ts_binary_(int op, ts_tensor a, ts_tensor b, double alpha, char **err) {
    TS_GUARD(-1, {
        auto x = T(a);
        switch (op) {
        case TS_ADD: x.add_(T(b), alpha); break;
        case TS_SUB: x.sub_(T(b), alpha); break;
        case TS_MUL: x.mul_(T(b)); break;
        case TS_DIV: x.div_(T(b)); break;
        default: throw std::invalid_argument("in-place op " + std::to_string(op) + " not supported");
        }
        return 0;
    })
}

int ts_binary_scalar_(int op, ts_tensor a, double s, char **err) {
    TS_GUARD(-1, {
        auto x = T(a);
        switch (op) {
        case TS_ADD: x.add_(s); break;
        case TS_SUB: x.sub_(s); break;
        case TS_MUL: x.mul_(s); break;
        case TS_DIV: x.div_(s); break;
        default: throw std::invalid_argument("in-place scalar op " + std::to_string(op) + " not supported");
        }
        return 0;
    })
}

ts_tensor ts_add_scaled(ts_tensor a, ts_tensor b, double alpha, char **err) { TS_TENSOR(at::add(T(a), T(b), alpha)) }
ts_tensor ts_addcmul(ts_tensor self, ts_tensor t1, ts_tensor t2, double value, char **err) {
    TS_TENSOR(at::addcmul(T(self), T(t1), T(t2), value))
}
ts_tensor ts_lerp(ts_tensor a, ts_tensor b, double w, char **err) { TS_TENSOR(at::lerp(T(a), T(b), w)) }

ts_tensor ts_clamp(ts_tensor t, double mn, int has_min, double mx, int has_max, char **err) {
    TS_GUARD(nullptr, {
        c10::optional<at::Scalar> lo, hi;
        if (has_min) lo = mn;
        if (has_max) hi = mx;
        return wrap(at::clamp(T(t), lo, hi));
    })
}
ts_tensor ts_clamp_t(ts_tensor t, ts_tensor mn, ts_tensor mx, char **err) { TS_TENSOR(at::clamp(T(t), opt(mn), opt(mx))) }
ts_tensor ts_nan_to_num(ts_tensor t, double nan, double posinf, double neginf, char **err) {
    TS_TENSOR(at::nan_to_num(T(t), nan, posinf, neginf))
}
ts_tensor ts_pow_tensor_scalar(ts_tensor t, double e, char **err) { TS_TENSOR(at::pow(T(t), e)) }
ts_tensor ts_softplus(ts_tensor t, double beta, double threshold, char **err) {
    TS_TENSOR(at::softplus(T(t), beta, threshold))
}
ts_tensor ts_leaky_relu(ts_tensor t, double slope, char **err) { TS_TENSOR(at::leaky_relu(T(t), slope)) }
ts_tensor ts_elu(ts_tensor t, double alpha, char **err) { TS_TENSOR(at::elu(T(t), alpha)) }
ts_tensor ts_hardtanh(ts_tensor t, double mn, double mx, char **err) { TS_TENSOR(at::hardtanh(T(t), mn, mx)) }

ts_tensor ts_matmul(ts_tensor a, ts_tensor b, char **err) { TS_TENSOR(at::matmul(T(a), T(b))) }
ts_tensor ts_bmm(ts_tensor a, ts_tensor b, char **err) { TS_TENSOR(at::bmm(T(a), T(b))) }
ts_tensor ts_linear(ts_tensor x, ts_tensor w, ts_tensor b, char **err) { TS_TENSOR(at::linear(T(x), T(w), opt(b))) }
ts_tensor ts_baddbmm(ts_tensor self, ts_tensor b1, ts_tensor b2, double beta, double alpha, char **err) {
    TS_TENSOR(at::baddbmm(T(self), T(b1), T(b2), beta, alpha))
}
ts_tensor ts_addmm(ts_tensor self, ts_tensor m1, ts_tensor m2, double beta, double alpha, char **err) {
    TS_TENSOR(at::addmm(T(self), T(m1), T(m2), beta, alpha))
}
ts_tensor ts_einsum(const char *eq, const ts_tensor *ts, int n, char **err) { TS_TENSOR(at::einsum(eq, list(ts, n))) }
ts_tensor ts_outer(ts_tensor a, ts_tensor b, char **err) { TS_TENSOR(at::outer(T(a), T(b))) }
ts_tensor ts_scaled_mm(ts_tensor a, ts_tensor b, ts_tensor sa, ts_tensor sb, ts_tensor bias, int out_dtype, char **err) {
    TS_TENSOR(at::_scaled_mm(T(a), T(b), T(sa), T(sb), opt(bias), c10::nullopt, to_scalar_type(out_dtype)))
}
ts_tensor ts_linalg_inv(ts_tensor t, char **err) { TS_TENSOR(at::linalg_inv(T(t))) }
ts_tensor ts_linalg_det(ts_tensor t, char **err) { TS_TENSOR(at::linalg_det(T(t))) }

} // extern "C"
