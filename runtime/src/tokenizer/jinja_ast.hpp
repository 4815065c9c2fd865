// The parsed form of a chat template: the lexer (jinja_lexer.cpp) cuts the source into text
// and tag tokens, applying Hugging Face's environment (trim_blocks, lstrip_blocks) and the
// "-" whitespace controls; the parser (jinja_parser.cpp) builds these trees.
//
// Internal to runtime/src/tokenizer. Immutable after parse; any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "jinja_value.hpp"
#include "llmq/runtime/status.hpp"

namespace llmq::jinja {

struct Token {
    enum class Kind { text, expr_open, expr_close, stmt_open, stmt_close, name, string, integer, number, op, end };
    Kind kind;
    std::string text;  // text, name, string (unescaped), op spelling, number spelling
    int line;
};

// The tokens of `source`; errors name the line (an unterminated tag or string).
[[nodiscard]] Expected<std::vector<Token>> lex(std::string_view source);

struct Expr {
    enum class Kind {
        literal,    // value
        name,       // name
        list,       // args: items
        dict,       // args: key, value, key, value...
        attribute,  // args[0].name
        subscript,  // args[0][args[1]]
        slice,      // args[0][args[1]:args[2]:args[3]] (null parts absent)
        call,       // args[0](args[1..]); kwnames parallel to args (empty for positional)
        filter,     // name; args[0] | name(args[1..]) with kwnames
        test,       // name; args[0] is [not] name(args[1..]); negate
        unary,      // op ("not", "-", "+"); args[0]
        binary,     // op; args[0] op args[1] ("and", "or", "in", "not in", "==", "~", "+", ...)
        conditional // args[1] if args[0] else args[2] (args[2] may be null)
    };
    Kind kind;
    int line;
    std::string name;  // name, attribute, filter, test, operator
    bool negate = false;
    Value value;
    std::vector<std::unique_ptr<Expr>> args;
    std::vector<std::string> kwnames;
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct Stmt {
    enum class Kind {
        text,       // text
        output,     // {{ expr }}
        if_,        // branches: (condition, body)...; else_body
        for_,       // targets in expr [if filter] body else_body
        set,        // targets (one name, or name.attr via attr) = expr; or block set (body)
        macro,      // name(params with defaults) body
        call_block, // unused
        break_,
        continue_,
    };
    Kind kind;
    int line;
    std::string text;
    std::unique_ptr<Expr> expr;    // output, for iterable, set value
    std::unique_ptr<Expr> filter;  // for ... if filter
    std::vector<std::pair<std::unique_ptr<Expr>, Body>> branches;
    Body body, else_body;
    std::vector<std::string> targets;  // for / set names
    std::string attr;                  // set ns.attr
    std::string name;                  // macro name
    std::vector<std::string> params;   // macro parameters
    std::vector<std::unique_ptr<Expr>> defaults;  // per param, null when none
};

struct Template {
    Body body;
};

// Parses a whole template; errors: "chat template line N: ..." naming what was expected.
[[nodiscard]] Expected<Template> parse(std::string_view source);

}  // namespace llmq::jinja
