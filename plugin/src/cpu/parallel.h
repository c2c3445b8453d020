// A minimal fork-join helper: split [0, n) into one contiguous chunk per thread.
// Uses as many threads as torch (torch.set_num_threads), plain std::thread, so the library
// needs no OpenMP runtime of its own.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace openmm_pqeq {

inline int worker_count(int64_t n, int64_t min_per_thread) {
    const int64_t wanted = std::max<int64_t>(1, n / std::max<int64_t>(1, min_per_thread));
    return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), wanted)));
}

// fn(thread_index, begin, end) for `threads` chunks covering [0, n).
template <typename F>
void parallel_chunks(int64_t n, int threads, const F& fn) {
    if (threads <= 1) {
        fn(0, int64_t(0), n);
        return;
    }
    std::vector<std::thread> pool;
    pool.reserve(threads - 1);
    const int64_t chunk = (n + threads - 1) / threads;
    for (int t = 1; t < threads; ++t) {
        const int64_t begin = std::min(n, t * chunk);
        const int64_t end = std::min(n, begin + chunk);
        pool.emplace_back([&fn, t, begin, end]() { fn(t, begin, end); });
    }
    fn(0, int64_t(0), std::min(n, chunk));
    for (auto& thread : pool) {
        thread.join();
    }
}

// The `add` of the shared per-pair and per-site functions (include/): plain, since every CPU
// thread accumulates into buffers of its own.
struct PlainAdd {
    template <typename T>
    void operator()(T* target, T value) const {
        *target += value;
    }
};

}  // namespace openmm_pqeq
