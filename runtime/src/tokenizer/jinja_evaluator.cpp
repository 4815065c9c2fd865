// The chat-template evaluator: walks the parsed template and writes text with its origin
// mask (see jinja_value.hpp). Errors stick: the first one is kept with its template line and
// everything after it unwinds without output. A render is bounded (output bytes, loop
// iterations, call depth) because a template may come from a client.
#include <algorithm>
#include <cmath>
#include <ctime>

#include "jinja_ast.hpp"
#include "llmq/runtime/chat_template.hpp"
#include "utf8.hpp"

namespace llmq {

struct ChatTemplate::Parsed {
    jinja::Template tpl;
};

namespace jinja {

constexpr size_t max_output_bytes = 16u << 20;
constexpr int64_t max_iterations = 1'000'000;
constexpr int max_call_depth = 64;

struct Call {
    std::vector<Value> args;
    std::vector<std::pair<std::string, Value>> kwargs;
    int line = 0;
    class Evaluator* ev = nullptr;

    const Value* kw(std::string_view name) const {
        for (const auto& [k, v] : kwargs)
            if (k == name) return &v;
        return nullptr;
    }
    // Positional argument `i`, else keyword `name`, else nullptr.
    const Value* arg(size_t i, std::string_view name = {}) const {
        if (i < args.size()) return &args[i];
        return name.empty() ? nullptr : kw(name);
    }
};

namespace {

constexpr std::string_view whitespace = " \t\n\r\f\v";

Text strip_text(const Text& t, std::string_view chars, bool left, bool right) {
    size_t b = 0, e = t.bytes.size();
    if (left) {
        b = t.bytes.find_first_not_of(chars);
        if (b == std::string::npos) return {};
    }
    if (right) {
        const size_t last = t.bytes.find_last_not_of(chars);
        if (last == std::string::npos) return {};
        e = last + 1;
    }
    return t.substr(b, e - b);
}

// Byte offsets where the code points of `s` start, plus s.size() at the end.
std::vector<size_t> code_point_starts(const std::string& s) {
    std::vector<size_t> starts;
    for (size_t p = 0; p < s.size();) {
        starts.push_back(p);
        p += utf8::step(std::string_view(s).substr(p)).length;
    }
    starts.push_back(s.size());
    return starts;
}

Text ascii_case(const Text& t, int mode) {  // 0 lower, 1 upper, 2 capitalize, 3 title
    Text out = t;
    bool word_start = true;
    for (size_t k = 0; k < out.bytes.size(); ++k) {
        char& c = out.bytes[k];
        const bool alpha = std::isalpha(static_cast<unsigned char>(c));
        bool up = mode == 1 || (mode == 2 && k == 0) || (mode == 3 && word_start);
        if (alpha) c = up ? char(std::toupper(static_cast<unsigned char>(c))) : char(std::tolower(static_cast<unsigned char>(c)));
        word_start = !alpha;
    }
    return out;
}

Text replace_text(const Text& s, const Text& from, const Text& to, int64_t count) {
    if (from.bytes.empty()) return s;
    Text out;
    size_t pos = 0;
    for (int64_t n = 0; count < 0 || n < count; ++n) {
        const size_t hit = s.bytes.find(from.bytes, pos);
        if (hit == std::string::npos) break;
        out.append(s.substr(pos, hit - pos));
        out.append(to);
        pos = hit + from.bytes.size();
    }
    out.append(s.substr(pos));
    return out;
}

}  // namespace

class Evaluator {
public:
    Evaluator(const std::string& origin) : origin_(origin) {
        scopes_.emplace_back();
        outputs_.emplace_back();
    }

    // Records the first error; returns an undefined value for the caller to hand back.
    Value fail(int line, const std::string& what) {
        if (error_.ok())
            error_ = invalid_argument(origin_ + ": chat template line " + std::to_string(line) + ": " + what);
        return {};
    }
    bool ok() const { return error_.ok(); }
    const Status& error() const { return error_; }

    void define(const std::string& name, Value v) { scopes_.front()[name] = std::move(v); }

    Expected<Text> render(const Body& body) {
        exec(body);
        if (!ok()) return error_;
        return std::move(outputs_.back());
    }

    // ---- statements

    enum class Flow { normal, break_, continue_ };

    Flow exec(const Body& body) {
        for (const auto& s : body) {
            if (!ok()) return Flow::normal;
            const Flow f = exec(*s);
            if (f != Flow::normal) return f;
        }
        return Flow::normal;
    }

    void emit(const Text& t, int line) {
        Text& out = outputs_.back();
        if (out.bytes.size() + t.bytes.size() > max_output_bytes) {
            fail(line, "the rendered prompt exceeds " + std::to_string(max_output_bytes >> 20) + " MiB");
            return;
        }
        out.append(t);
    }

    Flow exec(const Stmt& s) {
        switch (s.kind) {
            case Stmt::Kind::text: emit(Text::markup(s.text), s.line); break;
            case Stmt::Kind::output: {
                Value v = eval(*s.expr);
                if (ok()) emit(to_text(v), s.line);
                break;
            }
            case Stmt::Kind::if_:
                for (const auto& [cond, body] : s.branches) {
                    const Value c = eval(*cond);
                    if (!ok()) return Flow::normal;
                    if (c.truthy()) return exec(body);
                }
                return exec(s.else_body);
            case Stmt::Kind::for_: return exec_for(s);
            case Stmt::Kind::set: exec_set(s); break;
            case Stmt::Kind::macro: define_macro(s); break;
            case Stmt::Kind::break_: return Flow::break_;
            case Stmt::Kind::continue_: return Flow::continue_;
            case Stmt::Kind::call_block: break;
        }
        return Flow::normal;
    }

