// The chat-template lexer. Hugging Face renders chat templates with trim_blocks and
// lstrip_blocks on, so the lexer applies them here: the first newline after a block or
// comment tag is dropped, and spaces/tabs from the start of a line up to a block or comment
// tag are dropped ("{%+" keeps them). "{%-" / "-%}" (and {{- -}}, {#- -#}) strip all
// whitespace on their side.
#include <cctype>

#include "jinja_ast.hpp"

namespace llmq::jinja {

namespace {

bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

Status error_at(int line, const std::string& what) {
    return invalid_argument("chat template line " + std::to_string(line) + ": " + what);
}

class Lexer {
public:
    explicit Lexer(std::string_view s) : s_(s) {}

    Expected<std::vector<Token>> run() {
        bool strip_next = false;     // the previous tag ended with "-"
        bool trim_newline = false;   // the previous tag was a block or comment (trim_blocks)
        while (pos_ < s_.size()) {
            const size_t open = find_open(pos_);
            size_t text_end = open == std::string_view::npos ? s_.size() : open;
            size_t text_begin = pos_;
            if (strip_next) {
                while (text_begin < text_end && std::isspace(static_cast<unsigned char>(s_[text_begin]))) ++text_begin;
            } else if (trim_newline) {
                if (s_.substr(text_begin, 2) == "\r\n" && text_begin + 2 <= text_end) text_begin += 2;
                else if (text_begin < text_end && s_[text_begin] == '\n') ++text_begin;
            }
            const int text_line = line_at(text_begin);
            if (open == std::string_view::npos) {
                push_text(text_begin, text_end, text_line);
                break;
            }
            const char kind = s_[open + 1];
            const char modifier = open + 2 < s_.size() ? s_[open + 2] : '\0';
            if (modifier == '-') {
                while (text_end > text_begin && std::isspace(static_cast<unsigned char>(s_[text_end - 1]))) --text_end;
            } else if (modifier != '+' && (kind == '%' || kind == '#')) {
                // lstrip_blocks: spaces and tabs between the line's start and the tag.
                size_t k = text_end;
                while (k > text_begin && (s_[k - 1] == ' ' || s_[k - 1] == '\t')) --k;
                if (k == 0 || s_[k - 1] == '\n') text_end = k;
            }
            push_text(text_begin, text_end, text_line);
            pos_ = open + 2 + ((modifier == '-' || modifier == '+') ? 1 : 0);
            const int tag_line = line_at(open);
            if (kind == '#') {
                const size_t close = s_.find("#}", pos_);
                if (close == std::string_view::npos) return error_at(tag_line, "comment {# is never closed with #}");
                strip_next = close > pos_ && s_[close - 1] == '-';
                trim_newline = !strip_next;
                pos_ = close + 2;
                continue;
            }
            const bool expr = kind == '{';
            tokens_.push_back({expr ? Token::Kind::expr_open : Token::Kind::stmt_open, "", tag_line});
            auto closed = lex_tag(expr, tag_line, strip_next);
            if (!closed.ok()) return closed;
            trim_newline = !expr && !strip_next;
        }
        tokens_.push_back({Token::Kind::end, "", line_at(s_.size())});
        return std::move(tokens_);
    }

private:
    size_t find_open(size_t from) const {
        for (size_t k = s_.find('{', from); k != std::string_view::npos; k = s_.find('{', k + 1)) {
            if (k + 1 < s_.size() && (s_[k + 1] == '{' || s_[k + 1] == '%' || s_[k + 1] == '#')) return k;
        }
        return std::string_view::npos;
    }

    int line_at(size_t p) {
        // Lines are counted incrementally: positions only move forward.
        while (line_pos_ < p && line_pos_ < s_.size()) {
            if (s_[line_pos_] == '\n') ++line_;
            ++line_pos_;
        }
        return line_;
    }

    void push_text(size_t begin, size_t end, int line) {
        if (end > begin) tokens_.push_back({Token::Kind::text, std::string(s_.substr(begin, end - begin)), line});
    }

