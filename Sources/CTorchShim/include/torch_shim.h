/*
 * torch_shim.h: the C ABI of libtorchshim.so, a thin layer over libtorch.
 *
 * Conventions (in the spirit of tch-rs's torch_api.h):
 * - `ts_tensor` is an opaque, owned handle. Every function that returns a ts_tensor returns a NEW handle
 *   the caller owns and must release with ts_tensor_free (inputs are borrowed, never consumed).
 * - Every call takes `char **err` last. On failure it stores a malloc'd message (free with ts_free_string)
 *   and returns NULL / 0 / -1; on success it leaves *err untouched (callers pass it NULL-initialised).
 *   No C++ exception ever crosses this boundary. Out-of-memory messages start with "[oom] ".
 * - Every op runs under inference mode (no autograd state is recorded).
 * - dtype codes are TS_* below; a device is an int: -1 = CPU, n >= 0 = cuda:n.
 * - Optional tensor arguments may be NULL.
 */
#ifndef TORCH_SHIM_H
#define TORCH_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ts_tensor_s *ts_tensor;
typedef struct ts_generator_s *ts_generator;
typedef struct ts_stream_s *ts_stream;

enum ts_dtype {
    TS_F32 = 0, TS_F16 = 1, TS_BF16 = 2, TS_F64 = 3, TS_I64 = 4, TS_I32 = 5, TS_I16 = 6, TS_I8 = 7,
    TS_U8 = 8, TS_BOOL = 9, TS_F8E4M3 = 10, TS_F8E5M2 = 11
};
#define TS_CPU (-1)

/* ---- library, errors, memory ---------------------------------------------------------------- */
void ts_free_string(char *s);
/* Writes libtorch's version ("2.13.0") into buf. */
void ts_version(char *buf, size_t len);
int ts_cuda_is_available(void);
int ts_cuda_device_count(void);
/* 1 when the shim was built with CUDA support (kernels in cuda/*.cu). */
int ts_built_with_cuda(void);
void ts_cuda_synchronize(int device, char **err);
void ts_cuda_device_name(int device, char *buf, size_t len, char **err);
void ts_cuda_capability(int device, int *major, int *minor, char **err);
/* stats[0..3] = allocated, reserved, peak allocated, peak reserved (bytes); [4] total device memory. */
void ts_cuda_memory_stats(int device, int64_t *stats, char **err);
void ts_cuda_reset_peak_memory(int device, char **err);
void ts_cuda_empty_cache(char **err);
void ts_cuda_set_memory_fraction(double fraction, int device, char **err);
void ts_set_num_threads(int n);
int ts_get_num_threads(void);
void ts_manual_seed(uint64_t seed, char **err);

/* CUDA streams: a worker owns one; ts_stream_set makes it current for the calling thread. */
ts_stream ts_stream_new(int device, char **err);
void ts_stream_set(ts_stream s, char **err);
void ts_stream_synchronize(ts_stream s, char **err);
void ts_stream_free(ts_stream s);

/* ---- random numbers (PyTorch's own generators: a seed gives torch's numbers) ----------------- */
ts_generator ts_generator_new(uint64_t seed, int device, char **err);
void ts_generator_free(ts_generator g);
/* g may be NULL (the global default generator). */
ts_tensor ts_randn(const int64_t *shape, int ndim, int dtype, int device, ts_generator g, char **err);
ts_tensor ts_rand(const int64_t *shape, int ndim, int dtype, int device, ts_generator g, char **err);
ts_tensor ts_randint(int64_t low, int64_t high, const int64_t *shape, int ndim, int dtype, int device,
                     ts_generator g, char **err);
ts_tensor ts_randperm(int64_t n, int dtype, int device, ts_generator g, char **err);
ts_tensor ts_normal_(ts_tensor t, double mean, double std, ts_generator g, char **err);
ts_tensor ts_uniform_(ts_tensor t, double from, double to, ts_generator g, char **err);