    void assign(const std::vector<std::string>& targets, const Value& v, int line) {
        if (targets.size() == 1) {
            scopes_.back()[targets[0]] = v;
            return;
        }
        if (!v.is(Value::Type::list) || v.list->size() != targets.size()) {
            fail(line, "cannot unpack " + std::string(type_name(v)) + " into " + std::to_string(targets.size()) + " names");
            return;
        }
        for (size_t k = 0; k < targets.size(); ++k) scopes_.back()[targets[k]] = (*v.list)[k];
    }

    void exec_set(const Stmt& s) {
        Value v;
        if (s.expr) {
            v = eval(*s.expr);
        } else {
            outputs_.emplace_back();
            exec(s.body);
            v = Value::string(std::move(outputs_.back()));
            outputs_.pop_back();
        }
        if (!ok()) return;
        if (s.attr.empty()) return assign(s.targets, v, s.line);
        Value target = lookup(s.targets[0]);
        if (!target.is(Value::Type::dict)) {
            fail(s.line, "cannot set attribute '" + s.attr + "' of " + s.targets[0] + ", which is " +
                             type_name(target) + " (use namespace())");
            return;
        }
        target.dict->set(s.attr, std::move(v));
    }

    Flow exec_for(const Stmt& s) {
        Value seq = eval(*s.expr);
        if (!ok()) return Flow::normal;
        List items;
        if (seq.is(Value::Type::list)) {
            items = *seq.list;
        } else if (seq.is(Value::Type::dict)) {
            for (const auto& kv : seq.dict->items) items.push_back(Value::markup(kv.first));
        } else if (seq.is(Value::Type::string)) {
            const auto starts = code_point_starts(seq.s.bytes);
            for (size_t k = 0; k + 1 < starts.size(); ++k)
                items.push_back(Value::string(seq.s.substr(starts[k], starts[k + 1] - starts[k])));
        } else if (!seq.is(Value::Type::undefined) && !seq.is(Value::Type::none)) {
            fail(s.line, std::string("cannot loop over ") + type_name(seq));
            return Flow::normal;
        } else if (seq.is(Value::Type::none)) {
            fail(s.line, "cannot loop over none");
            return Flow::normal;
        }
        scopes_.emplace_back();
        if (s.filter) {
            List kept;
            for (const Value& item : items) {
                assign(s.targets, item, s.line);
                const Value keep = eval(*s.filter);
                if (!ok()) break;
                if (keep.truthy()) kept.push_back(item);
            }
            items = std::move(kept);
        }
        const int64_t n = static_cast<int64_t>(items.size());
        for (int64_t k = 0; k < n && ok(); ++k) {
            if (++iterations_ > max_iterations) {
                fail(s.line, "loops ran more than " + std::to_string(max_iterations) + " iterations");
                break;
            }
            Value loop = Value::make_dict();
            loop.dict->set("index0", Value::integer(k));
            loop.dict->set("index", Value::integer(k + 1));
            loop.dict->set("revindex0", Value::integer(n - k - 1));
            loop.dict->set("revindex", Value::integer(n - k));
            loop.dict->set("first", Value::boolean(k == 0));
            loop.dict->set("last", Value::boolean(k == n - 1));
            loop.dict->set("length", Value::integer(n));
            loop.dict->set("previtem", k > 0 ? items[k - 1] : Value::undefined("loop.previtem"));
            loop.dict->set("nextitem", k + 1 < n ? items[k + 1] : Value::undefined("loop.nextitem"));
            scopes_.back()["loop"] = loop;
            assign(s.targets, items[k], s.line);
            if (exec(s.body) == Flow::break_) break;
        }
        scopes_.pop_back();
        if (n == 0 && ok()) return exec(s.else_body);
        return Flow::normal;
    }

    void define_macro(const Stmt& s) {
        const Stmt* m = &s;
        scopes_.back()[s.name] = Value::function([this, m](Call& c) -> Expected<Value> {
            if (++call_depth_ > max_call_depth) {
                --call_depth_;
                fail(c.line, "macros call each other more than " + std::to_string(max_call_depth) + " deep");
                return error_;
            }
            std::unordered_map<std::string, Value> frame;
            for (size_t k = 0; k < m->params.size(); ++k) {
                const Value* given = c.arg(k, m->params[k]);
                if (given) frame[m->params[k]] = *given;
                else if (m->defaults[k]) frame[m->params[k]] = eval(*m->defaults[k]);
                else frame[m->params[k]] = Value::undefined(m->params[k]);
            }
            scopes_.push_back(std::move(frame));
            outputs_.emplace_back();
            exec(m->body);
            Value out = Value::string(std::move(outputs_.back()));
            outputs_.pop_back();
            scopes_.pop_back();
            --call_depth_;
            if (!ok()) return error_;
            return out;
        });
    }

    Value lookup(const std::string& name) const {
        for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
            const auto found = it->find(name);
            if (found != it->end()) return found->second;
        }
        return Value::undefined(name);
    }

    // ---- expressions

