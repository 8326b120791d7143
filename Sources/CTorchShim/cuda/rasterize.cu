// Gaussian splat rasterization on CUDA, following gsplat 1.5.3 `rasterization` in classic mode (RGB,
// packed=False) as the subnet-17 validator calls it, and equal to Sources/CLIPValidate's CPURasterizer:
//
//   project (EWA, eps2d 0.3, near/far culling, opacity-aware radius)  ->  tiles touched per Gaussian
//   -> prefix sum -> emit one (image|tile << 32 | depth) key per touched tile -> stable radix sort
//   -> per-tile ranges -> one 16x16 block per tile composites front to back from shared-memory batches.
//
// All C cameras go through one launch sequence on the current stream; the only host sync is reading the
// number of intersections (gsplat does the same).
#include "rasterize.h"

#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

// CUB ships with every CUDA toolkit since 11.0 (CUDA 13 keeps it under include/cccl, which nvcc searches).
#include <cub/device/device_radix_sort.cuh>

#include <stdexcept>
#include <string>

namespace tsr {
namespace {

constexpr int kTileSize = 16;
constexpr int kBlockSize = kTileSize * kTileSize;
constexpr float kEps2d = 0.3f;
constexpr float kAlphaThreshold = 1.0f / 255.0f;
constexpr float kMaxAlpha = 0.999f;
constexpr float kTransmittanceStop = 1e-4f;
constexpr float kMaxExtendSigmas = 3.33f;

void check_launch(const char *what) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        throw std::runtime_error(std::string("rasterize: ") + what + " kernel failed: " + cudaGetErrorString(e));
}

void check_call(cudaError_t e, const char *what) {
    if (e != cudaSuccess) throw std::runtime_error(std::string("rasterize: ") + what + ": " + cudaGetErrorString(e));
}

// Float tile coordinate to a tile index in [0, upper], as gsplat's float -> uint32 conversion (which saturates
// at 0) followed by min(., upper). NaN lands on 0.
__device__ __forceinline__ int clamp_tile(float v, int upper) {
    if (!(v > 0.f)) return 0;
    return v >= static_cast<float>(upper) ? upper : static_cast<int>(v);
}

// One thread per (camera, Gaussian): gsplat's projection_ewa_3dgs_fused_fwd_kernel for a pinhole camera plus the
// tile range of isect_tiles. Culled Gaussians get tile_count 0.
__global__ void project_kernel(int64_t C, int64_t N, const float *__restrict__ means,
                               const float *__restrict__ quats, const float *__restrict__ scales,
                               const float *__restrict__ opacities, const float *__restrict__ viewmats,
                               const float *__restrict__ Ks, int width, int height, float near_plane,
                               float far_plane, int tiles_x, int tiles_y, float2 *__restrict__ means2d,
                               float4 *__restrict__ conic_opacity, float *__restrict__ depths,
                               int4 *__restrict__ tile_rects, int32_t *__restrict__ tile_counts) {
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= C * N) return;
    const int64_t cam = idx / N;
    const int64_t g = idx - cam * N;
    tile_counts[idx] = 0;

    const float *V = viewmats + cam * 16;
    const float r00 = V[0], r01 = V[1], r02 = V[2], t0 = V[3];
    const float r10 = V[4], r11 = V[5], r12 = V[6], t1 = V[7];
    const float r20 = V[8], r21 = V[9], r22 = V[10], t2 = V[11];
    const float px = means[3 * g], py = means[3 * g + 1], pz = means[3 * g + 2];
    const float cx_ = r00 * px + r01 * py + r02 * pz + t0;
    const float cy_ = r10 * px + r11 * py + r12 * pz + t1;
    const float cz = r20 * px + r21 * py + r22 * pz + t2;
    if (cz < near_plane || cz > far_plane) return;

