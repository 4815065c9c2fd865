// The seam's fused ops against the separate calls they replace, on one device's backend:
// add_rms_norm must give the bits of add then rms_norm_rows, and rope_kv_write the bits of
// rope(q), rope(k), kv_write in q and in both KV pools (f16 and f32 pools, adjacent and NeoX
// pairs, with and without per-pair frequency factors, two sequences over shuffled blocks).
// The CPU backend has no fused kernels (its defaults are the separate calls); the CUDA backend
// has one kernel each, whose arithmetic matches the separate kernels' in f32, so equality is
// bit for bit there too. Used by backend_fused_ops_test (CPU, runtime suite) and
// cuda_backend_fused_ops_test (cuda:0, cuda suite).
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <future>
#include <random>
#include <string>
#include <vector>

#include "llmq/runtime/backend.hpp"

namespace llmq::test {

namespace fused_ops_detail {

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo, float hi) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng);
    return v;
}

// Host values in a fresh device buffer of `bytes` (at least the values' size).
inline DeviceBuffer upload(Backend& b, const void* host, uint64_t bytes, const char* what) {
    auto buffer = b.allocate(bytes, 256, what);
    REQUIRE_MESSAGE(buffer.ok(), buffer.status().message());
    b.device().copy_from_host(buffer->data(), host, bytes);
    return std::move(*buffer);
}

inline std::vector<uint8_t> download(Backend& b, const DeviceBuffer& buffer) {
    std::vector<uint8_t> host(buffer.bytes());
    b.device().copy_to_host(host.data(), buffer.data(), buffer.bytes());
    return host;
}

// Runs f on the device's worker (where ops must run) and waits.
template <typename F>
void on_worker(Backend& b, F&& f) {
    std::promise<void> done;
    b.device().post([&] {
        f();
        done.set_value();
    });
    done.get_future().wait();
}

}  // namespace fused_ops_detail