    Value eval(const Expr& e) {
        if (!ok()) return {};
        switch (e.kind) {
            case Expr::Kind::literal: return e.value;
            case Expr::Kind::name: return lookup(e.name);
            case Expr::Kind::list: {
                List items;
                for (const auto& a : e.args) items.push_back(eval(*a));
                return Value::make_list(std::move(items));
            }
            case Expr::Kind::dict: {
                Value d = Value::make_dict();
                for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
                    const Value key = eval(*e.args[k]);
                    Value v = eval(*e.args[k + 1]);
                    if (!ok()) return {};
                    d.dict->set(to_text(key).bytes, std::move(v));
                }
                return d;
            }
            case Expr::Kind::attribute: {
                const Value obj = eval(*e.args[0]);
                if (!ok()) return {};
                return attribute(obj, e.name, e.line, describe(*e.args[0]));
            }
            case Expr::Kind::subscript: {
                const Value obj = eval(*e.args[0]);
                const Value key = eval(*e.args[1]);
                if (!ok()) return {};
                return subscript(obj, key, e.line, describe(*e.args[0]));
            }
            case Expr::Kind::slice: return slice(e);
            case Expr::Kind::call: {
                const Value f = eval(*e.args[0]);
                Call c = make_call(e, 1);
                if (!ok()) return {};
                if (!f.is(Value::Type::function)) {
                    fail(e.line, describe(*e.args[0]) + " is " + type_name(f) + ", not something to call");
                    return {};
                }
                auto r = (*f.fn)(c);
                if (!r) {
                    fail(e.line, r.status().message());
                    return {};
                }
                return std::move(*r);
            }
            case Expr::Kind::filter: {
                const Value input = eval(*e.args[0]);
                Call c = make_call(e, 1);
                if (!ok()) return {};
                return filter(e.name, input, c);
            }
            case Expr::Kind::test: {
                const Value input = eval(*e.args[0]);
                Call c = make_call(e, 1);
                if (!ok()) return {};
                const Value r = test(e.name, input, c);
                return ok() ? Value::boolean(r.b != e.negate) : Value{};
            }
            case Expr::Kind::unary: {
                const Value v = eval(*e.args[0]);
                if (!ok()) return {};
                if (e.name == "not") return Value::boolean(!v.truthy());
                if (v.is(Value::Type::integer)) return Value::integer(e.name == "-" ? -v.i : v.i);
                if (v.is(Value::Type::number)) return Value::number(e.name == "-" ? -v.d : v.d);
                fail(e.line, "unary " + e.name + " needs a number, " + describe(*e.args[0]) + " is " + type_name(v));
                return {};
            }
            case Expr::Kind::binary: return binary(e);
            case Expr::Kind::conditional: {
                const Value c = eval(*e.args[0]);
                if (!ok()) return {};
                if (c.truthy()) return eval(*e.args[1]);
                return e.args[2] ? eval(*e.args[2]) : Value::undefined();
            }
        }
        return {};
    }

    std::string describe(const Expr& e) const {
        switch (e.kind) {
            case Expr::Kind::name: return "'" + e.name + "'";
            case Expr::Kind::attribute: return describe(*e.args[0]) + "." + e.name;
            case Expr::Kind::subscript: return describe(*e.args[0]) + "[...]";
            case Expr::Kind::call: return describe(*e.args[0]) + "(...)";
            default: return "the value";
        }
    }

    Call make_call(const Expr& e, size_t first) {
        Call c;
        c.line = e.line;
        c.ev = this;
        for (size_t k = first; k < e.args.size(); ++k) {
            Value v = eval(*e.args[k]);
            if (k < e.kwnames.size() && !e.kwnames[k].empty()) c.kwargs.emplace_back(e.kwnames[k], std::move(v));
            else c.args.push_back(std::move(v));
        }
        return c;
    }

    Value undefined_use(const Value& v, int line, const std::string& what) {
        fail(line, (v.undefined_name.empty() ? what : "'" + v.undefined_name + "'") + " is undefined");
        return {};
    }

    Value attribute(const Value& obj, const std::string& name, int line, const std::string& what) {
        if (obj.is(Value::Type::undefined)) return undefined_use(obj, line, what);
        if (obj.is(Value::Type::dict)) {
            if (const Value* v = obj.dict->find(name)) return *v;
            if (name == "items" || name == "keys" || name == "values" || name == "get") return method(obj, name);
            return Value::undefined(what.size() > 2 && what.front() == '\'' ? what.substr(1, what.size() - 2) + "." + name : name);
        }
        if (obj.is(Value::Type::string) || obj.is(Value::Type::list)) return method(obj, name);
        return Value::undefined(name);
    }

    Value subscript(const Value& obj, const Value& key, int line, const std::string& what) {
        if (obj.is(Value::Type::undefined)) return undefined_use(obj, line, what);
        if (obj.is(Value::Type::dict)) {
            if (!key.is(Value::Type::string)) return Value::undefined();
            if (const Value* v = obj.dict->find(key.s.bytes)) return *v;
            return Value::undefined(key.s.bytes);
        }
        if ((obj.is(Value::Type::list) || obj.is(Value::Type::string)) && key.is(Value::Type::integer)) {
            if (obj.is(Value::Type::list)) {
                const int64_t n = static_cast<int64_t>(obj.list->size());
                const int64_t k = key.i < 0 ? key.i + n : key.i;
                return k >= 0 && k < n ? (*obj.list)[k] : Value::undefined();
            }
            const auto starts = code_point_starts(obj.s.bytes);
            const int64_t n = static_cast<int64_t>(starts.size()) - 1;
            const int64_t k = key.i < 0 ? key.i + n : key.i;
            if (k < 0 || k >= n) return Value::undefined();
            return Value::string(obj.s.substr(starts[k], starts[k + 1] - starts[k]));
        }
        if (key.is(Value::Type::string)) return attribute(obj, key.s.bytes, line, what);
        return Value::undefined();
    }