    // Rotation matrix columns from the quaternion (w, x, y, z), normalised.
    float qw = quats[4 * g], qx = quats[4 * g + 1], qy = quats[4 * g + 2], qz = quats[4 * g + 3];
    const float inv_norm = 1.f / sqrtf(qw * qw + qx * qx + qy * qy + qz * qz);
    qw *= inv_norm;
    qx *= inv_norm;
    qy *= inv_norm;
    qz *= inv_norm;
    const float x2 = qx * qx, y2 = qy * qy, z2 = qz * qz;
    const float xy = qx * qy, xz = qx * qz, yz = qy * qz;
    const float wx = qw * qx, wy = qw * qy, wz = qw * qz;
    const float sx = scales[3 * g], sy = scales[3 * g + 1], sz = scales[3 * g + 2];
    // M = R S, columns m0, m1, m2.
    const float m0x = (1.f - 2.f * (y2 + z2)) * sx, m0y = 2.f * (xy + wz) * sx, m0z = 2.f * (xz - wy) * sx;
    const float m1x = 2.f * (xy - wz) * sy, m1y = (1.f - 2.f * (x2 + z2)) * sy, m1z = 2.f * (yz + wx) * sy;
    const float m2x = 2.f * (xz + wy) * sz, m2y = 2.f * (yz - wx) * sz, m2z = (1.f - 2.f * (x2 + y2)) * sz;
    // World covariance M M^T.
    const float w00 = m0x * m0x + m1x * m1x + m2x * m2x;
    const float w01 = m0x * m0y + m1x * m1y + m2x * m2y;
    const float w02 = m0x * m0z + m1x * m1z + m2x * m2z;
    const float w11 = m0y * m0y + m1y * m1y + m2y * m2y;
    const float w12 = m0y * m0z + m1y * m1z + m2y * m2z;
    const float w22 = m0z * m0z + m1z * m1z + m2z * m2z;

    // Camera covariance R_cam W R_cam^T: a_k = W r_k for each row r_k of the camera rotation.
    const float a0x = w00 * r00 + w01 * r01 + w02 * r02;
    const float a0y = w01 * r00 + w11 * r01 + w12 * r02;
    const float a0z = w02 * r00 + w12 * r01 + w22 * r02;
    const float a1x = w00 * r10 + w01 * r11 + w02 * r12;
    const float a1y = w01 * r10 + w11 * r11 + w12 * r12;
    const float a1z = w02 * r10 + w12 * r11 + w22 * r12;
    const float a2x = w00 * r20 + w01 * r21 + w02 * r22;
    const float a2y = w01 * r20 + w11 * r21 + w12 * r22;
    const float a2z = w02 * r20 + w12 * r21 + w22 * r22;
    const float v00 = a0x * r00 + a0y * r01 + a0z * r02;
    const float v01 = a0x * r10 + a0y * r11 + a0z * r12;
    const float v02 = a0x * r20 + a0y * r21 + a0z * r22;
    const float v11 = a1x * r10 + a1y * r11 + a1z * r12;
    const float v12 = a1x * r20 + a1y * r21 + a1z * r22;
    const float v22 = a2x * r20 + a2y * r21 + a2z * r22;

