#include "llmq/runtime/decode_graph_batch.hpp"

#include <algorithm>

namespace llmq {

namespace {

int32_t next_power_of_two(int32_t n) {
    int32_t p = 1;
    while (p < n) p *= 2;
    return p;
}

}  // namespace

bool is_graph_decode_batch(const MicroBatch& b, int32_t max_rows) {
    const int32_t n = b.num_seqs;
    if (n <= 0 || n > max_rows || b.num_tokens != n || !b.embed_rows.empty()) return false;
    if (b.query_start.size() != static_cast<size_t>(n) + 1 || b.logit_rows.size() != static_cast<size_t>(n))
        return false;
    for (int32_t s = 0; s <= n; ++s)
        if (b.query_start[s] != s) return false;
    for (int32_t s = 0; s < n; ++s)
        if (b.logit_rows[s] != s) return false;
    return true;
}

DecodeGraphShape decode_graph_shape(const MicroBatch& b, int32_t max_rows) {
    DecodeGraphShape shape;
    shape.seqs = std::min(next_power_of_two(b.num_seqs), max_rows);
    shape.width = next_power_of_two(std::max(b.max_blocks, 1));
    return shape;
}

void pad_decode_batch(const MicroBatch& b, const DecodeGraphShape& shape, MicroBatch& out) {
    const int32_t n = b.num_seqs, m = shape.seqs, w = shape.width;
    out.num_tokens = m;
    out.num_seqs = m;
    out.max_blocks = w;
    out.logits_offset = b.logits_offset;
    out.embed_rows.clear();
    out.embed_src.clear();
    out.tokens.assign(b.tokens.begin(), b.tokens.begin() + n);
    out.tokens.resize(m, 0);
    out.positions.assign(b.positions.begin(), b.positions.begin() + n);
    out.positions.resize(m, 0);
    out.context_len.assign(b.context_len.begin(), b.context_len.begin() + n);
    out.context_len.resize(m, 1);
    out.token_seq.resize(m);
    out.query_start.resize(m + 1);
    out.logit_rows.resize(m);
    for (int32_t s = 0; s < m; ++s) {
        out.token_seq[s] = s < n ? b.token_seq[s] : s;
        out.query_start[s] = s;
        out.logit_rows[s] = s;
    }
    out.query_start[m] = m;
    out.block_tables.assign(static_cast<size_t>(m) * w, -1);
    for (int32_t s = 0; s < n; ++s)
        std::copy_n(b.block_tables.begin() + static_cast<size_t>(s) * b.max_blocks, b.max_blocks,
                    out.block_tables.begin() + static_cast<size_t>(s) * w);
}

}  // namespace llmq
