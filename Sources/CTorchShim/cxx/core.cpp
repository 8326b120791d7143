// Library state, random numbers, creation, conversion and properties.
#include "shim_internal.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/version.h>

using namespace tsi;

extern "C" {

void ts_free_string(char *s) { std::free(s); }

void ts_version(char *buf, size_t len) {
    if (!buf || len == 0) return;
    std::snprintf(buf, len, "%s", TORCH_VERSION);
}

void ts_set_num_threads(int n) {
    try { at::set_num_threads(n); } catch (...) {}
}

int ts_get_num_threads(void) {
    try { return at::get_num_threads(); } catch (...) { return -1; }
}

void ts_manual_seed(uint64_t seed, char **err) { TS_GUARD(, torch::manual_seed(seed); return;) }

ts_generator ts_generator_new(uint64_t seed, int device, char **err) {
    TS_GUARD(nullptr, {
        at::Generator g;
        if (device < 0) {
            g = at::make_generator<at::CPUGeneratorImpl>(seed);
        } else {
            g = at::globalContext().defaultGenerator(to_device(device)).clone();
            g.set_current_seed(seed);
        }
        return new ts_generator_s{g};
    })
}

void ts_generator_free(ts_generator g) { delete g; }

ts_tensor ts_randn(const int64_t *shape, int ndim, int dtype, int device, ts_generator g, char **err) {
    TS_TENSOR(at::randn(dims(shape, ndim), gen(g), options(dtype, device)))
}

ts_tensor ts_rand(const int64_t *shape, int ndim, int dtype, int device, ts_generator g, char **err) {
    TS_TENSOR(at::rand(dims(shape, ndim), gen(g), options(dtype, device)))
}

ts_tensor ts_randint(int64_t low, int64_t high, const int64_t *shape, int ndim, int dtype, int device,
                     ts_generator g, char **err) {
    TS_TENSOR(at::randint(low, high, dims(shape, ndim), gen(g), options(dtype, device)))
}

ts_tensor ts_randperm(int64_t n, int dtype, int device, ts_generator g, char **err) {
    TS_TENSOR(at::randperm(n, gen(g), options(dtype, device)))
}

ts_tensor ts_normal_(ts_tensor t, double mean, double std, ts_generator g, char **err) {
    TS_TENSOR(T(t).normal_(mean, std, gen(g)))
}

ts_tensor ts_uniform_(ts_tensor t, double from, double to, ts_generator g, char **err) {
    TS_TENSOR(T(t).uniform_(from, to, gen(g)))
}

void ts_tensor_free(ts_tensor t) { delete t; }

ts_tensor ts_shallow_clone(ts_tensor t, char **err) { TS_TENSOR(T(t)) }

ts_tensor ts_from_data(const void *data, const int64_t *shape, int ndim, int dtype, char **err) {
    TS_GUARD(nullptr, {
        auto out = at::empty(dims(shape, ndim), options(dtype, TS_CPU));
        size_t nbytes = out.numel() * out.element_size();
        if (nbytes > 0) {
            if (!data) throw std::invalid_argument("ts_from_data: null data for a non-empty tensor");
            std::memcpy(out.data_ptr(), data, nbytes);
        }
        return wrap(out);
    })
}

ts_tensor ts_from_blob(void *data, const int64_t *shape, int ndim, int dtype, void *ctx,
                       void (*release)(void *ctx), char **err) {
    TS_GUARD(nullptr, {
        auto deleter = [ctx, release](void *) {
            if (release) release(ctx);
        };
        return wrap(at::from_blob(data, dims(shape, ndim), deleter, options(dtype, TS_CPU)));
    })
}

ts_tensor ts_empty(const int64_t *shape, int ndim, int dtype, int device, char **err) {
    TS_TENSOR(at::empty(dims(shape, ndim), options(dtype, device)))
}

ts_tensor ts_zeros(const int64_t *shape, int ndim, int dtype, int device, char **err) {
    TS_TENSOR(at::zeros(dims(shape, ndim), options(dtype, device)))
}

ts_tensor ts_ones(const int64_t *shape, int ndim, int dtype, int device, char **err) {
    TS_TENSOR(at::ones(dims(shape, ndim), options(dtype, device)))
}

ts_tensor ts_full(const int64_t *shape, int ndim, double value, int dtype, int device, char **err) {
    TS_TENSOR(at::full(dims(shape, ndim), value, options(dtype, device)))
}

ts_tensor ts_zeros_like(ts_tensor t, char **err) { TS_TENSOR(at::zeros_like(T(t))) }
ts_tensor ts_ones_like(ts_tensor t, char **err) { TS_TENSOR(at::ones_like(T(t))) }
ts_tensor ts_full_like(ts_tensor t, double value, char **err) { TS_TENSOR(at::full_like(T(t), value)) }

ts_tensor ts_arange(double start, double end, double step, int dtype, int device, char **err) {
    TS_TENSOR(at::arange(start, end, step, options(dtype, device)))
}

ts_tensor ts_linspace(double start, double end, int64_t steps, int dtype, int device, char **err) {
    TS_TENSOR(at::linspace(start, end, steps, options(dtype, device)))
}

ts_tensor ts_eye(int64_t n, int dtype, int device, char **err) { TS_TENSOR(at::eye(n, options(dtype, device))) }

ts_tensor ts_to(ts_tensor t, int device, int dtype, int non_blocking, char **err) {
    TS_TENSOR(T(t).to(to_device(device), to_scalar_type(dtype), non_blocking != 0))
}

ts_tensor ts_pin_memory(ts_tensor t, char **err) { TS_TENSOR(T(t).pin_memory()) }
ts_tensor ts_clone(ts_tensor t, char **err) { TS_TENSOR(T(t).clone()) }
ts_tensor ts_contiguous(ts_tensor t, char **err) { TS_TENSOR(T(t).contiguous()) }

int ts_copy_(ts_tensor dst, ts_tensor src, char **err) {
    TS_GUARD(-1, {
        T(dst).copy_(T(src));
        return 0;
    })
}

int ts_copy_to_host(ts_tensor t, void *dst, size_t nbytes, char **err) {
    TS_GUARD(-1, {
        auto c = T(t).to(at::kCPU).contiguous();
        size_t have = c.numel() * c.element_size();
        if (have != nbytes)
            throw std::invalid_argument("ts_copy_to_host: tensor has " + std::to_string(have) +
                                        " bytes, buffer " + std::to_string(nbytes));
        if (have > 0) std::memcpy(dst, c.data_ptr(), have);
        return 0;
    })
}

int ts_ndim(ts_tensor t) { return t ? static_cast<int>(t->t.dim()) : -1; }

int ts_shape(ts_tensor t, int64_t *out, int cap) {
    if (!t) return -1;
    int n = static_cast<int>(t->t.dim());
    for (int i = 0; i < n && i < cap; i++) out[i] = t->t.size(i);
    return n;
}

int ts_strides(ts_tensor t, int64_t *out, int cap) {
    if (!t) return -1;
    int n = static_cast<int>(t->t.dim());
    for (int i = 0; i < n && i < cap; i++) out[i] = t->t.stride(i);
    return n;
}

int ts_dtype(ts_tensor t) { return t ? from_scalar_type(t->t.scalar_type()) : -1; }
int ts_device(ts_tensor t) { return t ? from_device(t->t.device()) : TS_CPU; }
int64_t ts_numel(ts_tensor t) { return t ? t->t.numel() : -1; }
int ts_is_contiguous(ts_tensor t) { return t && t->t.is_contiguous() ? 1 : 0; }

void *ts_data_ptr(ts_tensor t) {
    if (!t || !t->t.device().is_cpu()) return nullptr;
    try { return t->t.data_ptr(); } catch (...) { return nullptr; }
}

double ts_item_double(ts_tensor t, char **err) { TS_GUARD(0.0, return T(t).item<double>();) }
int64_t ts_item_int64(ts_tensor t, char **err) { TS_GUARD(0, return T(t).item<int64_t>();) }

char *ts_to_string(ts_tensor t, char **err) {
    TS_GUARD(nullptr, {
        std::ostringstream os;
        os << T(t);
        return dup_string(os.str());
    })
}

} // extern "C"