    Value slice(const Expr& e) {
        const Value obj = eval(*e.args[0]);
        int64_t parts[3] = {0, 0, 1};
        bool given[3] = {false, false, false};
        for (int k = 0; k < 3; ++k) {
            if (!e.args[k + 1]) continue;
            const Value v = eval(*e.args[k + 1]);
            if (!ok()) return {};
            if (v.is(Value::Type::none)) continue;
            if (!v.is(Value::Type::integer)) {
                fail(e.line, "slice bounds must be integers");
                return {};
            }
            parts[k] = v.i;
            given[k] = true;
        }
        if (!ok()) return {};
        if (!obj.is(Value::Type::list) && !obj.is(Value::Type::string)) {
            fail(e.line, "cannot slice " + std::string(type_name(obj)));
            return {};
        }
        const int64_t step = parts[2];
        if (step == 0) {
            fail(e.line, "slice step cannot be zero");
            return {};
        }
        std::vector<size_t> starts;
        int64_t n;
        if (obj.is(Value::Type::list)) {
            n = static_cast<int64_t>(obj.list->size());
        } else {
            starts = code_point_starts(obj.s.bytes);
            n = static_cast<int64_t>(starts.size()) - 1;
        }
        auto clamp = [&](int64_t v, bool is_given, int64_t fallback) {
            if (!is_given) return fallback;
            if (v < 0) v += n;
            if (step > 0) return std::clamp<int64_t>(v, 0, n);
            return std::clamp<int64_t>(v, -1, n - 1);
        };
        const int64_t begin = clamp(parts[0], given[0], step > 0 ? 0 : n - 1);
        const int64_t end = clamp(parts[1], given[1], step > 0 ? n : -1);
        List items;
        Text text;
        for (int64_t k = begin; step > 0 ? k < end : k > end; k += step) {
            if (obj.is(Value::Type::list)) items.push_back((*obj.list)[k]);
            else text.append(obj.s.substr(starts[k], starts[k + 1] - starts[k]));
        }
        return obj.is(Value::Type::list) ? Value::make_list(std::move(items)) : Value::string(std::move(text));
    }

    Value binary(const Expr& e) {
        const std::string& op = e.name;
        const Value a = eval(*e.args[0]);
        if (!ok()) return {};
        if (op == "and") return a.truthy() ? eval(*e.args[1]) : a;
        if (op == "or") return a.truthy() ? a : eval(*e.args[1]);
        const Value b = eval(*e.args[1]);
        if (!ok()) return {};
        if (op == "==") return Value::boolean(equal(a, b));
        if (op == "!=") return Value::boolean(!equal(a, b));
        if (op == "~") {
            Text t = to_text(a);
            t.append(to_text(b));
            return Value::string(std::move(t));
        }
        if (op == "in" || op == "not in") {
            bool found = false;
            if (b.is(Value::Type::string) && a.is(Value::Type::string)) {
                found = b.s.bytes.find(a.s.bytes) != std::string::npos;
            } else if (b.is(Value::Type::list)) {
                found = std::any_of(b.list->begin(), b.list->end(), [&](const Value& x) { return equal(a, x); });
            } else if (b.is(Value::Type::dict) && a.is(Value::Type::string)) {
                found = b.dict->find(a.s.bytes) != nullptr;
            } else if (b.is(Value::Type::undefined)) {
                return undefined_use(b, e.line, describe(*e.args[1]));
            } else {
                fail(e.line, "'in' needs a string, list or dict on its right, " + describe(*e.args[1]) + " is " + type_name(b));
                return {};
            }
            return Value::boolean(op == "in" ? found : !found);
        }
        if (op == "<" || op == ">" || op == "<=" || op == ">=") {
            int cmp;
            if (a.is_number() && b.is_number()) {
                cmp = a.as_double() < b.as_double() ? -1 : a.as_double() > b.as_double() ? 1 : 0;
            } else if (a.is(Value::Type::string) && b.is(Value::Type::string)) {
                cmp = a.s.bytes.compare(b.s.bytes);
            } else {
                fail(e.line, std::string("cannot compare ") + type_name(a) + " " + op + " " + type_name(b));
                return {};
            }
            if (op == "<") return Value::boolean(cmp < 0);
            if (op == ">") return Value::boolean(cmp > 0);
            if (op == "<=") return Value::boolean(cmp <= 0);
            return Value::boolean(cmp >= 0);
        }
        if (op == "+") {
            if (a.is(Value::Type::string) && b.is(Value::Type::string)) {
                Text t = a.s;
                t.append(b.s);
                return Value::string(std::move(t));
            }
            if (a.is(Value::Type::list) && b.is(Value::Type::list)) {
                List items = *a.list;
                items.insert(items.end(), b.list->begin(), b.list->end());
                return Value::make_list(std::move(items));
            }
        }
        if (op == "*" && a.is(Value::Type::string) && b.is(Value::Type::integer)) {
            Text t;
            for (int64_t k = 0; k < b.i; ++k) {
                if (t.bytes.size() + a.s.bytes.size() > max_output_bytes) {
                    fail(e.line, "string repetition is too long");
                    return {};
                }
                t.append(a.s);
            }
            return Value::string(std::move(t));
        }
        if (a.is_number() && b.is_number()) {
            const bool ints = a.is(Value::Type::integer) && b.is(Value::Type::integer);
            const double x = a.as_double(), y = b.as_double();
            if ((op == "/" || op == "//" || op == "%") && y == 0.0) {
                fail(e.line, "division by zero");
                return {};
            }
            if (op == "+") return ints ? Value::integer(a.i + b.i) : Value::number(x + y);
            if (op == "-") return ints ? Value::integer(a.i - b.i) : Value::number(x - y);
            if (op == "*") return ints ? Value::integer(a.i * b.i) : Value::number(x * y);
            if (op == "/") return Value::number(x / y);
            if (op == "//") return ints ? Value::integer(int64_t(std::floor(x / y))) : Value::number(std::floor(x / y));
            if (op == "%") {
                if (ints) return Value::integer(((a.i % b.i) + b.i) % b.i);
                return Value::number(x - y * std::floor(x / y));
            }
            if (op == "**") return ints && b.i >= 0 ? Value::integer(int64_t(std::pow(x, y))) : Value::number(std::pow(x, y));
        }
        if (a.is(Value::Type::undefined)) return undefined_use(a, e.line, describe(*e.args[0]));
        if (b.is(Value::Type::undefined)) return undefined_use(b, e.line, describe(*e.args[1]));
        fail(e.line, std::string("cannot apply '") + op + "' to " + type_name(a) + " and " + type_name(b));
        return {};
    }

