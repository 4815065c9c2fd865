// parse_bounded_json: nlohmann's DOM builder behind a SAX wrapper that counts depth and keeps
// the parser's error message instead of throwing it.
#include "bounded_json.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <unordered_set>
#include <vector>
#include <sys/stat.h>

namespace llmq {
namespace {

using json = nlohmann::json;

class BoundedSax {
public:
    BoundedSax(json& root, int max_depth) : dom_(root, false), max_depth_(max_depth) {}

    bool null() { return dom_.null(); }
    bool boolean(bool v) { return dom_.boolean(v); }
    bool number_integer(json::number_integer_t v) { return dom_.number_integer(v); }
    bool number_unsigned(json::number_unsigned_t v) { return dom_.number_unsigned(v); }
    bool number_float(json::number_float_t v, const json::string_t& s) { return dom_.number_float(v, s); }
    bool string(json::string_t& v) { return dom_.string(v); }
    bool binary(json::binary_t& v) { return dom_.binary(v); }
    bool start_object(std::size_t n) {
        keys_.emplace_back();
        return enter() && dom_.start_object(n);
    }
    // A key twice in one object: nlohmann would keep the last value silently, which hides what
    // the first one said (a tensor listed twice); refuse it.
    bool key(json::string_t& k) {
        if (!keys_.back().insert(k).second) {
            duplicate_ = k;
            return false;
        }
        return dom_.key(k);
    }
    bool end_object() {
        --depth_;
        keys_.pop_back();
        return dom_.end_object();
    }
    bool start_array(std::size_t n) { return enter() && dom_.start_array(n); }
    bool end_array() { --depth_; return dom_.end_array(); }
    template <class Exception>
    bool parse_error(std::size_t position, const std::string&, const Exception& ex) {
        if (error_.empty()) error_ = std::string(ex.what()) + " (byte " + std::to_string(position) + ")";
        return false;
    }

    bool too_deep() const { return too_deep_; }
    const std::optional<std::string>& duplicate() const { return duplicate_; }
    const std::string& error() const { return error_; }

private:
    bool enter() {
        if (++depth_ > max_depth_) {
            too_deep_ = true;
            return false;
        }
        return true;
    }

    nlohmann::detail::json_sax_dom_parser<json> dom_;
    int max_depth_;
    int depth_ = 0;
    bool too_deep_ = false;
    std::string error_;
    std::vector<std::unordered_set<std::string>> keys_;  // of each open object
    std::optional<std::string> duplicate_;
};

}  // namespace

Expected<json> parse_bounded_json(std::string_view text, const std::string& what, int max_depth) {
    json root;
    BoundedSax sax(root, max_depth);
    const bool ok = json::sax_parse(text.begin(), text.end(), &sax, json::input_format_t::json, true);
    if (sax.too_deep())
        return corrupt(what + ": JSON nested deeper than " + std::to_string(max_depth) + " levels");
    if (sax.duplicate()) {
        const std::string& k = *sax.duplicate();
        const std::string shown =
            json(k.size() > 120 ? k.substr(0, 120) : k).dump(-1, ' ', false, json::error_handler_t::replace);
        return corrupt(what + ": key " + shown + " appears twice in one object");
    }
    if (!ok || root.is_discarded())
        return corrupt(what + ": not valid JSON: " + (sax.error().empty() ? "parse failed" : sax.error()));
    return root;
}

Expected<json> read_bounded_json_file(const std::string& path, const std::string& what, size_t max_bytes,
                                      int max_depth) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        const int err = errno;
        std::string msg = "reading " + what + " " + path + ": " + std::strerror(err);
        return err == ENOENT ? not_found(msg) : io_error(msg);
    }
    if (!S_ISREG(st.st_mode)) return io_error("reading " + what + " " + path + ": not a regular file");
    if (static_cast<uint64_t>(st.st_size) > max_bytes)
        return corrupt(what + " " + path + " has " + std::to_string(st.st_size) + " bytes, more than the " +
                       std::to_string(max_bytes) + " llmq accepts for it");
    std::ifstream in(path, std::ios::binary);
    std::string text(static_cast<size_t>(st.st_size), '\0');
    if (!in || !in.read(text.data(), static_cast<std::streamsize>(text.size())))
        return io_error("reading " + what + " " + path + ": read failed");
    return parse_bounded_json(text, what + " " + path, max_depth);
}

std::string json_kind(const json& v) {
    switch (v.type()) {
        case json::value_t::null: return "null";
        case json::value_t::boolean: return "a boolean";
        case json::value_t::number_integer:
        case json::value_t::number_unsigned: return "an integer";
        case json::value_t::number_float: return "a number";
        case json::value_t::string: return "a string";
        case json::value_t::array: return "an array";
        case json::value_t::object: return "an object";
        default: return "a value";
    }
}

}  // namespace llmq
