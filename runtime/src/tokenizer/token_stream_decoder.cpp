#include "llmq/runtime/tokenizer.hpp"

#include "tokenizer_impl.hpp"
#include "utf8.hpp"

namespace llmq {

// pending_ holds only what utf8::append_sanitized left unconsumed: the start of a character
// that the next token may complete. Decoding the bytes in pieces gives the same text as
// decoding them at once, because a piece boundary never falls inside a sequence that the
// sanitizer has already judged.
TokenStreamDecoder::TokenStreamDecoder(const Tokenizer& tokenizer, bool skip_leading_space)
    : tokenizer_(tokenizer), skip_leading_space_(skip_leading_space) {}

std::string TokenStreamDecoder::push(int32_t id) {
    if (!tokenizer_.valid_id(id) || tokenizer_.is_control(id)) return {};
    pending_ += tokenizer_.impl_->piece(id, at_start_, skip_leading_space_);
    at_start_ = false;
    std::string out;
    const size_t consumed = utf8::append_sanitized(out, pending_, false);
    pending_.erase(0, consumed);
    return out;
}

std::string TokenStreamDecoder::flush() {
    std::string out;
    utf8::append_sanitized(out, pending_, true);
    pending_.clear();
    at_start_ = true;
    return out;
}

}  // namespace llmq