    // Perspective Jacobian with the centre clamped to 1.3x the frustum (gsplat persp_proj).
    const float *K = Ks + cam * 9;
    const float fx = K[0], cx = K[2], fy = K[4], cy = K[5];
    const float fw = static_cast<float>(width), fh = static_cast<float>(height);
    const float tan_fov_x = 0.5f * fw / fx;
    const float tan_fov_y = 0.5f * fh / fy;
    const float lim_x_pos = (fw - cx) / fx + 0.3f * tan_fov_x;
    const float lim_x_neg = cx / fx + 0.3f * tan_fov_x;
    const float lim_y_pos = (fh - cy) / fy + 0.3f * tan_fov_y;
    const float lim_y_neg = cy / fy + 0.3f * tan_fov_y;
    const float rz = 1.f / cz;
    const float rz2 = rz * rz;
    const float tx = cz * fminf(lim_x_pos, fmaxf(-lim_x_neg, cx_ * rz));
    const float ty = cz * fminf(lim_y_pos, fmaxf(-lim_y_neg, cy_ * rz));
    const float j00 = fx * rz, j02 = -fx * tx * rz2;
    const float j11 = fy * rz, j12 = -fy * ty * rz2;
    // cov2d = J V J^T with J = [[j00, 0, j02], [0, j11, j12]].
    const float jv0x = j00 * v00 + j02 * v02, jv0y = j00 * v01 + j02 * v12, jv0z = j00 * v02 + j02 * v22;
    const float jv1y = j11 * v11 + j12 * v12, jv1z = j11 * v12 + j12 * v22;
    const float cov00 = jv0x * j00 + jv0z * j02 + kEps2d;
    const float cov01 = jv0y * j11 + jv0z * j12;
    const float cov11 = jv1y * j11 + jv1z * j12 + kEps2d;
    const float mean_x = fx * cx_ * rz + cx;
    const float mean_y = fy * cy_ * rz + cy;

    const float det = cov00 * cov11 - cov01 * cov01;
    if (!(det > 0.f)) return;
    const float inv_det = 1.f / det;
    const float conic_a = cov11 * inv_det, conic_b = -cov01 * inv_det, conic_c = cov00 * inv_det;

    const float opacity = opacities[g];
    if (!(opacity >= kAlphaThreshold)) return;
    const float extend = fminf(kMaxExtendSigmas, sqrtf(2.f * __logf(opacity / kAlphaThreshold)));
    const float radius_x = ceilf(extend * sqrtf(cov00));
    const float radius_y = ceilf(extend * sqrtf(cov11));
    // A NaN anywhere ends up as radius 0 in gsplat (float -> int of NaN), i.e. culled.
    if (!(isfinite(radius_x) && isfinite(radius_y) && isfinite(mean_x) && isfinite(mean_y) && isfinite(conic_a) &&
          isfinite(conic_b) && isfinite(conic_c)))
        return;
    if (radius_x <= 0.f && radius_y <= 0.f) return;
    if (mean_x + radius_x <= 0.f || mean_x - radius_x >= fw || mean_y + radius_y <= 0.f || mean_y - radius_y >= fh)
        return;
    if (radius_x >= 2147483520.f || radius_y >= 2147483520.f) return;
    // isect_tiles: a radius of 0 on either axis touches no tile.
    if (static_cast<int>(radius_x) <= 0 || static_cast<int>(radius_y) <= 0) return;

    const float tile_x = mean_x / static_cast<float>(kTileSize), tile_y = mean_y / static_cast<float>(kTileSize);
    const float tile_rx = static_cast<float>(static_cast<int>(radius_x)) / static_cast<float>(kTileSize);
    const float tile_ry = static_cast<float>(static_cast<int>(radius_y)) / static_cast<float>(kTileSize);
    const int4 rect = make_int4(clamp_tile(floorf(tile_x - tile_rx), tiles_x), clamp_tile(floorf(tile_y - tile_ry), tiles_y),
                                clamp_tile(ceilf(tile_x + tile_rx), tiles_x), clamp_tile(ceilf(tile_y + tile_ry), tiles_y));
    const int count = (rect.z - rect.x) * (rect.w - rect.y);
    if (count <= 0) return;

    means2d[idx] = make_float2(mean_x, mean_y);
    conic_opacity[idx] = make_float4(conic_a, conic_b, conic_c, opacity);
    depths[idx] = cz;
    tile_rects[idx] = rect;
    tile_counts[idx] = count;
}

