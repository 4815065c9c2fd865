// Values of the chat-template interpreter (a Jinja subset): undefined, none, booleans,
// integers, floats, strings, lists, dicts and callables, with Python's printing and
// comparison rules as Jinja shows them.
//
// Every string carries a mask beside its bytes: 0 where the byte came from the template's own
// literals (markup that may spell control tokens), 1 where it came from the data the
// template was given (message text, which must never become a control token). Operations
// that cannot follow bytes exactly mark the whole result as data when any input was data.
//
// Internal to runtime/src/tokenizer. Values are immutable except lists and dicts reached
// through the shared pointers (namespace() objects, list.append); one render at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llmq/runtime/status.hpp"

namespace llmq::jinja {

// Bytes and their origin mask (same length; '\0' template, '\1' data).
struct Text {
    std::string bytes;
    std::string mask;

    static Text markup(std::string s) {
        Text t;
        t.mask.assign(s.size(), '\0');
        t.bytes = std::move(s);
        return t;
    }
    static Text data(std::string s) {
        Text t;
        t.mask.assign(s.size(), '\1');
        t.bytes = std::move(s);
        return t;
    }
    bool has_data() const { return mask.find('\1') != std::string::npos; }
    void append(const Text& o) {
        bytes += o.bytes;
        mask += o.mask;
    }
    Text substr(size_t pos, size_t n = std::string::npos) const {
        return Text{bytes.substr(pos, n), mask.substr(pos, n)};
    }
};

struct Value;
using List = std::vector<Value>;
struct Dict;
struct Call;  // the arguments of one call, see jinja_evaluator.cpp
using Function = std::function<Expected<Value>(Call&)>;

struct Value {
    enum class Type { undefined, none, boolean, integer, number, string, list, dict, function };
    Type type = Type::undefined;
    bool b = false;
    int64_t i = 0;
    double d = 0.0;
    Text s;
    std::shared_ptr<List> list;
    std::shared_ptr<Dict> dict;
    std::shared_ptr<Function> fn;
    std::string undefined_name;  // for "X is undefined" messages

    static Value undefined(std::string name = {}) {
        Value v;
        v.undefined_name = std::move(name);
        return v;
    }
    static Value none() { return with(Type::none); }
    static Value boolean(bool x) {
        Value v = with(Type::boolean);
        v.b = x;
        return v;
    }
    static Value integer(int64_t x) {
        Value v = with(Type::integer);
        v.i = x;
        return v;
    }
    static Value number(double x) {
        Value v = with(Type::number);
        v.d = x;
        return v;
    }
    static Value string(Text t) {
        Value v = with(Type::string);
        v.s = std::move(t);
        return v;
    }
    static Value markup(std::string s) { return string(Text::markup(std::move(s))); }
    static Value data(std::string s) { return string(Text::data(std::move(s))); }
    static Value make_list(List items = {}) {
        Value v = with(Type::list);
        v.list = std::make_shared<List>(std::move(items));
        return v;
    }
    static Value make_dict();
    static Value function(Function f) {
        Value v = with(Type::function);
        v.fn = std::make_shared<Function>(std::move(f));
        return v;
    }

    bool is(Type t) const { return type == t; }
    bool is_number() const { return type == Type::integer || type == Type::number; }
    double as_double() const { return type == Type::integer ? double(i) : d; }
    bool truthy() const;

private:
    static Value with(Type t) {
        Value v;
        v.type = t;
        return v;
    }
};

// Insertion-ordered, as Python dicts print and iterate.
struct Dict {
    std::vector<std::pair<std::string, Value>> items;
    const Value* find(std::string_view key) const {
        for (const auto& [k, v] : items)
            if (k == key) return &v;
        return nullptr;
    }
    void set(const std::string& key, Value v) {
        for (auto& [k, old] : items)
            if (k == key) {
                old = std::move(v);
                return;
            }
        items.emplace_back(key, std::move(v));
    }
};

inline Value Value::make_dict() {
    Value v = with(Type::dict);
    v.dict = std::make_shared<Dict>();
    return v;
}

// The name Jinja's errors use for a type ("string", "list", ...).
const char* type_name(const Value& v);
// Output of {{ v }} and of the string filter: Python's str(); undefined prints nothing.
Text to_text(const Value& v);
// Python repr() (strings quoted), as lists and dicts print their items.
std::string repr(const Value& v);
// JSON as Hugging Face's tojson writes it (json.dumps, ensure_ascii=False); indent < 0: one
// line with ", " and ": " separators.
Text to_json(const Value& v, int indent);
// ==, as Python compares (1 == 1.0; lists and dicts item by item).
bool equal(const Value& a, const Value& b);

}  // namespace llmq::jinja
