// Convolution, normalisation, pooling, resampling, attention and reductions.
#include "shim_internal.h"

using namespace tsi;

namespace {

std::vector<int64_t> vec(const int64_t *p, int n) { return std::vector<int64_t>(p, p + n); }

std::vector<int64_t> dim_list(const int64_t *d, int n) {
    if (!d || n == 0) return {};
    return vec(d, n);
}

at::OptionalIntArrayRef opt_dims(const std::vector<int64_t> &d) {
    if (d.empty()) return c10::nullopt;
    return at::IntArrayRef(d);
}

at::Tensor interpolate(const at::Tensor &x, int mode, const std::vector<int64_t> &size, bool align, bool aa) {
    int ns = static_cast<int>(size.size());
    if (x.dim() != ns + 2)
        throw std::invalid_argument("interpolate: input has " + std::to_string(x.dim()) + " dims, expected " +
                                    std::to_string(ns + 2));
    const at::IntArrayRef sz(size);
    const c10::optional<double> none;
    switch (mode) {
    case TS_NEAREST:
        if (ns == 1) return at::upsample_nearest1d(x, sz, none);
        if (ns == 2) return at::upsample_nearest2d(x, sz, none, none);
        if (ns == 3) return at::upsample_nearest3d(x, sz, none, none, none);
        break;
    case TS_NEAREST_EXACT:
        if (ns == 1) return at::_upsample_nearest_exact1d(x, sz, none);
        if (ns == 2) return at::_upsample_nearest_exact2d(x, sz, none, none);
        if (ns == 3) return at::_upsample_nearest_exact3d(x, sz, none, none, none);
        break;
    case TS_LINEAR:
        if (ns == 1) return at::upsample_linear1d(x, sz, align, none);
        break;
    case TS_BILINEAR:
        if (ns == 2) {
            if (aa) return at::_upsample_bilinear2d_aa(x, sz, align, none, none);
            return at::upsample_bilinear2d(x, sz, align, none, none);
        }
        break;
    case TS_BICUBIC:
        if (ns == 2) {
            if (aa) return at::_upsample_bicubic2d_aa(x, sz, align, none, none);
            return at::upsample_bicubic2d(x, sz, align, none, none);
        }
        break;
    case TS_TRILINEAR:
        if (ns == 3) return at::upsample_trilinear3d(x, sz, align, none, none, none);
        break;
    case TS_AREA:
        if (ns == 1) return at::adaptive_avg_pool1d(x, sz);
        if (ns == 2) return at::adaptive_avg_pool2d(x, sz);
        if (ns == 3) return at::adaptive_avg_pool3d(x, sz);
        break;
    }
    throw std::invalid_argument("interpolate: mode " + std::to_string(mode) + " does not support " +
                                std::to_string(ns) + " spatial dims");
}

} // namespace