    // ---- methods, filters, tests

    Value method(const Value& obj, const std::string& name) {
        return Value::function([this, obj, name](Call& c) -> Expected<Value> {
            Value r = call_method(obj, name, c);
            if (!ok()) return error_;
            return r;
        });
    }

    Value need_string(const Call& c, size_t i, const char* what, bool optional = false) {
        const Value* v = c.arg(i);
        if (!v || v->is(Value::Type::none)) {
            if (!optional) fail(c.line, std::string(what) + " needs a string argument");
            return {};
        }
        if (!v->is(Value::Type::string)) {
            fail(c.line, std::string(what) + " needs a string argument, got " + type_name(*v));
            return {};
        }
        return *v;
    }

    Value call_method(const Value& obj, const std::string& name, Call& c) {
        if (obj.is(Value::Type::string)) {
            const Text& s = obj.s;
            if (name == "strip" || name == "lstrip" || name == "rstrip") {
                const Value chars = need_string(c, 0, name.c_str(), true);
                const std::string_view set = chars.is(Value::Type::string) ? std::string_view(chars.s.bytes) : whitespace;
                return Value::string(strip_text(s, set, name != "rstrip", name != "lstrip"));
            }
            if (name == "startswith" || name == "endswith") {
                const Value* p = c.arg(0);
                if (!p) return fail(c.line, name + " needs an argument");
                List options = p->is(Value::Type::list) ? *p->list : List{*p};
                for (const Value& o : options) {
                    if (!o.is(Value::Type::string)) return fail(c.line, name + " needs strings");
                    if (name == "startswith" ? s.bytes.starts_with(o.s.bytes) : s.bytes.ends_with(o.s.bytes))
                        return Value::boolean(true);
                }
                return Value::boolean(false);
            }
            if (name == "split") {
                const Value sep = need_string(c, 0, "split", true);
                const Value* max = c.arg(1, "maxsplit");
                int64_t left = max && max->is(Value::Type::integer) ? max->i : -1;
                List parts;
                if (!sep.is(Value::Type::string)) {
                    size_t p = 0;
                    while (true) {
                        p = s.bytes.find_first_not_of(whitespace, p);
                        if (p == std::string::npos) break;
                        size_t e = left == 0 ? std::string::npos : s.bytes.find_first_of(whitespace, p);
                        if (left == 0) {
                            parts.push_back(Value::string(strip_text(s.substr(p), whitespace, false, true)));
                            break;
                        }
                        if (e == std::string::npos) e = s.bytes.size();
                        parts.push_back(Value::string(s.substr(p, e - p)));
                        p = e;
                        --left;
                    }
                } else {
                    if (sep.s.bytes.empty()) return fail(c.line, "split: empty separator");
                    size_t p = 0;
                    while (true) {
                        const size_t hit = left == 0 ? std::string::npos : s.bytes.find(sep.s.bytes, p);
                        if (hit == std::string::npos) {
                            parts.push_back(Value::string(s.substr(p)));
                            break;
                        }
                        parts.push_back(Value::string(s.substr(p, hit - p)));
                        p = hit + sep.s.bytes.size();
                        --left;
                    }
                }
                return Value::make_list(std::move(parts));
            }
            if (name == "replace") {
                const Value from = need_string(c, 0, "replace"), to = need_string(c, 1, "replace");
                if (!ok()) return {};
                const Value* count = c.arg(2, "count");
                return Value::string(replace_text(s, from.s, to.s, count && count->is(Value::Type::integer) ? count->i : -1));
            }
            if (name == "upper") return Value::string(ascii_case(s, 1));
            if (name == "lower") return Value::string(ascii_case(s, 0));
            if (name == "capitalize") return Value::string(ascii_case(ascii_case(s, 0), 2));
            if (name == "title") return Value::string(ascii_case(s, 3));
            if (name == "find" || name == "count") {
                const Value sub = need_string(c, 0, name.c_str());
                if (!ok()) return {};
                if (name == "find") {
                    const size_t hit = s.bytes.find(sub.s.bytes);
                    return Value::integer(hit == std::string::npos ? -1 : int64_t(hit));
                }
                int64_t n = 0;
                if (!sub.s.bytes.empty())
                    for (size_t p = s.bytes.find(sub.s.bytes); p != std::string::npos; p = s.bytes.find(sub.s.bytes, p + sub.s.bytes.size())) ++n;
                return Value::integer(n);
            }
            if (name == "join") {
                const Value* items = c.arg(0);
                if (!items || !items->is(Value::Type::list)) return fail(c.line, "join needs a list");
                Text out;
                for (size_t k = 0; k < items->list->size(); ++k) {
                    if (k) out.append(s);
                    out.append(to_text((*items->list)[k]));
                }
                return Value::string(std::move(out));
            }
        } else if (obj.is(Value::Type::dict)) {
            if (name == "items" || name == "keys" || name == "values") {
                List out;
                for (const auto& [k, v] : obj.dict->items) {
                    if (name == "items") out.push_back(Value::make_list({Value::markup(k), v}));
                    else if (name == "keys") out.push_back(Value::markup(k));
                    else out.push_back(v);
                }
                return Value::make_list(std::move(out));
            }
            if (name == "get") {
                const Value key = need_string(c, 0, "get");
                if (!ok()) return {};
                if (const Value* v = obj.dict->find(key.s.bytes)) return *v;
                const Value* fallback = c.arg(1, "default");
                return fallback ? *fallback : Value::none();
            }
        } else if (obj.is(Value::Type::list)) {
            if (name == "append") {
                const Value* v = c.arg(0);
                if (!v) return fail(c.line, "append needs an argument");
                if (obj.list->size() >= size_t(max_iterations)) return fail(c.line, "list grows too long");
                obj.list->push_back(*v);
                return Value::none();
            }
        }
        fail(c.line, std::string(type_name(obj)) + " has no method '" + name + "'");
        return {};
    }

