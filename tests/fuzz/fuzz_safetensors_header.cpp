// libFuzzer target: parse_safetensors_header on arbitrary bytes taken as a whole file.
// Promises: no read outside the file, no exception, no crash; a header it accepts describes
// tensors that lie inside the data section, have the byte size their dtype and shape give,
// start aligned to their element size, and do not overlap.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "llmq/runtime/safetensors.hpp"

namespace {
void check(bool promise) {
    if (!promise) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // An exact-size copy, so ASan sees any read past the end.
    const std::vector<uint8_t> file(data, data + size);
    auto h = llmq::parse_safetensors_header(file, file.size(), "fuzz.safetensors");
    if (!h) return 0;
    check(h->data_offset >= 8 && h->data_offset <= size);
    check(h->data_offset + h->data_bytes == size);
    std::vector<std::pair<uint64_t, uint64_t>> spans;
    for (const auto& t : h->tensors) {
        check(t.begin <= t.end && t.end <= h->data_bytes);
        uint64_t elements = 1;
        for (int64_t d : t.shape) {
            check(d >= 0);
            elements *= static_cast<uint64_t>(d);
        }
        check((t.end - t.begin) == elements * t.element_bytes);
        check((h->data_offset + t.begin) % t.element_bytes == 0);
        uint8_t sum = 0;  // touch every byte the tensor claims
        for (uint64_t i = t.begin; i < t.end; ++i) sum ^= file[h->data_offset + i];
        (void)sum;
        if (t.end > t.begin) spans.emplace_back(t.begin, t.end);
    }
    std::sort(spans.begin(), spans.end());
    for (size_t i = 1; i < spans.size(); ++i) check(spans[i - 1].second <= spans[i].first);
    return 0;
}
