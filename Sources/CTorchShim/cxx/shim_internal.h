// Internal helpers shared by the shim's translation units. Never included from C.
#pragma once

#include <torch/torch.h>
#include <ATen/ATen.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../include/torch_shim.h"

struct ts_tensor_s {
    at::Tensor t;
};

struct ts_generator_s {
    at::Generator g;
};

namespace tsi {

inline char *dup_string(const std::string &s) {
    char *p = static_cast<char *>(std::malloc(s.size() + 1));
    if (p) std::memcpy(p, s.c_str(), s.size() + 1);
    return p;
}

inline bool looks_like_oom(const std::string &msg) {
    return msg.find("out of memory") != std::string::npos ||
           msg.find("not enough memory") != std::string::npos ||
           msg.find("can't allocate memory") != std::string::npos ||
           msg.find("Tried to allocate") != std::string::npos;
}

inline void set_error(char **err, const std::string &msg) {
    if (!err) return;
    if (*err) std::free(*err);
    // c10 messages carry a long C++ backtrace after the first line(s); keep the useful part.
    std::string m = msg;
    auto pos = m.find("\nException raised from");
    if (pos != std::string::npos) m = m.substr(0, pos);
    if (looks_like_oom(m)) m = "[oom] " + m;
    *err = dup_string(m);
}

inline ts_tensor wrap(at::Tensor t) { return new ts_tensor_s{std::move(t)}; }

inline at::ScalarType to_scalar_type(int d) {
    switch (d) {
    case TS_F32: return at::kFloat;
    case TS_F16: return at::kHalf;
    case TS_BF16: return at::kBFloat16;
    case TS_F64: return at::kDouble;
    case TS_I64: return at::kLong;
    case TS_I32: return at::kInt;
    case TS_I16: return at::kShort;
    case TS_I8: return at::kChar;
    case TS_U8: return at::kByte;
    case TS_BOOL: return at::kBool;
    case TS_F8E4M3: return at::kFloat8_e4m3fn;
    case TS_F8E5M2: return at::kFloat8_e5m2;
    }
    throw std::invalid_argument("unknown dtype code " + std::to_string(d));
}

inline int from_scalar_type(at::ScalarType s) {
    switch (s) {
    case at::kFloat: return TS_F32;
    case at::kHalf: return TS_F16;
    case at::kBFloat16: return TS_BF16;
    case at::kDouble: return TS_F64;
    case at::kLong: return TS_I64;
    case at::kInt: return TS_I32;
    case at::kShort: return TS_I16;
    case at::kChar: return TS_I8;
    case at::kByte: return TS_U8;
    case at::kBool: return TS_BOOL;
    case at::kFloat8_e4m3fn: return TS_F8E4M3;
    case at::kFloat8_e5m2: return TS_F8E5M2;
    default: return -1;
    }
}

inline at::Device to_device(int d) {
    if (d < 0) return at::Device(at::kCPU);
    return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(d));
}

inline int from_device(const at::Device &d) { return d.is_cuda() ? d.index() : TS_CPU; }

inline at::TensorOptions options(int dtype, int device) {
    return at::TensorOptions().dtype(to_scalar_type(dtype)).device(to_device(device));
}

inline at::IntArrayRef dims(const int64_t *p, int n) { return at::IntArrayRef(p, static_cast<size_t>(n)); }

inline const at::Tensor &T(ts_tensor t) {
    if (!t) throw std::invalid_argument("null tensor handle");
    return t->t;
}

inline c10::optional<at::Tensor> opt(ts_tensor t) {
    if (!t) return c10::nullopt;
    return t->t;
}

inline std::vector<at::Tensor> list(const ts_tensor *ts, int n) {
    std::vector<at::Tensor> v;
    v.reserve(n);
    for (int i = 0; i < n; i++) v.push_back(T(ts[i]));
    return v;
}

inline c10::optional<at::Generator> gen(ts_generator g) {
    if (!g) return c10::nullopt;
    return g->g;
}

inline int write_list(const std::vector<at::Tensor> &v, ts_tensor *out, int cap) {
    if (static_cast<int>(v.size()) > cap)
        throw std::invalid_argument("result has " + std::to_string(v.size()) + " tensors, capacity " +
                                    std::to_string(cap));
    for (size_t i = 0; i < v.size(); i++) out[i] = wrap(v[i]);
    return static_cast<int>(v.size());
}

} // namespace tsi

// Runs `body` under inference mode; any exception becomes *err and the function returns `fail`.
#define TS_GUARD(fail, ...)                                                                            \
    try {                                                                                               \
        c10::InferenceMode ts_inference_guard;                                                          \
        __VA_ARGS__                                                                                     \
    } catch (const c10::Error &e) {                                                                     \
        tsi::set_error(err, e.what_without_backtrace());                                                \
    } catch (const std::exception &e) {                                                                 \
        tsi::set_error(err, e.what());                                                                  \
    } catch (...) {                                                                                     \
        tsi::set_error(err, "unknown C++ exception");                                                   \
    }                                                                                                   \
    return fail;

#define TS_TENSOR(...) TS_GUARD(nullptr, return tsi::wrap(__VA_ARGS__);)