    // Tokens of one {{ }} or {% %} tag, up to and including its close.
    Status lex_tag(bool expr, int open_line, bool& strip_after) {
        const std::string_view close = expr ? "}}" : "%}";
        int depth = 0;  // brackets: "}}" inside {{ {'a': {'b': 1}} }} closes a dict first
        while (true) {
            while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
            if (pos_ >= s_.size())
                return error_at(open_line, std::string("tag is never closed with ") + std::string(close));
            const int line = line_at(pos_);
            const std::string_view rest = s_.substr(pos_);
            if (depth == 0 && (rest.starts_with(close) || (rest.starts_with("-") && rest.substr(1).starts_with(close)))) {
                strip_after = rest[0] == '-';
                pos_ += close.size() + (strip_after ? 1 : 0);
                tokens_.push_back({expr ? Token::Kind::expr_close : Token::Kind::stmt_close, "", line});
                return Status();
            }
            const char c = s_[pos_];
            if (is_name_start(c)) {
                size_t e = pos_;
                while (e < s_.size() && is_name_char(s_[e])) ++e;
                tokens_.push_back({Token::Kind::name, std::string(s_.substr(pos_, e - pos_)), line});
                pos_ = e;
            } else if (std::isdigit(static_cast<unsigned char>(c))) {
                size_t e = pos_;
                bool is_float = false;
                while (e < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[e])) || s_[e] == '_')) ++e;
                if (e + 1 < s_.size() && s_[e] == '.' && std::isdigit(static_cast<unsigned char>(s_[e + 1]))) {
                    is_float = true;
                    ++e;
                    while (e < s_.size() && std::isdigit(static_cast<unsigned char>(s_[e]))) ++e;
                }
                std::string digits;
                for (char d : s_.substr(pos_, e - pos_))
                    if (d != '_') digits += d;
                tokens_.push_back({is_float ? Token::Kind::number : Token::Kind::integer, digits, line});
                pos_ = e;
            } else if (c == '\'' || c == '"') {
                auto s = lex_string(c, line);
                if (!s) return s.status();
                tokens_.push_back({Token::Kind::string, std::move(*s), line});
            } else {
                static constexpr std::string_view two[] = {"==", "!=", "<=", ">=", "//", "**"};
                std::string op(1, c);
                for (std::string_view t : two)
                    if (rest.starts_with(t)) op = std::string(t);
                if (op.size() == 1 && std::string_view("+-*/%~|.,:()[]{}<>=!").find(c) == std::string_view::npos)
                    return error_at(line, std::string("unexpected character '") + c + "' in a tag");
                if (op == "(" || op == "[" || op == "{") ++depth;
                if ((op == ")" || op == "]" || op == "}") && depth > 0) --depth;
                tokens_.push_back({Token::Kind::op, op, line});
                pos_ += op.size();
            }
        }
    }

    Expected<std::string> lex_string(char quote, int line) {
        std::string out;
        ++pos_;
        while (pos_ < s_.size() && s_[pos_] != quote) {
            char c = s_[pos_++];
            if (c == '\\' && pos_ < s_.size()) {
                const char e = s_[pos_++];
                switch (e) {
                    case 'n': out += '\n'; break;
                    case 't': out += '\t'; break;
                    case 'r': out += '\r'; break;
                    case '\\': out += '\\'; break;
                    case '\'': out += '\''; break;
                    case '"': out += '"'; break;
                    case '0': out += '\0'; break;
                    default: out += '\\'; out += e;  // Python keeps unknown escapes as written
                }
            } else {
                out += c;
            }
        }
        if (pos_ >= s_.size()) return error_at(line, "string literal is never closed");
        ++pos_;
        return out;
    }

    std::string_view s_;
    size_t pos_ = 0;
    size_t line_pos_ = 0;
    int line_ = 1;
    std::vector<Token> tokens_;
};

}  // namespace

Expected<std::vector<Token>> lex(std::string_view source) { return Lexer(source).run(); }

}  // namespace llmq::jinja