// One thread per (camera, Gaussian): writes a key (image * tiles + tile) << 32 | depth bits and the Gaussian's flat
// index for every tile it touches, at its prefix-sum offset. Depth > near > 0, so the float bits order like the
// value; emission follows the flat index, so a stable sort breaks depth ties by index (as the CPU renderer does).
__global__ void emit_kernel(int64_t count, int64_t N, int tiles_x, int tiles_per_image,
                            const int32_t *__restrict__ tile_counts, const int64_t *__restrict__ offsets_end,
                            const int4 *__restrict__ tile_rects, const float *__restrict__ depths,
                            uint64_t *__restrict__ keys, int32_t *__restrict__ ids) {
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= count || tile_counts[idx] == 0) return;
    int64_t out = idx == 0 ? 0 : offsets_end[idx - 1];
    const int4 rect = tile_rects[idx];
    const uint64_t image_base = static_cast<uint64_t>(idx / N) * static_cast<uint64_t>(tiles_per_image);
    const uint64_t depth_bits = __float_as_uint(depths[idx]);
    for (int ty = rect.y; ty < rect.w; ++ty) {
        for (int tx = rect.x; tx < rect.z; ++tx) {
            const uint64_t tile = image_base + static_cast<uint64_t>(ty * tiles_x + tx);
            keys[out] = (tile << 32) | depth_bits;
            ids[out] = static_cast<int32_t>(idx);
            ++out;
        }
    }
}

// One thread per sorted intersection: [start, end) of every non-empty tile (empty tiles stay [0, 0)).
__global__ void tile_ranges_kernel(int64_t n_isects, const uint64_t *__restrict__ keys, int2 *__restrict__ ranges) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n_isects) return;
    const uint64_t tile = keys[i] >> 32;
    if (i == 0 || (keys[i - 1] >> 32) != tile) ranges[tile].x = static_cast<int>(i);
    if (i == n_isects - 1 || (keys[i + 1] >> 32) != tile) ranges[tile].y = static_cast<int>(i + 1);
}

// One 16x16 block per (tile, camera), one thread per pixel (gsplat rasterize_to_pixels_fwd): the block loads the
// tile's depth-sorted Gaussians into shared memory 256 at a time and every pixel composites them front to back.
__global__ void __launch_bounds__(kBlockSize)
composite_kernel(int width, int height, int tiles_x, int tiles_y, int64_t N, const int2 *__restrict__ ranges,
                 const int32_t *__restrict__ ids, const float2 *__restrict__ means2d,
                 const float4 *__restrict__ conic_opacity, const float *__restrict__ colors,
                 const float *__restrict__ background, float *__restrict__ rgb_out, float *__restrict__ alpha_out) {
    __shared__ float2 s_xy[kBlockSize];
    __shared__ float4 s_conic_opacity[kBlockSize];
    __shared__ float3 s_rgb[kBlockSize];

    const int cam = blockIdx.z;
    const int64_t tile = (static_cast<int64_t>(cam) * tiles_y + blockIdx.y) * tiles_x + blockIdx.x;
    const int row = blockIdx.y * kTileSize + threadIdx.y;
    const int col = blockIdx.x * kTileSize + threadIdx.x;
    const int rank = threadIdx.y * kTileSize + threadIdx.x;
    const bool inside = row < height && col < width;
    bool done = !inside;
    const float px = static_cast<float>(col) + 0.5f;
    const float py = static_cast<float>(row) + 0.5f;

    const int2 range = ranges[tile];
    float T = 1.f;
    float acc_r = 0.f, acc_g = 0.f, acc_b = 0.f;
    for (int start = range.x; start < range.y; start += kBlockSize) {
        // Also the barrier that keeps the previous batch in shared memory until every thread is through with it.
        if (__syncthreads_count(done) == kBlockSize) break;
        const int k = start + rank;
        if (k < range.y) {
            const int32_t flat = ids[k];
            const int64_t g = flat % N;
            s_xy[rank] = means2d[flat];
            s_conic_opacity[rank] = conic_opacity[flat];
            s_rgb[rank] = make_float3(colors[3 * g], colors[3 * g + 1], colors[3 * g + 2]);
        }
        __syncthreads();
        const int batch = min(kBlockSize, range.y - start);
        for (int t = 0; t < batch && !done; ++t) {
            const float4 co = s_conic_opacity[t];
            const float2 xy = s_xy[t];
            const float dx = xy.x - px, dy = xy.y - py;
            const float sigma = 0.5f * (co.x * dx * dx + co.z * dy * dy) + co.y * dx * dy;
            const float alpha = fminf(kMaxAlpha, co.w * __expf(-sigma));
            if (sigma < 0.f || alpha < kAlphaThreshold) continue;
            const float next_T = T * (1.f - alpha);
            if (next_T <= kTransmittanceStop) {
                done = true;
                break;
            }
            const float vis = alpha * T;
            const float3 c = s_rgb[t];
            acc_r += c.x * vis;
            acc_g += c.y * vis;
            acc_b += c.z * vis;
            T = next_T;
        }
    }

    if (inside) {
        const int64_t pixel = (static_cast<int64_t>(cam) * height + row) * width + col;
        rgb_out[3 * pixel] = acc_r + T * background[0];
        rgb_out[3 * pixel + 1] = acc_g + T * background[1];
        rgb_out[3 * pixel + 2] = acc_b + T * background[2];
        alpha_out[pixel] = 1.f - T;
    }
}