    Value filter(const std::string& name, const Value& v, Call& c) {
        auto need = [&](Value::Type t, const char* what) {
            if (v.is(t)) return true;
            if (v.is(Value::Type::undefined)) undefined_use(v, c.line, "the value of filter '" + name + "'");
            else fail(c.line, "filter '" + name + "' needs " + what + ", got " + type_name(v));
            return false;
        };
        if (name == "trim") {
            if (!need(Value::Type::string, "a string")) return {};
            return Value::string(strip_text(v.s, whitespace, true, true));
        }
        if (name == "length" || name == "count") {
            if (v.is(Value::Type::string)) return Value::integer(int64_t(code_point_starts(v.s.bytes).size()) - 1);
            if (v.is(Value::Type::list)) return Value::integer(int64_t(v.list->size()));
            if (v.is(Value::Type::dict)) return Value::integer(int64_t(v.dict->items.size()));
            if (v.is(Value::Type::undefined)) return Value::integer(0);
            fail(c.line, std::string("filter 'length' needs a string, list or dict, got ") + type_name(v));
            return {};
        }
        if (name == "tojson") {
            const Value* indent = c.arg(0, "indent");
            return Value::string(to_json(v, indent && indent->is(Value::Type::integer) ? int(std::clamp<int64_t>(indent->i, 0, 64)) : -1));
        }
        if (name == "upper" || name == "lower" || name == "capitalize" || name == "title") {
            if (!need(Value::Type::string, "a string")) return {};
            return call_method(v, name, c);
        }
        if (name == "default" || name == "d") {
            const Value* fallback = c.arg(0, "default_value");
            const Value* boolean = c.arg(1, "boolean");
            const bool use = v.is(Value::Type::undefined) || (boolean && boolean->truthy() && !v.truthy());
            return use ? (fallback ? *fallback : Value::markup("")) : v;
        }
        if (name == "first" || name == "last") {
            if (v.is(Value::Type::string)) {
                const auto starts = code_point_starts(v.s.bytes);
                if (starts.size() < 2) return Value::undefined();
                const size_t k = name == "first" ? 0 : starts.size() - 2;
                return Value::string(v.s.substr(starts[k], starts[k + 1] - starts[k]));
            }
            if (!need(Value::Type::list, "a list")) return {};
            if (v.list->empty()) return Value::undefined();
            return name == "first" ? v.list->front() : v.list->back();
        }
        if (name == "join") {
            if (!need(Value::Type::list, "a list")) return {};
            const Value* sep = c.arg(0, "d");
            const Value* attr = c.arg(1, "attribute");
            Text out;
            for (size_t k = 0; k < v.list->size(); ++k) {
                if (k && sep) out.append(to_text(*sep));
                const Value& item = (*v.list)[k];
                out.append(to_text(attr ? attribute(item, to_text(*attr).bytes, c.line, "item") : item));
            }
            return Value::string(std::move(out));
        }
        if (name == "replace") {
            if (!need(Value::Type::string, "a string")) return {};
            return call_method(v, "replace", c);
        }
        if (name == "string") return Value::string(to_text(v));
        if (name == "safe" || name == "list" && v.is(Value::Type::list)) return v;
        if (name == "list") {
            if (v.is(Value::Type::dict)) return call_method(v, "keys", c);
            if (v.is(Value::Type::string)) {
                List items;
                const auto starts = code_point_starts(v.s.bytes);
                for (size_t k = 0; k + 1 < starts.size(); ++k)
                    items.push_back(Value::string(v.s.substr(starts[k], starts[k + 1] - starts[k])));
                return Value::make_list(std::move(items));
            }
            fail(c.line, std::string("filter 'list' cannot convert ") + type_name(v));
            return {};
        }
        if (name == "int" || name == "float" || name == "abs") {
            double x = 0;
            if (v.is_number()) x = v.as_double();
            else if (v.is(Value::Type::boolean)) x = v.b;
            else if (v.is(Value::Type::string)) x = std::strtod(v.s.bytes.c_str(), nullptr);
            if (name == "int") return Value::integer(int64_t(x));
            if (name == "float") return Value::number(x);
            return v.is(Value::Type::integer) ? Value::integer(v.i < 0 ? -v.i : v.i) : Value::number(std::fabs(x));
        }
        if (name == "items") {
            if (!need(Value::Type::dict, "a dict")) return {};
            return call_method(v, "items", c);
        }
        if (name == "reverse") {
            if (v.is(Value::Type::string)) {
                Text out;
                const auto starts = code_point_starts(v.s.bytes);
                for (size_t k = starts.size() - 1; k > 0; --k) out.append(v.s.substr(starts[k - 1], starts[k] - starts[k - 1]));
                return Value::string(std::move(out));
            }
            if (!need(Value::Type::list, "a list")) return {};
            List items(v.list->rbegin(), v.list->rend());
            return Value::make_list(std::move(items));
        }
        if (name == "unique") {
            if (!need(Value::Type::list, "a list")) return {};
            List items;
            for (const Value& x : *v.list)
                if (std::none_of(items.begin(), items.end(), [&](const Value& y) { return equal(x, y); })) items.push_back(x);
            return Value::make_list(std::move(items));
        }
        if (name == "selectattr" || name == "rejectattr" || name == "map") {
            if (!need(Value::Type::list, "a list")) return {};
            const Value* attr = c.arg(0, "attribute");
            if (!attr || !attr->is(Value::Type::string)) return fail(c.line, "filter '" + name + "' needs an attribute name");
            List items;
            for (const Value& x : *v.list) {
                const Value a = x.is(Value::Type::dict) ? attribute(x, attr->s.bytes, c.line, "item") : Value::undefined();
                if (!ok()) return {};
                if (name == "map") {
                    items.push_back(a);
                    continue;
                }
                bool keep = a.truthy();
                if (c.args.size() >= 2) {
                    Call inner;
                    inner.line = c.line;
                    inner.ev = this;
                    inner.args.assign(c.args.begin() + 2, c.args.end());
                    keep = test(to_text(c.args[1]).bytes, a, inner).b;
                    if (!ok()) return {};
                }
                if (keep == (name == "selectattr")) items.push_back(x);
            }
            return Value::make_list(std::move(items));
        }
        if (name == "select" || name == "reject") {
            if (!need(Value::Type::list, "a list")) return {};
            List items;
            for (const Value& x : *v.list) {
                bool keep = x.truthy();
                if (!c.args.empty()) {
                    Call inner;
                    inner.line = c.line;
                    inner.ev = this;
                    inner.args.assign(c.args.begin() + 1, c.args.end());
                    keep = test(to_text(c.args[0]).bytes, x, inner).b;
                    if (!ok()) return {};
                }
                if (keep == (name == "select")) items.push_back(x);
            }
            return Value::make_list(std::move(items));
        }
        if (name == "indent") {
            if (!need(Value::Type::string, "a string")) return {};
            const Value* width = c.arg(0, "width");
            const Value* first = c.arg(1, "first");
            const Text pad = Text::markup(std::string(width && width->is(Value::Type::integer) ? size_t(std::clamp<int64_t>(width->i, 0, 256)) : 4, ' '));
            Text out;
            if (first && first->truthy()) out.append(pad);
            for (size_t k = 0; k < v.s.bytes.size(); ++k) {
                out.append(v.s.substr(k, 1));
                if (v.s.bytes[k] == '\n' && k + 1 < v.s.bytes.size() && v.s.bytes[k + 1] != '\n') out.append(pad);
            }
            return Value::string(std::move(out));
        }
        fail(c.line, "unknown filter '" + name + "'");
        return {};
    }