/* ---- creation and conversion ------------------------------------------------------------------ */
void ts_tensor_free(ts_tensor t);
/* A new handle to the same tensor (shares storage). */
ts_tensor ts_shallow_clone(ts_tensor t, char **err);
/* Copies nbytes of host memory into a new CPU tensor. */
ts_tensor ts_from_data(const void *data, const int64_t *shape, int ndim, int dtype, char **err);
/* Wraps host memory without copying; release(ctx) runs when the storage dies (e.g. to unmap a file). */
ts_tensor ts_from_blob(void *data, const int64_t *shape, int ndim, int dtype, void *ctx,
                       void (*release)(void *ctx), char **err);
ts_tensor ts_empty(const int64_t *shape, int ndim, int dtype, int device, char **err);
ts_tensor ts_zeros(const int64_t *shape, int ndim, int dtype, int device, char **err);
ts_tensor ts_ones(const int64_t *shape, int ndim, int dtype, int device, char **err);
ts_tensor ts_full(const int64_t *shape, int ndim, double value, int dtype, int device, char **err);
ts_tensor ts_zeros_like(ts_tensor t, char **err);
ts_tensor ts_ones_like(ts_tensor t, char **err);
ts_tensor ts_full_like(ts_tensor t, double value, char **err);
ts_tensor ts_arange(double start, double end, double step, int dtype, int device, char **err);
ts_tensor ts_linspace(double start, double end, int64_t steps, int dtype, int device, char **err);
ts_tensor ts_eye(int64_t n, int dtype, int device, char **err);
ts_tensor ts_to(ts_tensor t, int device, int dtype, int non_blocking, char **err);
ts_tensor ts_pin_memory(ts_tensor t, char **err);
ts_tensor ts_clone(ts_tensor t, char **err);
ts_tensor ts_contiguous(ts_tensor t, char **err);
/* In place: dst <- src (broadcast, dtype/device converted). Returns 0, or -1 on error. */
int ts_copy_(ts_tensor dst, ts_tensor src, char **err);
/* Copies the tensor's values (any device, made contiguous, same dtype) into host memory of nbytes. */
int ts_copy_to_host(ts_tensor t, void *dst, size_t nbytes, char **err);

/* ---- properties ------------------------------------------------------------------------------- */
int ts_ndim(ts_tensor t);
/* Writes min(ndim, cap) sizes; returns ndim. */
int ts_shape(ts_tensor t, int64_t *out, int cap);
int ts_strides(ts_tensor t, int64_t *out, int cap);
int ts_dtype(ts_tensor t);
int ts_device(ts_tensor t);
int64_t ts_numel(ts_tensor t);
int ts_is_contiguous(ts_tensor t);
/* Data pointer of a CPU tensor (NULL on CUDA). Valid while the tensor lives. */
void *ts_data_ptr(ts_tensor t);
double ts_item_double(ts_tensor t, char **err);
int64_t ts_item_int64(ts_tensor t, char **err);
/* A printable description (malloc'd; free with ts_free_string). */
char *ts_to_string(ts_tensor t, char **err);

