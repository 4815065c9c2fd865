// The images of one request as a cross-attention model (Llama 3.2 Vision, `mllama`) sees
// them, and which prompt positions see which image.
//
// CrossAttentionStates are Hugging Face's `cross_attention_states` of one request with the
// padding tiles left out: image i's rows are [image_row_start[i], image_row_start[i + 1]),
// its tiles_used tiles of rows_per_tile rows each, n_embd floats a row (host memory). HF
// masks the tiles past an image's tiles_used out of every text row's attention
// (convert_sparse_cross_attention_mask_to_dense: mask[..., :num_tiles] = 1), so rows that are
// never attended to are not kept. The cross-attention layers project each image's rows to
// their keys and values once per request (ModelShard keeps them by `id`).
//
// CrossAttentionMask is the processor's text-to-image mask (HF MllamaProcessor,
// get_cross_attention_token_mask): image i is seen from its <|image|> token's position up to
// the next image's token, the last image to the end of the text, and consecutive <|image|>
// tokens all see to the end of the group's span. Positions past the prompt (generated
// tokens) see what the last prompt position sees (HF's generate repeats the mask's last row).
// The images one position sees are always a run i..j of consecutive images.
//
// Threads: plain data, immutable once made; shared between the engine and the device workers.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "llmq/runtime/status.hpp"

namespace llmq {

struct CrossAttentionStates {
    CrossAttentionStates() : id(next_id()) {}
    const uint64_t id;  // unique in the process: keys the image K/V the shards keep
    int64_t dim = 0;    // values per row (the text model's n_embd)
    std::vector<float> rows;               // [row_count][dim]
    std::vector<int64_t> image_row_start;  // [images + 1], image_row_start[0] = 0

    int32_t images() const { return image_row_start.empty() ? 0 : static_cast<int32_t>(image_row_start.size() - 1); }
    int64_t row_count() const { return image_row_start.empty() ? 0 : image_row_start.back(); }

    // Append one image of max_tiles x rows_per_tile rows (HF's layout for one image), keeping
    // its first tiles_used tiles. invalid_argument when the sizes disagree.
    [[nodiscard]] Status add_image(std::span<const float> image_rows, int32_t max_tiles, int32_t tiles_used,
                                   int64_t rows_per_tile);

private:
    static uint64_t next_id() {
        static std::atomic<uint64_t> counter{1};
        return counter.fetch_add(1);
    }
};

struct CrossAttentionMask {
    std::vector<int32_t> span_begin, span_end;  // [images]: positions that see image i
    int32_t prompt_len = 0;

    // The images position p sees, as [first, last); first == last when it sees none.
    std::pair<int32_t, int32_t> images_seen(int32_t position) const;
};

// The mask of a prompt whose image tokens (id image_token) mark `images` images.
// invalid_argument naming both counts when the prompt has another number of image tokens.
[[nodiscard]] Expected<CrossAttentionMask> cross_attention_mask(std::span<const int32_t> prompt, int32_t image_token,
                                                                int32_t images);

}  // namespace llmq
