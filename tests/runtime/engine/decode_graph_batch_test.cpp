// The bucket logic of [cuda] graphs (decode_graph_batch.hpp), host code that runs everywhere:
// which micro-batches a graph may replay, the padded shape (sequences and block-table width
// to the next power of two, sequences capped at the workspace's rows), and the padded batch
// itself (real sequences kept, padding that writes no KV and is never read back).
#include <doctest/doctest.h>

#include "llmq/runtime/decode_graph_batch.hpp"

using namespace llmq;

namespace {

// n decode sequences: sequence s at position 10 * s + 3 with token 100 + s, max_blocks
// blocks each (ids 7 * s + j), context position + 1.
MicroBatch decode_batch(int32_t n, int32_t max_blocks) {
    MicroBatch b;
    b.num_tokens = n;
    b.num_seqs = n;
    b.max_blocks = max_blocks;
    b.logits_offset = 5;
    for (int32_t s = 0; s < n; ++s) {
        b.tokens.push_back(100 + s);
        b.positions.push_back(10 * s + 3);
        b.token_seq.push_back(s);
        b.query_start.push_back(s);
        b.context_len.push_back(10 * s + 4);
        b.logit_rows.push_back(s);
        for (int32_t j = 0; j < max_blocks; ++j) b.block_tables.push_back(7 * s + j);
    }
    b.query_start.push_back(n);
    return b;
}

}  // namespace

TEST_CASE("decode_graph_batches_are_one_token_per_sequence_with_every_logit_row") {
    CHECK(is_graph_decode_batch(decode_batch(1, 1), 64));
    CHECK(is_graph_decode_batch(decode_batch(13, 3), 64));
    CHECK(is_graph_decode_batch(decode_batch(64, 3), 64));
    CHECK_FALSE(is_graph_decode_batch(decode_batch(65, 3), 64));  // more rows than the workspace
    CHECK_FALSE(is_graph_decode_batch(MicroBatch{}, 64));          // empty

    MicroBatch prefill = decode_batch(2, 1);  // sequence 0 with 3 tokens: not decode
    prefill.num_tokens = 4;
    prefill.tokens = {1, 2, 3, 4};
    prefill.positions = {0, 1, 2, 9};
    prefill.token_seq = {0, 0, 0, 1};
    prefill.query_start = {0, 3, 4};
    prefill.logit_rows = {2, 3};
    CHECK_FALSE(is_graph_decode_batch(prefill, 64));

    MicroBatch some_logits = decode_batch(3, 1);  // a sequence that wants no logits
    some_logits.logit_rows = {0, 2};
    CHECK_FALSE(is_graph_decode_batch(some_logits, 64));

    MicroBatch image = decode_batch(2, 1);
    image.embed_rows = {0};
    image.embed_src = {nullptr};
    CHECK_FALSE(is_graph_decode_batch(image, 64));
}

TEST_CASE("decode_graph_shapes_round_sequences_and_block_width_up_to_powers_of_two") {
    auto shape = [](int32_t n, int32_t blocks, int32_t cap) { return decode_graph_shape(decode_batch(n, blocks), cap); };
    CHECK(shape(1, 1, 64).seqs == 1);
    CHECK(shape(2, 1, 64).seqs == 2);
    CHECK(shape(3, 1, 64).seqs == 4);
    CHECK(shape(5, 1, 64).seqs == 8);
    CHECK(shape(17, 1, 64).seqs == 32);
    CHECK(shape(33, 1, 64).seqs == 64);
    CHECK(shape(20, 1, 24).seqs == 24);  // capped at the workspace's rows
    CHECK(shape(24, 1, 24).seqs == 24);
    CHECK(shape(1, 1, 64).width == 1);
    CHECK(shape(1, 3, 64).width == 4);
    CHECK(shape(1, 4, 64).width == 4);
    CHECK(shape(1, 5, 64).width == 8);
    CHECK(shape(1, 100, 64).width == 128);
    // One key per shape.
    CHECK(shape(3, 3, 64).key() == shape(4, 4, 64).key());
    CHECK(shape(3, 3, 64).key() != shape(3, 5, 64).key());
    CHECK(shape(3, 3, 64).key() != shape(5, 3, 64).key());
    CHECK(shape(1, 2, 64).key() != shape(2, 1, 64).key());
}

TEST_CASE("padded_decode_batches_keep_the_real_sequences_and_pad_with_rows_that_write_nothing") {
    const MicroBatch b = decode_batch(3, 3);
    const DecodeGraphShape shape = decode_graph_shape(b, 64);
    REQUIRE(shape.seqs == 4);
    REQUIRE(shape.width == 4);
    MicroBatch p;
    p.tokens = {9, 9, 9, 9, 9, 9, 9, 9, 9};  // reused vectors start with anything
    p.block_tables = {42};
    pad_decode_batch(b, shape, p);
    CHECK(p.num_tokens == 4);
    CHECK(p.num_seqs == 4);
    CHECK(p.max_blocks == 4);
    CHECK(p.logits_offset == 5);
    CHECK(p.tokens == std::vector<int32_t>{100, 101, 102, 0});
    CHECK(p.positions == std::vector<int32_t>{3, 13, 23, 0});
    CHECK(p.token_seq == std::vector<int32_t>{0, 1, 2, 3});
    CHECK(p.query_start == std::vector<int32_t>{0, 1, 2, 3, 4});
    CHECK(p.context_len == std::vector<int32_t>{4, 14, 24, 1});
    CHECK(p.logit_rows == std::vector<int32_t>{0, 1, 2, 3});
    CHECK(p.block_tables == std::vector<int32_t>{0, 1, 2, -1, 7, 8, 9, -1, 14, 15, 16, -1, -1, -1, -1, -1});
    CHECK(p.embed_rows.empty());
    // The padded batch is a graph batch of its own shape, and pads to itself.
    CHECK(is_graph_decode_batch(p, 64));
    CHECK(decode_graph_shape(p, 64).key() == shape.key());
    MicroBatch again;
    pad_decode_batch(p, shape, again);
    CHECK(again.block_tables == p.block_tables);
    CHECK(again.tokens == p.tokens);
    // A padded row's KV slot (block * block_size + position % block_size, as the backends
    // compute it) is negative: the kernels skip it.
    const int32_t block_size = 16;
    const int64_t slot = int64_t(p.block_tables[3 * 4 + p.positions[3] / block_size]) * block_size +
                         p.positions[3] % block_size;
    CHECK(slot < 0);

    // Already full: nothing added.
    const MicroBatch full = decode_batch(4, 2);
    pad_decode_batch(full, decode_graph_shape(full, 64), p);
    CHECK(p.num_seqs == 4);
    CHECK(p.max_blocks == 2);
    CHECK(p.block_tables == full.block_tables);
    CHECK(p.tokens == full.tokens);
}
