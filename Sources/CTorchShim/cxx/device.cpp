// CUDA device queries, memory statistics and streams. Built without CUDA (SHIM_WITH_CUDA undefined)
// these report "no CUDA" errors instead of failing to link.
#include "shim_internal.h"

#ifdef SHIM_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#endif

using namespace tsi;

struct ts_stream_s {
#ifdef SHIM_WITH_CUDA
    c10::cuda::CUDAStream stream;
#else
    int unused;
#endif
};

namespace {
[[noreturn]] void no_cuda() { throw std::runtime_error("libtorchshim was built without CUDA support"); }

#ifdef SHIM_WITH_CUDA
void check_device(int device) {
    int n = static_cast<int>(c10::cuda::device_count());
    if (device < 0 || device >= n)
        throw std::invalid_argument("CUDA device " + std::to_string(device) + " does not exist (" +
                                    std::to_string(n) + " visible)");
    // The caching allocator is created lazily with CUDA's first use; its queries fail before that.
    at::globalContext().lazyInitDevice(c10::DeviceType::CUDA);
}
#endif
} // namespace

extern "C" {

int ts_built_with_cuda(void) {
#ifdef SHIM_WITH_CUDA
    return 1;
#else
    return 0;
#endif
}

int ts_cuda_is_available(void) {
    try { return torch::cuda::is_available() ? 1 : 0; } catch (...) { return 0; }
}

int ts_cuda_device_count(void) {
    try { return static_cast<int>(torch::cuda::device_count()); } catch (...) { return 0; }
}

void ts_cuda_synchronize(int device, char **err) {
    TS_GUARD(, {
#ifdef SHIM_WITH_CUDA
        check_device(device);
        c10::cuda::device_synchronize();
        (void)device;
        return;
#else
        (void)device;
        no_cuda();
#endif
    })
}

void ts_cuda_device_name(int device, char *buf, size_t len, char **err) {
    TS_GUARD(, {
#ifdef SHIM_WITH_CUDA
        check_device(device);
        auto *p = at::cuda::getDeviceProperties(device);
        std::snprintf(buf, len, "%s", p->name);
        return;
#else
        (void)device; (void)buf; (void)len;
        no_cuda();
#endif
    })
}

void ts_cuda_capability(int device, int *major, int *minor, char **err) {
    TS_GUARD(, {
#ifdef SHIM_WITH_CUDA
        check_device(device);
        auto *p = at::cuda::getDeviceProperties(device);
        *major = p->major;
        *minor = p->minor;
        return;
#else
        (void)device; (void)major; (void)minor;
        no_cuda();
#endif
    })
}

void ts_cuda_memory_stats(int device, int64_t *stats, char **err) {
    TS_GUARD(, {
#ifdef SHIM_WITH_CUDA
        check_device(device);
        using namespace c10::CachingDeviceAllocator;
        auto s = c10::cuda::CUDACachingAllocator::getDeviceStats(device);
        size_t agg = static_cast<size_t>(StatType::AGGREGATE);
        stats[0] = s.allocated_bytes[agg].current;
        stats[1] = s.reserved_bytes[agg].current;
        stats[2] = s.allocated_bytes[agg].peak;
        stats[3] = s.reserved_bytes[agg].peak;
        stats[4] = static_cast<int64_t>(at::cuda::getDeviceProperties(device)->totalGlobalMem);
        return;
#else
        (void)device; (void)stats;
        no_cuda();
#endif
    })
}

void ts_cuda_reset_peak_memory(int device, char **err) {
    TS_GUARD(, {
#ifdef SHIM_WITH_CUDA
        check_device(device);
        c10::cuda::CUDACachingAllocator::resetPeakStats(device);
        return;
#else
        (void)device;
        no_cuda();
#endif
    })
}

void ts_cuda_empty_cache(char **err) {
    TS_GUARD(, {
#ifdef SHIM_WITH_CUDA
        c10::cuda::CUDACachingAllocator::emptyCache();
        return;
#else
        no_cuda();
#endif
    })
}

void ts_cuda_set_memory_fraction(double fraction, int device, char **err) {
    TS_GUARD(, {
#ifdef SHIM_WITH_CUDA
        check_device(device);
        c10::cuda::CUDACachingAllocator::setMemoryFraction(fraction, device);
        return;
#else
        (void)fraction; (void)device;
        no_cuda();
#endif
    })
}

ts_stream ts_stream_new(int device, char **err) {
    TS_GUARD(nullptr, {
#ifdef SHIM_WITH_CUDA
        check_device(device);
        return new ts_stream_s{c10::cuda::getStreamFromPool(false, static_cast<c10::DeviceIndex>(device))};
#else
        (void)device;
        no_cuda();
#endif
    })
}

void ts_stream_set(ts_stream s, char **err) {
    TS_GUARD(, {
#ifdef SHIM_WITH_CUDA
        if (!s) throw std::invalid_argument("null stream");
        c10::cuda::setCurrentCUDAStream(s->stream);
        return;
#else
        (void)s;
        no_cuda();
#endif
    })
}

void ts_stream_synchronize(ts_stream s, char **err) {
    TS_GUARD(, {
#ifdef SHIM_WITH_CUDA
        if (!s) throw std::invalid_argument("null stream");
        s->stream.synchronize();
        return;
#else
        (void)s;
        no_cuda();
#endif
    })
}

void ts_stream_free(ts_stream s) { delete s; }

} // extern "C"
