#include "jinja_value.hpp"

#include <cmath>
#include <cstdio>

namespace llmq::jinja {

bool Value::truthy() const {
    switch (type) {
        case Type::undefined:
        case Type::none: return false;
        case Type::boolean: return b;
        case Type::integer: return i != 0;
        case Type::number: return d != 0.0;
        case Type::string: return !s.bytes.empty();
        case Type::list: return !list->empty();
        case Type::dict: return !dict->items.empty();
        case Type::function: return true;
    }
    return false;
}

const char* type_name(const Value& v) {
    switch (v.type) {
        case Value::Type::undefined: return "undefined";
        case Value::Type::none: return "none";
        case Value::Type::boolean: return "boolean";
        case Value::Type::integer: return "integer";
        case Value::Type::number: return "float";
        case Value::Type::string: return "string";
        case Value::Type::list: return "list";
        case Value::Type::dict: return "dict";
        case Value::Type::function: return "function";
    }
    return "value";
}

namespace {

// Python's repr of a float: the shortest text that reads back the same, with ".0" for
// whole numbers.
std::string float_text(double d) {
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
    char buf[40];
    for (int precision = 1; precision <= 17; ++precision) {
        std::snprintf(buf, sizeof buf, "%.*g", precision, d);
        if (std::strtod(buf, nullptr) == d) break;
    }
    std::string s = buf;
    if (s.find_first_of(".en") == std::string::npos) s += ".0";
    return s;
}

void quote_python(std::string& out, const std::string& s) {
    const char q = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
    out += q;
    for (char c : s) {
        if (c == q || c == '\\') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c == '\r') {
            out += "\\r";
        } else {
            out += c;
        }
    }
    out += q;
}

void json_string(Text& out, const Text& s) {
    const char flag = s.has_data() ? '\1' : '\0';
    std::string o = "\"";
    for (char c : s.bytes) {
        const unsigned char u = static_cast<unsigned char>(c);
        switch (c) {
            case '"': o += "\\\""; break;
            case '\\': o += "\\\\"; break;
            case '\n': o += "\\n"; break;
            case '\r': o += "\\r"; break;
            case '\t': o += "\\t"; break;
            case '\b': o += "\\b"; break;
            case '\f': o += "\\f"; break;
            default:
                if (u < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", u);
                    o += buf;
                } else {
                    o += c;
                }
        }
    }
    o += '"';
    out.bytes += o;
    out.mask.append(o.size(), flag);
}

void json_into(Text& out, const Value& v, int indent, int depth) {
    auto raw = [&](const std::string& s) { out.append(Text::markup(s)); };
    auto newline = [&](int level) {
        if (indent >= 0) raw("\n" + std::string(size_t(indent) * size_t(level), ' '));
    };
    switch (v.type) {
        case Value::Type::undefined:
        case Value::Type::none: raw("null"); return;
        case Value::Type::boolean: raw(v.b ? "true" : "false"); return;
        case Value::Type::integer: raw(std::to_string(v.i)); return;
        case Value::Type::number: raw(float_text(v.d)); return;
        case Value::Type::string: json_string(out, v.s); return;
        case Value::Type::function: raw("null"); return;
        case Value::Type::list: {
            if (v.list->empty()) return raw("[]");
            raw("[");
            for (size_t k = 0; k < v.list->size(); ++k) {
                if (k) raw(indent >= 0 ? "," : ", ");
                newline(depth + 1);
                json_into(out, (*v.list)[k], indent, depth + 1);
            }
            newline(depth);
            raw("]");
            return;
        }
        case Value::Type::dict: {
            if (v.dict->items.empty()) return raw("{}");
            raw("{");
            bool first = true;
            for (const auto& [key, item] : v.dict->items) {
                if (!first) raw(indent >= 0 ? "," : ", ");
                first = false;
                newline(depth + 1);
                json_string(out, Text::markup(key));
                raw(": ");
                json_into(out, item, indent, depth + 1);
            }
            newline(depth);
            raw("}");
            return;
        }
    }
}

}  // namespace

std::string repr(const Value& v) {
    switch (v.type) {
        case Value::Type::string: {
            std::string out;
            quote_python(out, v.s.bytes);
            return out;
        }
        case Value::Type::list: {
            std::string out = "[";
            for (size_t k = 0; k < v.list->size(); ++k) out += (k ? ", " : "") + repr((*v.list)[k]);
            return out + "]";
        }
        case Value::Type::dict: {
            std::string out = "{";
            bool first = true;
            for (const auto& [key, item] : v.dict->items) {
                if (!first) out += ", ";
                first = false;
                quote_python(out, key);
                out += ": " + repr(item);
            }
            return out + "}";
        }
        default: return to_text(v).bytes;
    }
}

Text to_text(const Value& v) {
    switch (v.type) {
        case Value::Type::undefined: return {};
        case Value::Type::none: return Text::markup("None");
        case Value::Type::boolean: return Text::markup(v.b ? "True" : "False");
        case Value::Type::integer: return Text::markup(std::to_string(v.i));
        case Value::Type::number: return Text::markup(float_text(v.d));
        case Value::Type::string: return v.s;
        case Value::Type::function: return Text::markup("<function>");
        case Value::Type::list:
        case Value::Type::dict: {
            // Printing a container: its text is data wherever any item is (conservative).
            bool data = false;
            std::function<void(const Value&)> scan = [&](const Value& x) {
                if (x.is(Value::Type::string) && x.s.has_data()) data = true;
                if (x.is(Value::Type::list))
                    for (const Value& y : *x.list) scan(y);
                if (x.is(Value::Type::dict))
                    for (const auto& kv : x.dict->items) scan(kv.second);
            };
            scan(v);
            return data ? Text::data(repr(v)) : Text::markup(repr(v));
        }
    }
    return {};
}

Text to_json(const Value& v, int indent) {
    Text out;
    json_into(out, v, indent, 0);
    return out;
}

bool equal(const Value& a, const Value& b) {
    if (a.is_number() && b.is_number()) return a.as_double() == b.as_double();
    if (a.is(Value::Type::boolean) && b.is_number()) return double(a.b) == b.as_double();
    if (b.is(Value::Type::boolean) && a.is_number()) return double(b.b) == a.as_double();
    if (a.type != b.type) return false;
    switch (a.type) {
        case Value::Type::undefined:
        case Value::Type::none: return true;
        case Value::Type::boolean: return a.b == b.b;
        case Value::Type::string: return a.s.bytes == b.s.bytes;
        case Value::Type::list:
            if (a.list->size() != b.list->size()) return false;
            for (size_t k = 0; k < a.list->size(); ++k)
                if (!equal((*a.list)[k], (*b.list)[k])) return false;
            return true;
        case Value::Type::dict:
            if (a.dict->items.size() != b.dict->items.size()) return false;
            for (const auto& [key, item] : a.dict->items) {
                const Value* other = b.dict->find(key);
                if (!other || !equal(item, *other)) return false;
            }
            return true;
        case Value::Type::function: return a.fn == b.fn;
        default: return false;
    }
}

}  // namespace llmq::jinja
