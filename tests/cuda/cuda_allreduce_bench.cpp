// All-reduce latency of the CUDA backend's communicators for 8–64 KiB of f32 (the sizes of a
// decode step's all-reduces): two logical devices of GPU 0 (the device-memory communicator)
// and, with two GPUs or more, GPUs 0 and 1 (NCCL where it was built). Each rank runs `iters`
// all-reduces back to back on its own worker; the figure is the wall time per call. The
// result of one call is checked first (rank r contributes r + 1 everywhere). Needs a GPU
// (exits 77 without one); never run yet. Usage: llmq-cuda-allreduce-bench [--json FILE]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <latch>
#include <string>
#include <vector>

#include "llmq/kernels/cuda.hpp"
#include "llmq/runtime/backend.hpp"
#include "llmq/runtime/device_selection.hpp"
#include "llmq/runtime/log.hpp"

using namespace llmq;

namespace {

struct Figure {
    std::string what;
    size_t bytes;
    double microseconds;
};

// Runs `iters` all-reduces of `count` floats on every device of `devices`; returns µs per call,
// or a negative number with *why set.
double time_all_reduce(std::vector<std::unique_ptr<Device>>& devices, size_t count, int iters, std::string* why) {
    const int n = static_cast<int>(devices.size());
    std::vector<std::unique_ptr<Backend>> backends;
    for (auto& d : devices) {
        auto b = d->create_backend();
        if (!b) {
            *why = b.status().message();
            return -1;
        }
        backends.push_back(std::move(*b));
    }
    auto group = backends[0]->local_group(n);
    std::vector<std::unique_ptr<Communicator>> comms;
    std::vector<DeviceBuffer> buffers;
    for (int r = 0; r < n; ++r) {
        comms.push_back(group->communicator(r));
        auto buffer = backends[r]->allocate(count * sizeof(float), 256, "all-reduce buffer");
        if (!buffer) {
            *why = buffer.status().message();
            return -1;
        }
        buffers.push_back(std::move(*buffer));
    }
    std::vector<Status> results(n);
    auto run_all = [&](int calls, bool fill) {
        std::latch done(n);
        for (int r = 0; r < n; ++r)
            devices[r]->post([&, r] {
                if (fill) {
                    std::vector<float> values(count, float(r + 1));
                    devices[r]->copy_from_host(buffers[r].data(), values.data(), count * sizeof(float));
                }
                for (int i = 0; i < calls && results[r].ok(); ++i)
                    results[r] = comms[r]->all_reduce_sum(buffers[r].floats(), count);
                if (results[r].ok()) results[r] = backends[r]->synchronize();
                done.count_down();
            });
        done.wait();
        for (const Status& s : results)
            if (!s.ok()) {
                *why = s.message();
                return false;
            }
        return true;
    };
    if (!run_all(1, true)) return -1;
    const float want = float(n * (n + 1) / 2);
    for (int r = 0; r < n; ++r) {
        std::vector<float> got(count);
        devices[r]->copy_to_host(got.data(), buffers[r].data(), count * sizeof(float));
        for (size_t i = 0; i < count; ++i)
            if (got[i] != want) {
                *why = "rank " + std::to_string(r) + " value " + std::to_string(i) + " is " + std::to_string(got[i]) +
                       ", expected " + std::to_string(want);
                return -1;
            }
    }
    if (!run_all(10, false)) return -1;  // warm-up
    const auto start = std::chrono::steady_clock::now();
    if (!run_all(iters, false)) return -1;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return seconds * 1e6 / iters;
}

}  // namespace

int main(int argc, char** argv) {
    std::string why;
    const int gpus = kernels::cuda::visible_device_count(&why);
    if (gpus <= 0) {
        std::printf("SKIP: no GPU found (%s)\n", why.c_str());
        return 77;
    }
    const char* json = argc == 3 && std::strcmp(argv[1], "--json") == 0 ? argv[2] : nullptr;
    log::set_level(log::level::warn);
    std::vector<Figure> figures;
    int failures = 0;
    auto measure = [&](const char* what, DevicesConfig config) {
        auto devices = make_devices(config);
        if (!devices) {
            std::printf("%s: %s\n", what, devices.status().message().c_str());
            ++failures;
            return;
        }
        for (size_t bytes : {8u << 10, 16u << 10, 32u << 10, 64u << 10}) {
            std::string error;
            const double us = time_all_reduce(*devices, bytes / sizeof(float), 200, &error);
            if (us < 0) {
                std::printf("%s, %zu KiB: FAILED: %s\n", what, bytes >> 10, error.c_str());
                ++failures;
                continue;
            }
            std::printf("%s, %zu KiB: %.1f us per all-reduce\n", what, bytes >> 10, us);
            figures.push_back({what, bytes, us});
        }
    };
    DevicesConfig logical;
    logical.backend = DeviceBackend::cuda;
    logical.cuda = CudaSelection{CudaSelection::Mode::list, {0}};
    logical.cuda_devices_per_gpu = 2;
    logical.cuda_memory_limit = 1ull << 30;
    measure("device-memory, 2 logical devices of cuda:0", logical);
    if (gpus >= 2) {
        DevicesConfig two = logical;
        two.cuda = CudaSelection{CudaSelection::Mode::list, {0, 1}};
        two.cuda_devices_per_gpu = 1;
        measure("cuda:0 + cuda:1, [devices] cuda_communicator = auto", two);
    } else {
        std::printf("one GPU: no NCCL figure (NCCL needs a GPU per rank)\n");
    }
    if (json) {
        FILE* f = std::fopen(json, "w");
        if (f) {
            std::fprintf(f, "{\"all_reduce\": [");
            for (size_t i = 0; i < figures.size(); ++i)
                std::fprintf(f, "%s{\"what\": \"%s\", \"bytes\": %zu, \"microseconds\": %.3f}", i ? ", " : "",
                             figures[i].what.c_str(), figures[i].bytes, figures[i].microseconds);
            std::fprintf(f, "]}\n");
            std::fclose(f);
        }
    }
    return failures == 0 ? 0 : 1;
}