    Value test(const std::string& name, const Value& v, Call& c) {
        using T = Value::Type;
        auto yes = [](bool b) { return Value::boolean(b); };
        if (name == "defined") return yes(!v.is(T::undefined));
        if (name == "undefined") return yes(v.is(T::undefined));
        if (name == "none") return yes(v.is(T::none));
        if (name == "string") return yes(v.is(T::string));
        if (name == "number") return yes(v.is_number());
        if (name == "integer") return yes(v.is(T::integer));
        if (name == "float") return yes(v.is(T::number));
        if (name == "mapping") return yes(v.is(T::dict));
        if (name == "iterable") return yes(v.is(T::list) || v.is(T::dict) || v.is(T::string));
        if (name == "sequence") return yes(v.is(T::list) || v.is(T::string) || v.is(T::dict));
        if (name == "boolean") return yes(v.is(T::boolean));
        if (name == "true") return yes(v.is(T::boolean) && v.b);
        if (name == "false") return yes(v.is(T::boolean) && !v.b);
        if (name == "callable") return yes(v.is(T::function));
        if (name == "lower" || name == "upper") {
            if (!v.is(T::string)) return yes(false);
            return yes(ascii_case(v.s, name == "lower" ? 0 : 1).bytes == v.s.bytes);
        }
        if (name == "even" || name == "odd" || name == "divisibleby") {
            if (!v.is(T::integer)) return fail(c.line, "test '" + name + "' needs an integer");
            if (name == "even") return yes(v.i % 2 == 0);
            if (name == "odd") return yes(v.i % 2 != 0);
            const Value* d = c.arg(0);
            if (!d || !d->is(T::integer) || d->i == 0) return fail(c.line, "divisibleby needs a non-zero integer");
            return yes(v.i % d->i == 0);
        }
        const Value* other = c.arg(0);
        if (name == "equalto" || name == "eq" || name == "==" || name == "sameas") {
            if (!other) return fail(c.line, "test '" + name + "' needs an argument");
            return yes(equal(v, *other));
        }
        if (name == "ne" || name == "!=") return yes(!other || !equal(v, *other));
        if (name == "in") {
            if (!other || !other->is(T::list)) return fail(c.line, "test 'in' needs a list");
            return yes(std::any_of(other->list->begin(), other->list->end(), [&](const Value& x) { return equal(v, x); }));
        }
        fail(c.line, "unknown test '" + name + "'");
        return {};
    }

private:
    const std::string& origin_;
    std::vector<std::unordered_map<std::string, Value>> scopes_;
    std::vector<Text> outputs_;
    Status error_;
    int64_t iterations_ = 0;
    int call_depth_ = 0;
};

}  // namespace jinja