extern "C" {

ts_tensor ts_conv(ts_tensor x, ts_tensor w, ts_tensor b, const int64_t *stride, const int64_t *padding,
                  const int64_t *dilation, int transposed, const int64_t *output_padding, int nspatial,
                  int64_t groups, char **err) {
    TS_GUARD(nullptr, {
        if (nspatial < 1 || nspatial > 3) throw std::invalid_argument("conv: nspatial must be 1, 2 or 3");
        std::vector<int64_t> op = output_padding ? vec(output_padding, nspatial) : std::vector<int64_t>(nspatial, 0);
        return wrap(at::convolution(T(x), T(w), opt(b), vec(stride, nspatial), vec(padding, nspatial),
                                    vec(dilation, nspatial), transposed != 0, op, groups));
    })
}

ts_tensor ts_group_norm(ts_tensor x, int64_t groups, ts_tensor w, ts_tensor b, double eps, char **err) {
    TS_TENSOR(at::group_norm(T(x), groups, opt(w), opt(b), eps))
}

ts_tensor ts_layer_norm(ts_tensor x, const int64_t *shape, int ndim, ts_tensor w, ts_tensor b, double eps, char **err) {
    TS_TENSOR(at::layer_norm(T(x), dims(shape, ndim), opt(w), opt(b), eps))
}

ts_tensor ts_rms_norm(ts_tensor x, const int64_t *shape, int ndim, ts_tensor w, double eps, char **err) {
    TS_GUARD(nullptr, {
        c10::optional<double> e;
        if (eps >= 0) e = eps;
        return wrap(at::rms_norm(T(x), dims(shape, ndim), opt(w), e));
    })
}

ts_tensor ts_batch_norm(ts_tensor x, ts_tensor w, ts_tensor b, ts_tensor mean, ts_tensor var, double eps, char **err) {
    TS_TENSOR(at::batch_norm(T(x), opt(w), opt(b), opt(mean), opt(var), false, 0.0, eps, true))
}

ts_tensor ts_softmax(ts_tensor t, int64_t dim, char **err) { TS_TENSOR(at::softmax(T(t), dim)) }
ts_tensor ts_log_softmax(ts_tensor t, int64_t dim, char **err) { TS_TENSOR(at::log_softmax(T(t), dim)) }

ts_tensor ts_normalize(ts_tensor t, double p, int64_t dim, double eps, char **err) {
    TS_GUARD(nullptr, {
        const auto &x = T(t);
        auto denom = at::norm(x, p, {dim}, true).clamp_min(eps).expand_as(x);
        return wrap(x / denom);
    })
}

ts_tensor ts_max_pool(ts_tensor x, const int64_t *k, const int64_t *s, const int64_t *p, int ns, int ceil_mode, char **err) {
    TS_GUARD(nullptr, {
        std::vector<int64_t> d(ns, 1);
        if (ns == 1) return wrap(at::max_pool1d(T(x), vec(k, 1), vec(s, 1), vec(p, 1), d, ceil_mode != 0));
        if (ns == 2) return wrap(at::max_pool2d(T(x), vec(k, 2), vec(s, 2), vec(p, 2), d, ceil_mode != 0));
        if (ns == 3) return wrap(at::max_pool3d(T(x), vec(k, 3), vec(s, 3), vec(p, 3), d, ceil_mode != 0));
        throw std::invalid_argument("max_pool: nspatial must be 1, 2 or 3");
    })
}

ts_tensor ts_avg_pool(ts_tensor x, const int64_t *k, const int64_t *s, const int64_t *p, int ns, int ceil_mode,
                      int count_include_pad, char **err) {
    TS_GUARD(nullptr, {
        bool c = ceil_mode != 0, inc = count_include_pad != 0;
        if (ns == 1) return wrap(at::avg_pool1d(T(x), vec(k, 1), vec(s, 1), vec(p, 1), c, inc));
        if (ns == 2) return wrap(at::avg_pool2d(T(x), vec(k, 2), vec(s, 2), vec(p, 2), c, inc));
        if (ns == 3) return wrap(at::avg_pool3d(T(x), vec(k, 3), vec(s, 3), vec(p, 3), c, inc));
        throw std::invalid_argument("avg_pool: nspatial must be 1, 2 or 3");
    })
}

ts_tensor ts_adaptive_avg_pool(ts_tensor x, const int64_t *out_size, int ns, char **err) {
    TS_GUARD(nullptr, return wrap(interpolate(T(x), TS_AREA, vec(out_size, ns), false, false));)
}

ts_tensor ts_interpolate(ts_tensor x, int mode, const int64_t *size, int ns, int align_corners, int antialias, char **err) {
    TS_GUARD(nullptr, return wrap(interpolate(T(x), mode, vec(size, ns), align_corners != 0, antialias != 0));)
}

ts_tensor ts_grid_sample(ts_tensor x, ts_tensor grid, int mode, int padding, int align_corners, char **err) {
    TS_TENSOR(at::grid_sampler(T(x), T(grid), mode, padding, align_corners != 0))
}

ts_tensor ts_pad(ts_tensor x, const int64_t *pads, int npads, const char *mode, double value, char **err) {
    TS_GUARD(nullptr, {
        std::string m = mode ? mode : "constant";
        c10::optional<double> v;
        if (m == "constant") v = value;
        return wrap(at::pad(T(x), dims(pads, npads), m, v));
    })
}

ts_tensor ts_pixel_shuffle(ts_tensor x, int64_t f, char **err) { TS_TENSOR(at::pixel_shuffle(T(x), f)) }
ts_tensor ts_pixel_unshuffle(ts_tensor x, int64_t f, char **err) { TS_TENSOR(at::pixel_unshuffle(T(x), f)) }

ts_tensor ts_im2col(ts_tensor x, const int64_t *k, const int64_t *d, const int64_t *p, const int64_t *s, char **err) {
    TS_TENSOR(at::im2col(T(x), vec(k, 2), vec(d, 2), vec(p, 2), vec(s, 2)))
}

ts_tensor ts_sdpa(ts_tensor q, ts_tensor k, ts_tensor v, ts_tensor mask, int is_causal, double scale, char **err) {
    TS_GUARD(nullptr, {
        c10::optional<double> sc;
        if (scale > 0) sc = scale;
        return wrap(at::scaled_dot_product_attention(T(q), T(k), T(v), opt(mask), 0.0, is_causal != 0, sc));
    })
}

ts_tensor ts_sum(ts_tensor t, const int64_t *d, int n, int keepdim, int dtype, char **err) {
    TS_GUARD(nullptr, {
        auto dl = dim_list(d, n);
        c10::optional<at::ScalarType> st;
        if (dtype >= 0) st = to_scalar_type(dtype);
        return wrap(at::sum(T(t), opt_dims(dl), keepdim != 0, st));
    })
}

ts_tensor ts_mean(ts_tensor t, const int64_t *d, int n, int keepdim, char **err) {
    TS_GUARD(nullptr, {
        auto dl = dim_list(d, n);
        return wrap(at::mean(T(t), opt_dims(dl), keepdim != 0));
    })
}

ts_tensor ts_prod(ts_tensor t, int64_t dim, int keepdim, char **err) { TS_TENSOR(at::prod(T(t), dim, keepdim != 0)) }

ts_tensor ts_var(ts_tensor t, const int64_t *d, int n, int64_t correction, int keepdim, char **err) {
    TS_GUARD(nullptr, {
        auto dl = dim_list(d, n);
        return wrap(at::var(T(t), opt_dims(dl), at::Scalar(correction), keepdim != 0));
    })
}

ts_tensor ts_std(ts_tensor t, const int64_t *d, int n, int64_t correction, int keepdim, char **err) {
    TS_GUARD(nullptr, {
        auto dl = dim_list(d, n);
        return wrap(at::std(T(t), opt_dims(dl), at::Scalar(correction), keepdim != 0));
    })
}

ts_tensor ts_amax(ts_tensor t, const int64_t *d, int n, int keepdim, char **err) {
    TS_TENSOR(at::amax(T(t), dim_list(d, n), keepdim != 0))
}
ts_tensor ts_amin(ts_tensor t, const int64_t *d, int n, int keepdim, char **err) {
    TS_TENSOR(at::amin(T(t), dim_list(d, n), keepdim != 0))
}
ts_tensor ts_logsumexp(ts_tensor t, const int64_t *d, int n, int keepdim, char **err) {
    TS_TENSOR(at::logsumexp(T(t), dim_list(d, n), keepdim != 0))
}
ts_tensor ts_norm(ts_tensor t, double p, const int64_t *d, int n, int keepdim, char **err) {
    TS_GUARD(nullptr, {
        auto dl = dim_list(d, n);
        if (dl.empty()) return wrap(at::norm(T(t), p));
        return wrap(at::norm(T(t), p, dl, keepdim != 0));
    })
}

ts_tensor ts_max_dim(ts_tensor t, int64_t dim, int keepdim, ts_tensor *indices, char **err) {
    TS_GUARD(nullptr, {
        auto r = at::max(T(t), dim, keepdim != 0);
        if (indices) *indices = wrap(std::get<1>(r));
        return wrap(std::get<0>(r));
    })
}
ts_tensor ts_min_dim(ts_tensor t, int64_t dim, int keepdim, ts_tensor *indices, char **err) {
    TS_GUARD(nullptr, {
        auto r = at::min(T(t), dim, keepdim != 0);
        if (indices) *indices = wrap(std::get<1>(r));
        return wrap(std::get<0>(r));
    })
}
ts_tensor ts_max_all(ts_tensor t, char **err) { TS_TENSOR(at::max(T(t))) }
ts_tensor ts_min_all(ts_tensor t, char **err) { TS_TENSOR(at::min(T(t))) }
ts_tensor ts_argmax(ts_tensor t, int64_t dim, int keepdim, char **err) { TS_TENSOR(at::argmax(T(t), dim, keepdim != 0)) }
ts_tensor ts_argmin(ts_tensor t, int64_t dim, int keepdim, char **err) { TS_TENSOR(at::argmin(T(t), dim, keepdim != 0)) }
ts_tensor ts_any(ts_tensor t, char **err) { TS_TENSOR(at::any(T(t))) }
ts_tensor ts_all(ts_tensor t, char **err) { TS_TENSOR(at::all(T(t))) }

ts_tensor ts_topk(ts_tensor t, int64_t k, int64_t dim, int largest, int sorted, ts_tensor *indices, char **err) {
    TS_GUARD(nullptr, {
        auto r = at::topk(T(t), k, dim, largest != 0, sorted != 0);
        if (indices) *indices = wrap(std::get<1>(r));
        return wrap(std::get<0>(r));
    })
}
ts_tensor ts_sort(ts_tensor t, int64_t dim, int descending, int stable, ts_tensor *indices, char **err) {
    TS_GUARD(nullptr, {
        auto r = at::sort(T(t), stable != 0, dim, descending != 0);
        if (indices) *indices = wrap(std::get<1>(r));
        return wrap(std::get<0>(r));
    })
}
ts_tensor ts_argsort(ts_tensor t, int64_t dim, int descending, int stable, char **err) {
    TS_TENSOR(at::argsort(T(t), stable != 0, dim, descending != 0))
}
ts_tensor ts_cumsum(ts_tensor t, int64_t dim, char **err) { TS_TENSOR(at::cumsum(T(t), dim)) }
ts_tensor ts_cumprod(ts_tensor t, int64_t dim, char **err) { TS_TENSOR(at::cumprod(T(t), dim)) }
ts_tensor ts_bincount(ts_tensor t, ts_tensor w, int64_t minlength, char **err) {
    TS_TENSOR(at::bincount(T(t), opt(w), minlength))
}
int ts_allclose(ts_tensor a, ts_tensor b, double rtol, double atol, char **err) {
    TS_GUARD(-1, return at::allclose(T(a), T(b), rtol, atol) ? 1 : 0;)
}
int ts_equal(ts_tensor a, ts_tensor b, char **err) { TS_GUARD(-1, return at::equal(T(a), T(b)) ? 1 : 0;) }

} // extern "C"