unsigned blocks_for(int64_t n) { return static_cast<unsigned>((n + kBlockSize - 1) / kBlockSize); }

int bits_for(uint64_t n) {
    int bits = 0;
    while (bits < 64 && (uint64_t(1) << bits) < n) ++bits;
    return bits;
}

// Sorts (key, id) pairs by key with CUB's radix sort over the key bits in use (stable: equal keys keep their
// emission order).
std::pair<at::Tensor, at::Tensor> sort_pairs(const at::Tensor &keys, const at::Tensor &ids, int key_bits,
                                             cudaStream_t stream) {
    const int n = static_cast<int>(keys.numel());
    at::Tensor keys_out = at::empty_like(keys);
    at::Tensor ids_out = at::empty_like(ids);
    const auto *k_in = reinterpret_cast<const uint64_t *>(keys.data_ptr<int64_t>());
    auto *k_out = reinterpret_cast<uint64_t *>(keys_out.data_ptr<int64_t>());
    size_t temp_bytes = 0;
    check_call(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, k_in, k_out, ids.data_ptr<int32_t>(),
                                               ids_out.data_ptr<int32_t>(), n, 0, key_bits, stream),
               "radix sort (temporary storage size)");
    // The caching allocator hands the buffer out in stream order, so no extra sync is needed.
    at::Tensor temp = at::empty({static_cast<int64_t>(temp_bytes) + 1}, keys.options().dtype(at::kByte));
    check_call(cub::DeviceRadixSort::SortPairs(temp.mutable_data_ptr(), temp_bytes, k_in, k_out, ids.data_ptr<int32_t>(),
                                               ids_out.data_ptr<int32_t>(), n, 0, key_bits, stream),
               "radix sort");
    return {keys_out, ids_out};
}

} // namespace