/* ---- views and indexing ----------------------------------------------------------------------- */
ts_tensor ts_reshape(ts_tensor t, const int64_t *shape, int ndim, char **err);
ts_tensor ts_view(ts_tensor t, const int64_t *shape, int ndim, char **err);
ts_tensor ts_permute(ts_tensor t, const int64_t *dims, int ndim, char **err);
ts_tensor ts_transpose(ts_tensor t, int64_t d0, int64_t d1, char **err);
ts_tensor ts_narrow(ts_tensor t, int64_t dim, int64_t start, int64_t length, char **err);
ts_tensor ts_slice(ts_tensor t, int64_t dim, int64_t start, int64_t end, int64_t step, char **err);
ts_tensor ts_select(ts_tensor t, int64_t dim, int64_t index, char **err);
ts_tensor ts_squeeze(ts_tensor t, int64_t dim, char **err);
ts_tensor ts_unsqueeze(ts_tensor t, int64_t dim, char **err);
ts_tensor ts_flatten(ts_tensor t, int64_t start_dim, int64_t end_dim, char **err);
ts_tensor ts_expand(ts_tensor t, const int64_t *shape, int ndim, char **err);
ts_tensor ts_repeat(ts_tensor t, const int64_t *repeats, int ndim, char **err);
ts_tensor ts_repeat_interleave(ts_tensor t, int64_t repeats, int64_t dim, char **err);
ts_tensor ts_repeat_interleave_t(ts_tensor t, ts_tensor repeats, int64_t dim, char **err);
ts_tensor ts_flip(ts_tensor t, const int64_t *dims, int ndim, char **err);
ts_tensor ts_roll(ts_tensor t, const int64_t *shifts, const int64_t *dims, int ndim, char **err);
ts_tensor ts_tril(ts_tensor t, int64_t diagonal, char **err);
ts_tensor ts_triu(ts_tensor t, int64_t diagonal, char **err);
ts_tensor ts_index_select(ts_tensor t, int64_t dim, ts_tensor index, char **err);
ts_tensor ts_gather(ts_tensor t, int64_t dim, ts_tensor index, char **err);
ts_tensor ts_scatter(ts_tensor t, int64_t dim, ts_tensor index, ts_tensor src, char **err);
ts_tensor ts_scatter_add(ts_tensor t, int64_t dim, ts_tensor index, ts_tensor src, char **err);
/* reduce: "sum", "prod", "mean", "amax", "amin". */
ts_tensor ts_scatter_reduce(ts_tensor t, int64_t dim, ts_tensor index, ts_tensor src, const char *reduce,
                            int include_self, char **err);
ts_tensor ts_index_add(ts_tensor t, int64_t dim, ts_tensor index, ts_tensor src, char **err);
/* Advanced indexing t[indices...]; a NULL entry means ":" for that dimension. */
ts_tensor ts_index(ts_tensor t, const ts_tensor *indices, int n, char **err);
/* Out-of-place index_put (returns a new tensor); ts_index_put_ writes into t. */
ts_tensor ts_index_put(ts_tensor t, const ts_tensor *indices, int n, ts_tensor values, int accumulate, char **err);
int ts_index_put_(ts_tensor t, const ts_tensor *indices, int n, ts_tensor values, int accumulate, char **err);
ts_tensor ts_masked_fill(ts_tensor t, ts_tensor mask, double value, char **err);
ts_tensor ts_masked_select(ts_tensor t, ts_tensor mask, char **err);
ts_tensor ts_masked_scatter(ts_tensor t, ts_tensor mask, ts_tensor source, char **err);
ts_tensor ts_where(ts_tensor cond, ts_tensor a, ts_tensor b, char **err);
ts_tensor ts_cat(const ts_tensor *ts, int n, int64_t dim, char **err);
ts_tensor ts_stack(const ts_tensor *ts, int n, int64_t dim, char **err);
/* Splits into pieces; writes up to cap handles to out and returns the count (or -1). */
int ts_split(ts_tensor t, int64_t split_size, int64_t dim, ts_tensor *out, int cap, char **err);
int ts_split_sizes(ts_tensor t, const int64_t *sizes, int nsizes, int64_t dim, ts_tensor *out, int cap, char **err);
int ts_chunk(ts_tensor t, int64_t chunks, int64_t dim, ts_tensor *out, int cap, char **err);
int ts_unbind(ts_tensor t, int64_t dim, ts_tensor *out, int cap, char **err);
/* [N, ndim] int64 coordinates of the non-zero elements. */
ts_tensor ts_nonzero(ts_tensor t, char **err);
/* Unique values (sorted). inverse/counts may be NULL; dim < -ndim means "flattened". */
ts_tensor ts_unique(ts_tensor t, int64_t dim, int use_dim, ts_tensor *inverse, ts_tensor *counts, char **err);
ts_tensor ts_searchsorted(ts_tensor sorted, ts_tensor values, int right, char **err);
/* Writes n grids (indexing "ij") to out; returns n or -1. */
int ts_meshgrid_ij(const ts_tensor *ts, int n, ts_tensor *out, char **err);