inline void check_fused_ops_match_separate_ops(Device& device) {
    using namespace fused_ops_detail;
    auto created = device.create_backend();
    REQUIRE_MESSAGE(created.ok(), created.status().message());
    Backend& b = **created;
    CAPTURE(device.info().name);

    SUBCASE("add_rms_norm is add then rms_norm_rows") {
        const int64_t rows = 5, n = 300;  // n not a multiple of any block size
        const float eps = 1e-5f;
        const auto residual = random_floats(rows * n, 1, -2.0f, 2.0f);
        const auto delta = random_floats(rows * n, 2, -1.0f, 1.0f);
        const auto weight = random_floats(n, 3, 0.5f, 1.5f);
        const uint64_t bytes = rows * n * sizeof(float);
        DeviceBuffer res_a = upload(b, residual.data(), bytes, "residual a");
        DeviceBuffer res_b = upload(b, residual.data(), bytes, "residual b");
        DeviceBuffer d = upload(b, delta.data(), bytes, "delta");
        DeviceBuffer w = upload(b, weight.data(), n * sizeof(float), "norm weight");
        const std::vector<uint8_t> poison(bytes, 0xff);
        DeviceBuffer norm_a = upload(b, poison.data(), bytes, "normed a");
        DeviceBuffer norm_b = upload(b, poison.data(), bytes, "normed b");
        Status status;
        on_worker(b, [&] {
            b.add(res_a.floats(), d.floats(), rows * n);
            b.rms_norm_rows(res_a.floats(), w.floats(), norm_a.floats(), rows, n, eps);
            b.add_rms_norm(res_b.floats(), d.floats(), w.floats(), norm_b.floats(), rows, n, eps);
            status = b.synchronize();
        });
        REQUIRE_MESSAGE(status.ok(), status.message());
        const auto ra = download(b, res_a), rb = download(b, res_b);
        const auto na = download(b, norm_a), nb = download(b, norm_b);
        CHECK(ra == rb);
        CHECK(na == nb);
        // Not a pair of no-ops: the residual moved and the norm wrote every value.
        std::vector<float> got(rows * n);
        std::memcpy(got.data(), rb.data(), bytes);
        CHECK(got[7] == residual[7] + delta[7]);
        std::memcpy(got.data(), nb.data(), bytes);
        for (float v : got) REQUIRE(std::isfinite(v));
    }

    SUBCASE("rope_kv_write is rope, rope, kv_write") {
        const int32_t q_heads = 4, kv_heads = 2, head_dim = 64, block_size = 16, max_blocks = 2,
                      num_blocks = 5;
        // Two sequences: 3 tokens at 0..2 and 3 at 15..17 (crossing into its second block).
        const std::vector<int32_t> token_seq = {0, 0, 0, 1, 1, 1};
        const std::vector<int32_t> positions = {0, 1, 2, 15, 16, 17};
        const std::vector<int32_t> tables = {3, 1, 0, 4};
        const int64_t T = static_cast<int64_t>(positions.size());
        const int64_t qw = int64_t(q_heads) * head_dim, kvw = int64_t(kv_heads) * head_dim;
        const auto q = random_floats(T * qw, 4, -1.0f, 1.0f);
        const auto k = random_floats(T * kvw, 5, -1.0f, 1.0f);
        const auto v = random_floats(T * kvw, 6, -1.0f, 1.0f);
        const auto factors = random_floats(head_dim / 2, 7, 1.0f, 8.0f);
        DeviceBuffer freq = upload(b, factors.data(), factors.size() * sizeof(float), "rope_freqs");
        DeviceBuffer vb = upload(b, v.data(), v.size() * sizeof(float), "v");
        for (const kernels::dtype kv_t : {kernels::dtype::f16, kernels::dtype::f32})
            for (const bool neox : {false, true})
                for (const bool with_factors : {false, true}) {
                    const std::string kv_name = kernels::dtype_name(kv_t);
                    CAPTURE(kv_name);
                    CAPTURE(neox);
                    CAPTURE(with_factors);
                    const uint64_t pool_bytes =
                        uint64_t(num_blocks) * block_size * kernels::row_bytes(kv_t, kvw);
                    const std::vector<uint8_t> poison(pool_bytes, 0x7f);
                    DeviceBuffer qa = upload(b, q.data(), q.size() * 4, "q a"), qb = upload(b, q.data(), q.size() * 4, "q b");
                    DeviceBuffer ka = upload(b, k.data(), k.size() * 4, "k a"), kb = upload(b, k.data(), k.size() * 4, "k b");
                    DeviceBuffer pka = upload(b, poison.data(), pool_bytes, "k pool a");
                    DeviceBuffer pva = upload(b, poison.data(), pool_bytes, "v pool a");
                    DeviceBuffer pkb = upload(b, poison.data(), pool_bytes, "k pool b");
                    DeviceBuffer pvb = upload(b, poison.data(), pool_bytes, "v pool b");
                    RopeParams rope{500000.0f, 1.0f, neox, with_factors ? freq.floats() : nullptr};
                    KvPools pools{nullptr, nullptr, kv_t, block_size, kvw};
                    Status status;
                    on_worker(b, [&] {
                        pools.k = pka.data();
                        pools.v = pva.data();
                        b.rope(qa.floats(), T, q_heads, head_dim, positions, rope);
                        b.rope(ka.floats(), T, kv_heads, head_dim, positions, rope);
                        b.kv_write(pools, tables, max_blocks, token_seq, positions, ka.floats(), vb.floats());
                        Backend::RopeKvWrite a;
                        a.q = qb.floats();
                        a.q_heads = q_heads;
                        a.k = kb.floats();
                        a.v = vb.floats();
                        a.kv_heads = kv_heads;
                        a.head_dim = head_dim;
                        a.rows = T;
                        a.positions = positions;
                        a.rope = rope;
                        a.pools = pools;
                        a.pools.k = pkb.data();
                        a.pools.v = pvb.data();
                        a.block_tables = tables;
                        a.max_blocks = max_blocks;
                        a.token_seq = token_seq;
                        b.rope_kv_write(a);
                        status = b.synchronize();
                    });
                    REQUIRE_MESSAGE(status.ok(), status.message());
                    CHECK(download(b, qa) == download(b, qb));
                    const auto k_a = download(b, pka), v_a = download(b, pva);
                    CHECK(k_a == download(b, pkb));
                    CHECK(v_a == download(b, pvb));
                    // The write landed: block 4 offset 1 holds token 5 (position 17 of sequence 1),
                    // and block 2 (no table names it) is untouched.
                    const uint64_t row = kernels::row_bytes(kv_t, kvw);
                    const uint64_t at = (uint64_t(4) * block_size + 1) * row;
                    CHECK(std::memcmp(k_a.data() + at, poison.data(), row) != 0);
                    CHECK(std::memcmp(v_a.data() + at, poison.data(), row) != 0);
                    const uint64_t untouched = uint64_t(2) * block_size * row;
                    CHECK(std::memcmp(k_a.data() + untouched, poison.data(), block_size * row) == 0);
                    CHECK(download(b, qa) != std::vector<uint8_t>(reinterpret_cast<const uint8_t*>(q.data()),
                                                                  reinterpret_cast<const uint8_t*>(q.data() + q.size())));
                }
    }
}

}  // namespace llmq::test