std::pair<at::Tensor, at::Tensor> rasterize_gaussians_cuda(const at::Tensor &means, const at::Tensor &quats,
                                                           const at::Tensor &scales, const at::Tensor &opacities,
                                                           const at::Tensor &colors, const at::Tensor &viewmats,
                                                           const at::Tensor &Ks, const at::Tensor &background,
                                                           const RasterizeOptions &options) {
    const c10::cuda::CUDAGuard guard(means.device());
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream(means.device().index()).stream();
    const int64_t N = means.size(0);
    const int64_t C = viewmats.size(0);
    const int width = static_cast<int>(options.width);
    const int height = static_cast<int>(options.height);
    const int tiles_x = (width + kTileSize - 1) / kTileSize;
    const int tiles_y = (height + kTileSize - 1) / kTileSize;
    const int64_t tiles_per_image = static_cast<int64_t>(tiles_x) * tiles_y;
    const auto float_options = means.options().dtype(at::kFloat);
    const auto int_options = means.options().dtype(at::kInt);

    at::Tensor rgb = at::empty({C, height, width, 3}, float_options);
    at::Tensor alpha = at::empty({C, height, width}, float_options);
    at::Tensor ranges = at::zeros({C * tiles_per_image, 2}, int_options);
    at::Tensor ids;
    at::Tensor means2d = at::empty({C, N, 2}, float_options);
    at::Tensor conic_opacity = at::empty({C, N, 4}, float_options);

    const int64_t count = C * N;
    if (count > 0) {
        at::Tensor depths = at::empty({C, N}, float_options);
        at::Tensor tile_rects = at::empty({C, N, 4}, int_options);
        at::Tensor tile_counts = at::empty({C, N}, int_options);
        project_kernel<<<blocks_for(count), kBlockSize, 0, stream>>>(
            C, N, means.data_ptr<float>(), quats.data_ptr<float>(), scales.data_ptr<float>(),
            opacities.data_ptr<float>(), viewmats.data_ptr<float>(), Ks.data_ptr<float>(), width, height,
            options.near_plane, options.far_plane, tiles_x, tiles_y,
            reinterpret_cast<float2 *>(means2d.data_ptr<float>()),
            reinterpret_cast<float4 *>(conic_opacity.data_ptr<float>()), depths.data_ptr<float>(),
            reinterpret_cast<int4 *>(tile_rects.data_ptr<int32_t>()), tile_counts.data_ptr<int32_t>());
        check_launch("projection");

        at::Tensor offsets_end = at::cumsum(tile_counts.view({-1}), 0, at::kLong);
        const int64_t n_isects = offsets_end[-1].item<int64_t>();
        if (n_isects > INT32_MAX - kBlockSize)
            throw std::runtime_error("rasterize: " + std::to_string(n_isects) +
                                     " tile intersections exceed the 2^31 limit of one launch");
        if (n_isects > 0) {
            at::Tensor keys = at::empty({n_isects}, means.options().dtype(at::kLong));
            at::Tensor unsorted_ids = at::empty({n_isects}, int_options);
            emit_kernel<<<blocks_for(count), kBlockSize, 0, stream>>>(
                count, N, tiles_x, static_cast<int>(tiles_per_image), tile_counts.data_ptr<int32_t>(),
                offsets_end.data_ptr<int64_t>(), reinterpret_cast<const int4 *>(tile_rects.data_ptr<int32_t>()),
                depths.data_ptr<float>(), reinterpret_cast<uint64_t *>(keys.data_ptr<int64_t>()),
                unsorted_ids.data_ptr<int32_t>());
            check_launch("intersection emit");

            const int key_bits = 32 + bits_for(static_cast<uint64_t>(C * tiles_per_image));
            auto sorted = sort_pairs(keys, unsorted_ids, key_bits, stream);
            ids = sorted.second;
            tile_ranges_kernel<<<blocks_for(n_isects), kBlockSize, 0, stream>>>(
                n_isects, reinterpret_cast<const uint64_t *>(sorted.first.data_ptr<int64_t>()),
                reinterpret_cast<int2 *>(ranges.data_ptr<int32_t>()));
            check_launch("tile range");
        }
    }
    if (!ids.defined()) ids = at::empty({0}, int_options);

    const dim3 grid(static_cast<unsigned>(tiles_x), static_cast<unsigned>(tiles_y), static_cast<unsigned>(C));
    const dim3 block(kTileSize, kTileSize, 1);
    composite_kernel<<<grid, block, 0, stream>>>(
        width, height, tiles_x, tiles_y, N > 0 ? N : 1, reinterpret_cast<const int2 *>(ranges.data_ptr<int32_t>()),
        ids.data_ptr<int32_t>(), reinterpret_cast<const float2 *>(means2d.data_ptr<float>()),
        reinterpret_cast<const float4 *>(conic_opacity.data_ptr<float>()), colors.data_ptr<float>(),
        background.data_ptr<float>(), rgb.data_ptr<float>(), alpha.data_ptr<float>());
    check_launch("compositing");
    return {rgb, alpha};
}

} // namespace tsr