/* ---- elementwise ------------------------------------------------------------------------------ */
/* Unary op codes for ts_unary. */
enum ts_unary_op {
    TS_NEG = 0, TS_ABS, TS_EXP, TS_LOG, TS_SQRT, TS_RSQRT, TS_SIN, TS_COS, TS_TANH, TS_SIGMOID, TS_RELU,
    TS_SILU, TS_GELU, TS_GELU_TANH, TS_ERF, TS_FLOOR, TS_CEIL, TS_ROUND, TS_SIGN, TS_RECIPROCAL, TS_LOG1P,
    TS_EXPM1, TS_SQUARE, TS_LOGICAL_NOT, TS_ISNAN, TS_ISFINITE, TS_TRUNC, TS_ATAN, TS_ASIN, TS_ACOS, TS_TAN,
    TS_LOG2, TS_EXP2, TS_MISH, TS_HARDSWISH, TS_QUICK_GELU, TS_FRAC, TS_LOGIT, TS_UNARY_COUNT
};
ts_tensor ts_unary(int op, ts_tensor t, char **err);
/* Binary op codes (tensor op tensor, broadcasting). */
enum ts_binary_op {
    TS_ADD = 0, TS_SUB, TS_MUL, TS_DIV, TS_POW, TS_MAXIMUM, TS_MINIMUM, TS_EQ, TS_NE, TS_LT, TS_LE, TS_GT,
    TS_GE, TS_LOGICAL_AND, TS_LOGICAL_OR, TS_ATAN2, TS_REMAINDER, TS_FLOOR_DIVIDE, TS_BITWISE_AND,
    TS_BITWISE_OR, TS_BITWISE_XOR, TS_LOGICAL_XOR, TS_BINARY_COUNT
};
ts_tensor ts_binary(int op, ts_tensor a, ts_tensor b, char **err);
/* tensor op scalar (TS_SUB/TS_DIV/TS_POW: t - s, t / s, t ** s); ts_binary_rscalar: s op t. */
ts_tensor ts_binary_scalar(int op, ts_tensor t, double s, char **err);
ts_tensor ts_binary_rscalar(int op, double s, ts_tensor t, char **err);
/* In place a <- a op b (TS_ADD, TS_SUB, TS_MUL, TS_DIV); alpha scales b for ADD/SUB. */
int ts_binary_(int op, ts_tensor a, ts_tensor b, double alpha, char **err);
int ts_binary_scalar_(int op, ts_tensor a, double s, char **err);
/* a + alpha * b */
ts_tensor ts_add_scaled(ts_tensor a, ts_tensor b, double alpha, char **err);
/* self + value * t1 * t2 */
ts_tensor ts_addcmul(ts_tensor self, ts_tensor t1, ts_tensor t2, double value, char **err);
ts_tensor ts_lerp(ts_tensor a, ts_tensor b, double weight, char **err);
/* has_min/has_max choose which bounds apply. */
ts_tensor ts_clamp(ts_tensor t, double min, int has_min, double max, int has_max, char **err);
ts_tensor ts_clamp_t(ts_tensor t, ts_tensor min, ts_tensor max, char **err);
ts_tensor ts_nan_to_num(ts_tensor t, double nan, double posinf, double neginf, char **err);
ts_tensor ts_pow_tensor_scalar(ts_tensor t, double exponent, char **err);
ts_tensor ts_softplus(ts_tensor t, double beta, double threshold, char **err);
ts_tensor ts_leaky_relu(ts_tensor t, double slope, char **err);
ts_tensor ts_elu(ts_tensor t, double alpha, char **err);
ts_tensor ts_hardtanh(ts_tensor t, double min, double max, char **err);