// ------------------------------------------------------------------ ChatTemplate

ChatTemplate::~ChatTemplate() = default;

Expected<std::shared_ptr<const ChatTemplate>> ChatTemplate::parse(std::string_view source, std::string origin) {
    auto tpl = jinja::parse(source);
    if (!tpl) return tpl.status().with_context(origin);
    std::shared_ptr<ChatTemplate> t(new ChatTemplate());
    t->parsed_ = std::make_unique<Parsed>();
    t->parsed_->tpl = std::move(*tpl);
    t->origin_ = std::move(origin);
    return std::shared_ptr<const ChatTemplate>(std::move(t));
}

std::shared_ptr<const ChatTemplate> ChatTemplate::plain() {
    static const std::shared_ptr<const ChatTemplate> t = [] {
        auto p = parse(
            "{% for message in messages %}{{ message.role | capitalize }}: {{ message.content }}\n"
            "{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}",
            "llmq's plain chat template");
        return *p;
    }();
    return t;
}

Expected<ChatPrompt> ChatTemplate::render(std::span<const ChatMessage> messages,
                                          const ChatRenderOptions& options) const {
    using jinja::Value;
    jinja::Evaluator ev(origin_);
    jinja::List list;
    for (const ChatMessage& m : messages) {
        Value d = Value::make_dict();
        d.dict->set("role", Value::data(m.role));
        d.dict->set("content", Value::data(m.content));
        list.push_back(std::move(d));
    }
    ev.define("messages", Value::make_list(std::move(list)));
    ev.define("add_generation_prompt", Value::boolean(options.add_generation_prompt));
    ev.define("bos_token", Value::markup(options.bos_token));
    ev.define("eos_token", Value::markup(options.eos_token));
    ev.define("raise_exception", Value::function([](jinja::Call& c) -> Expected<Value> {
        const std::string why = c.args.empty() ? "" : jinja::to_text(c.args[0]).bytes;
        return invalid_argument("the template refuses the conversation (raise_exception): " + why);
    }));
    ev.define("namespace", Value::function([](jinja::Call& c) -> Expected<Value> {
        Value d = Value::make_dict();
        for (const auto& [k, v] : c.kwargs) d.dict->set(k, v);
        return d;
    }));
    ev.define("strftime_now", Value::function([now = options.now](jinja::Call& c) -> Expected<Value> {
        if (c.args.size() != 1 || !c.args[0].is(Value::Type::string))
            return invalid_argument("strftime_now takes one format string");
        const std::string& format = c.args[0].s.bytes;
        if (format.size() > 256) return invalid_argument("strftime_now's format is longer than 256 bytes");
        const std::time_t t = now >= 0 ? static_cast<std::time_t>(now) : std::time(nullptr);
        std::tm local{};
        if (::localtime_r(&t, &local) == nullptr) return invalid_argument("strftime_now: the time is out of range");
        char out[1024];
        const size_t n = std::strftime(out, sizeof out, format.c_str(), &local);
        if (n == 0 && !format.empty())
            return invalid_argument("strftime_now's result for \"" + format + "\" is empty or longer than 1024 bytes");
        return Value::markup(std::string(out, n));
    }));
    ev.define("range", Value::function([](jinja::Call& c) -> Expected<Value> {
        int64_t a[3] = {0, 0, 1};
        if (c.args.empty() || c.args.size() > 3) return invalid_argument("range takes 1 to 3 integers");
        for (const Value& v : c.args)
            if (!v.is(Value::Type::integer)) return invalid_argument("range takes integers");
        if (c.args.size() == 1) a[1] = c.args[0].i;
        else {
            a[0] = c.args[0].i;
            a[1] = c.args[1].i;
            if (c.args.size() == 3) a[2] = c.args[2].i;
        }
        if (a[2] == 0) return invalid_argument("range step cannot be zero");
        jinja::List out;
        for (int64_t k = a[0]; a[2] > 0 ? k < a[1] : k > a[1]; k += a[2]) {
            if (out.size() >= size_t(jinja::max_iterations)) return invalid_argument("range is too long");
            out.push_back(Value::integer(k));
        }
        return Value::make_list(std::move(out));
    }));
    auto text = ev.render(parsed_->tpl.body);
    if (!text) return text.status();
    ChatPrompt p;
    p.text = std::move(text->bytes);
    p.from_data.assign(text->mask.begin(), text->mask.end());
    return p;
}

}  // namespace llmq
