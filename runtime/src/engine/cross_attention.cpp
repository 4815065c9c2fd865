#include "llmq/runtime/cross_attention.hpp"

#include <algorithm>
#include <string>

namespace llmq {

Status CrossAttentionStates::add_image(std::span<const float> image_rows, int32_t max_tiles, int32_t tiles_used,
                                       int64_t rows_per_tile) {
    if (dim <= 0) return invalid_argument("cross-attention states: dim is not set");
    if (max_tiles <= 0 || tiles_used <= 0 || tiles_used > max_tiles || rows_per_tile <= 0)
        return invalid_argument("cross-attention states: tiles_used " + std::to_string(tiles_used) + " of max_tiles " +
                                std::to_string(max_tiles) + " with " + std::to_string(rows_per_tile) +
                                " rows per tile");
    const auto expected = static_cast<size_t>(max_tiles) * static_cast<size_t>(rows_per_tile) * static_cast<size_t>(dim);
    if (image_rows.size() != expected)
        return invalid_argument("cross-attention states: an image has " + std::to_string(image_rows.size()) +
                                " values, expected max_tiles x rows_per_tile x dim = " + std::to_string(expected));
    if (image_row_start.empty()) image_row_start.push_back(0);
    const int64_t kept = int64_t{tiles_used} * rows_per_tile;
    rows.insert(rows.end(), image_rows.begin(), image_rows.begin() + kept * dim);
    image_row_start.push_back(image_row_start.back() + kept);
    return {};
}

std::pair<int32_t, int32_t> CrossAttentionMask::images_seen(int32_t position) const {
    const int32_t p = std::min(position, prompt_len - 1);
    int32_t first = -1, last = -1;
    for (int32_t i = 0; i < static_cast<int32_t>(span_begin.size()); ++i) {
        if (span_begin[i] <= p && p < span_end[i]) {
            if (first < 0) first = i;
            last = i + 1;
        }
    }
    if (first < 0) return {0, 0};
    return {first, last};
}

// HF get_cross_attention_token_mask: [loc_i, loc_{i+1}) per image, the last to the end, then
// walking back, an image whose span is its own token alone (the next token is an image too)
// sees as far as the span after it.
Expected<CrossAttentionMask> cross_attention_mask(std::span<const int32_t> prompt, int32_t image_token, int32_t images) {
    CrossAttentionMask m;
    m.prompt_len = static_cast<int32_t>(prompt.size());
    for (int32_t p = 0; p < m.prompt_len; ++p)
        if (prompt[static_cast<size_t>(p)] == image_token) m.span_begin.push_back(p);
    if (static_cast<int32_t>(m.span_begin.size()) != images)
        return invalid_argument("images: the prompt has " + std::to_string(m.span_begin.size()) +
                                " <|image|> tokens for " + std::to_string(images) +
                                " images; each image needs one (Llama 3.2 Vision prompts write \"<|image|>\")");
    const size_t n = m.span_begin.size();
    m.span_end.resize(n);
    for (size_t i = 0; i < n; ++i) m.span_end[i] = i + 1 < n ? m.span_begin[i + 1] : m.prompt_len;
    int32_t last_end = n ? m.span_end[n - 1] : 0;
    for (size_t k = n; k-- > 0;) {
        if (m.span_begin[k] == m.span_end[k] - 1) m.span_end[k] = last_end;
        last_end = m.span_end[k];
    }
    return m;
}

}  // namespace llmq