/* ---- linear algebra --------------------------------------------------------------------------- */
ts_tensor ts_matmul(ts_tensor a, ts_tensor b, char **err);
ts_tensor ts_bmm(ts_tensor a, ts_tensor b, char **err);
/* x @ w^T + b (b may be NULL). */
ts_tensor ts_linear(ts_tensor x, ts_tensor w, ts_tensor b, char **err);
ts_tensor ts_baddbmm(ts_tensor self, ts_tensor b1, ts_tensor b2, double beta, double alpha, char **err);
ts_tensor ts_addmm(ts_tensor self, ts_tensor m1, ts_tensor m2, double beta, double alpha, char **err);
ts_tensor ts_einsum(const char *equation, const ts_tensor *ts, int n, char **err);
ts_tensor ts_outer(ts_tensor a, ts_tensor b, char **err);
/* fp8 scaled matmul (torch._scaled_mm): a [M,K] row-major fp8, b [K,N] column-major fp8, float32 scales. */
ts_tensor ts_scaled_mm(ts_tensor a, ts_tensor b, ts_tensor scale_a, ts_tensor scale_b, ts_tensor bias,
                       int out_dtype, char **err);
ts_tensor ts_linalg_inv(ts_tensor t, char **err);
ts_tensor ts_linalg_det(ts_tensor t, char **err);

/* ---- convolution, normalisation, pooling, resampling ------------------------------------------ */
/* N-d convolution (nspatial = 1, 2 or 3); transposed uses output_padding; bias may be NULL. */
ts_tensor ts_conv(ts_tensor x, ts_tensor w, ts_tensor b, const int64_t *stride, const int64_t *padding,
                  const int64_t *dilation, int transposed, const int64_t *output_padding, int nspatial,
                  int64_t groups, char **err);
ts_tensor ts_group_norm(ts_tensor x, int64_t groups, ts_tensor w, ts_tensor b, double eps, char **err);
ts_tensor ts_layer_norm(ts_tensor x, const int64_t *shape, int ndim, ts_tensor w, ts_tensor b, double eps,
                        char **err);
/* eps < 0 uses the dtype's machine epsilon (torch default). */
ts_tensor ts_rms_norm(ts_tensor x, const int64_t *shape, int ndim, ts_tensor w, double eps, char **err);
/* Inference batch norm with running statistics. */
ts_tensor ts_batch_norm(ts_tensor x, ts_tensor w, ts_tensor b, ts_tensor mean, ts_tensor var, double eps,
                        char **err);
ts_tensor ts_softmax(ts_tensor t, int64_t dim, char **err);
ts_tensor ts_log_softmax(ts_tensor t, int64_t dim, char **err);
ts_tensor ts_normalize(ts_tensor t, double p, int64_t dim, double eps, char **err);
ts_tensor ts_max_pool(ts_tensor x, const int64_t *kernel, const int64_t *stride, const int64_t *padding,
                      int nspatial, int ceil_mode, char **err);
ts_tensor ts_avg_pool(ts_tensor x, const int64_t *kernel, const int64_t *stride, const int64_t *padding,
                      int nspatial, int ceil_mode, int count_include_pad, char **err);
ts_tensor ts_adaptive_avg_pool(ts_tensor x, const int64_t *out_size, int nspatial, char **err);
enum ts_interp_mode { TS_NEAREST = 0, TS_NEAREST_EXACT, TS_LINEAR, TS_BILINEAR, TS_BICUBIC, TS_TRILINEAR, TS_AREA };
/* size: the output spatial size (nspatial entries). */
ts_tensor ts_interpolate(ts_tensor x, int mode, const int64_t *size, int nspatial, int align_corners,
                         int antialias, char **err);
/* mode 0 bilinear, 1 nearest, 2 bicubic; padding 0 zeros, 1 border, 2 reflection. */
ts_tensor ts_grid_sample(ts_tensor x, ts_tensor grid, int mode, int padding, int align_corners, char **err);
/* mode: "constant", "reflect", "replicate", "circular"; pads as torch.nn.functional.pad (last dim first). */
ts_tensor ts_pad(ts_tensor x, const int64_t *pads, int npads, const char *mode, double value, char **err);
ts_tensor ts_pixel_shuffle(ts_tensor x, int64_t factor, char **err);
ts_tensor ts_pixel_unshuffle(ts_tensor x, int64_t factor, char **err);
/* torch.nn.functional.unfold (im2col) for 4-d input. */
ts_tensor ts_im2col(ts_tensor x, const int64_t *kernel, const int64_t *dilation, const int64_t *padding,
                    const int64_t *stride, char **err);

/* Fused attention: q,k,v [..., L, E]; mask NULL, bool (true = attend) or additive float; scale <= 0
 * means 1/sqrt(E). */
ts_tensor ts_sdpa(ts_tensor q, ts_tensor k, ts_tensor v, ts_tensor mask, int is_causal, double scale,
                  char **err);

/* ---- reductions -------------------------------------------------------------------------------- */
/* dims NULL / ndims 0 = all dimensions. dtype -1 keeps the input dtype (ts_sum may pass one). */
ts_tensor ts_sum(ts_tensor t, const int64_t *dims, int ndims, int keepdim, int dtype, char **err);
ts_tensor ts_mean(ts_tensor t, const int64_t *dims, int ndims, int keepdim, char **err);
ts_tensor ts_prod(ts_tensor t, int64_t dim, int keepdim, char **err);
ts_tensor ts_var(ts_tensor t, const int64_t *dims, int ndims, int64_t correction, int keepdim, char **err);
ts_tensor ts_std(ts_tensor t, const int64_t *dims, int ndims, int64_t correction, int keepdim, char **err);
ts_tensor ts_amax(ts_tensor t, const int64_t *dims, int ndims, int keepdim, char **err);
ts_tensor ts_amin(ts_tensor t, const int64_t *dims, int ndims, int keepdim, char **err);
ts_tensor ts_logsumexp(ts_tensor t, const int64_t *dims, int ndims, int keepdim, char **err);
ts_tensor ts_norm(ts_tensor t, double p, const int64_t *dims, int ndims, int keepdim, char **err);
/* max/min along dim: returns values; *indices gets the argmax handle when non-NULL. */
ts_tensor ts_max_dim(ts_tensor t, int64_t dim, int keepdim, ts_tensor *indices, char **err);
ts_tensor ts_min_dim(ts_tensor t, int64_t dim, int keepdim, ts_tensor *indices, char **err);
ts_tensor ts_max_all(ts_tensor t, char **err);
ts_tensor ts_min_all(ts_tensor t, char **err);
ts_tensor ts_argmax(ts_tensor t, int64_t dim, int keepdim, char **err);
ts_tensor ts_argmin(ts_tensor t, int64_t dim, int keepdim, char **err);
ts_tensor ts_any(ts_tensor t, char **err);
ts_tensor ts_all(ts_tensor t, char **err);
ts_tensor ts_topk(ts_tensor t, int64_t k, int64_t dim, int largest, int sorted, ts_tensor *indices, char **err);
ts_tensor ts_sort(ts_tensor t, int64_t dim, int descending, int stable, ts_tensor *indices, char **err);
ts_tensor ts_argsort(ts_tensor t, int64_t dim, int descending, int stable, char **err);
ts_tensor ts_cumsum(ts_tensor t, int64_t dim, char **err);
ts_tensor ts_cumprod(ts_tensor t, int64_t dim, char **err);
ts_tensor ts_bincount(ts_tensor t, ts_tensor weights, int64_t minlength, char **err);
int ts_allclose(ts_tensor a, ts_tensor b, double rtol, double atol, char **err);
int ts_equal(ts_tensor a, ts_tensor b, char **err);

#ifdef __cplusplus
}
#endif
#endif
