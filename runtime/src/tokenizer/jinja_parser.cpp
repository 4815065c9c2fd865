// The chat-template parser: recursive descent with Jinja's precedence, lowest first:
//   a if c else b  <  or  <  and  <  not  <  comparisons, in, not in  <  + -  <  ~  <
//   * / // %  <  **  <  unary - +  <  primary with .attr, [index], [a:b:c], (call),
//   | filter and "is" test.
// Nesting is bounded so that a hostile template cannot exhaust the stack.
#include "jinja_ast.hpp"

namespace llmq::jinja {

namespace {

constexpr int max_depth = 200;

using ExprPtr = std::unique_ptr<Expr>;

class Parser {
public:
    explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

    Expected<Template> run() {
        Template tpl;
        std::string stop;
        LLMQ_TRY(parse_body(tpl.body, {}, stop));
        if (!ok()) return error_;
        return tpl;
    }

private:
    bool ok() const { return error_.ok(); }
    const Token& peek(size_t ahead = 0) const { return t_[std::min(p_ + ahead, t_.size() - 1)]; }
    const Token& next() { return t_[p_ < t_.size() - 1 ? p_++ : p_]; }
    bool is_op(const char* op, size_t ahead = 0) const {
        return peek(ahead).kind == Token::Kind::op && peek(ahead).text == op;
    }
    bool is_name(const char* name, size_t ahead = 0) const {
        return peek(ahead).kind == Token::Kind::name && peek(ahead).text == name;
    }
    bool accept_op(const char* op) {
        if (!is_op(op)) return false;
        ++p_;
        return true;
    }
    bool accept_name(const char* name) {
        if (!is_name(name)) return false;
        ++p_;
        return true;
    }
    std::string describe(const Token& t) const {
        switch (t.kind) {
            case Token::Kind::end: return "the end of the template";
            case Token::Kind::text: return "text";
            case Token::Kind::expr_close: return "'}}'";
            case Token::Kind::stmt_close: return "'%}'";
            case Token::Kind::expr_open: return "'{{'";
            case Token::Kind::stmt_open: return "'{%'";
            case Token::Kind::string: return "a string";
            default: return "'" + t.text + "'";
        }
    }
    Status fail(const std::string& what) {
        if (error_.ok())
            error_ = invalid_argument("chat template line " + std::to_string(peek().line) + ": " + what +
                                      ", found " + describe(peek()));
        return error_;
    }
    Status expect_op(const char* op) {
        if (accept_op(op)) return Status();
        return fail(std::string("expected '") + op + "'");
    }
    Status expect_close() {
        if (peek().kind == Token::Kind::stmt_close) {
            ++p_;
            return Status();
        }
        return fail("expected '%}'");
    }
    Expected<std::string> expect_identifier() {
        if (peek().kind != Token::Kind::name) return fail("expected a name");
        return next().text;
    }

    ExprPtr node(Expr::Kind k, int line) {
        auto e = std::make_unique<Expr>();
        e->kind = k;
        e->line = line;
        return e;
    }

    // Statements until a {% name %} tag whose name is in `stops` (consumed up to the name,
    // which goes to `stop`), or the end of input when `stops` is empty.
    Status parse_body(Body& body, std::initializer_list<const char*> stops, std::string& stop) {
        if (++depth_ > max_depth) return fail("blocks nest too deeply");
        while (ok()) {
            const Token& tok = peek();
            if (tok.kind == Token::Kind::end) {
                if (stops.size() == 0) break;
                std::string names;
                for (const char* s : stops) names += std::string(names.empty() ? "" : " or ") + "{% " + s + " %}";
                return fail("expected " + names);
            }
            if (tok.kind == Token::Kind::text) {
                auto s = std::make_unique<Stmt>();
                s->kind = Stmt::Kind::text;
                s->line = tok.line;
                s->text = tok.text;
                body.push_back(std::move(s));
                ++p_;
                continue;
            }
            if (tok.kind == Token::Kind::expr_open) {
                ++p_;
                auto s = std::make_unique<Stmt>();
                s->kind = Stmt::Kind::output;
                s->line = tok.line;
                s->expr = parse_expression();
                if (!ok()) return error_;
                if (peek().kind != Token::Kind::expr_close) return fail("expected '}}'");
                ++p_;
                body.push_back(std::move(s));
                continue;
            }
            if (tok.kind != Token::Kind::stmt_open) return fail("expected text or a tag");
            if (peek(1).kind == Token::Kind::name) {
                for (const char* s : stops) {
                    if (peek(1).text == s) {
                        p_ += 2;
                        stop = s;
                        --depth_;
                        return Status();
                    }
                }
            }
            ++p_;
            LLMQ_TRY(parse_statement(body));
        }
        --depth_;
        return error_;
    }

    Status parse_statement(Body& body) {
        const int line = peek().line;
        auto s = std::make_unique<Stmt>();
        s->line = line;
        if (accept_name("if")) {
            s->kind = Stmt::Kind::if_;
            std::string stop = "elif";
            while (stop == "elif") {
                ExprPtr cond = parse_expression();
                LLMQ_TRY(expect_close());
                Body branch;
                LLMQ_TRY(parse_body(branch, {"elif", "else", "endif"}, stop));
                s->branches.emplace_back(std::move(cond), std::move(branch));
            }
            if (stop == "else") {
                LLMQ_TRY(expect_close());
                LLMQ_TRY(parse_body(s->else_body, {"endif"}, stop));
            }
            LLMQ_TRY(expect_close());
        } else if (accept_name("for")) {
            s->kind = Stmt::Kind::for_;
            do {
                auto name = expect_identifier();
                if (!name) return name.status();
                s->targets.push_back(*name);
            } while (accept_op(","));
            if (!accept_name("in")) return fail("expected 'in' in a for loop");
            s->expr = parse_or_test(false);
            if (accept_name("if")) s->filter = parse_or_test(true);
            LLMQ_TRY(expect_close());
            std::string stop;
            LLMQ_TRY(parse_body(s->body, {"else", "endfor"}, stop));
            if (stop == "else") {
                LLMQ_TRY(expect_close());
                LLMQ_TRY(parse_body(s->else_body, {"endfor"}, stop));
            }
            LLMQ_TRY(expect_close());
        } else if (accept_name("set")) {
            s->kind = Stmt::Kind::set;
            auto name = expect_identifier();
            if (!name) return name.status();
            s->targets.push_back(*name);
            if (accept_op(".")) {
                auto attr = expect_identifier();
                if (!attr) return attr.status();
                s->attr = *attr;
            } else {
                while (accept_op(",")) {
                    auto more = expect_identifier();
                    if (!more) return more.status();
                    s->targets.push_back(*more);
                }
            }
            if (accept_op("=")) {
                s->expr = parse_expression();
                LLMQ_TRY(expect_close());
            } else {
                // {% set name %}...{% endset %}
                if (!s->attr.empty() || s->targets.size() != 1) return fail("expected '='");
                LLMQ_TRY(expect_close());
                std::string stop;
                LLMQ_TRY(parse_body(s->body, {"endset"}, stop));
                LLMQ_TRY(expect_close());
            }
        } else if (accept_name("macro")) {
            s->kind = Stmt::Kind::macro;
            auto name = expect_identifier();
            if (!name) return name.status();
            s->name = *name;
            LLMQ_TRY(expect_op("("));
            while (ok() && !is_op(")")) {
                auto param = expect_identifier();
                if (!param) return param.status();
                s->params.push_back(*param);
                s->defaults.push_back(accept_op("=") ? parse_expression() : nullptr);
                if (!accept_op(",")) break;
            }
            LLMQ_TRY(expect_op(")"));
            LLMQ_TRY(expect_close());
            std::string stop;
            LLMQ_TRY(parse_body(s->body, {"endmacro"}, stop));
            LLMQ_TRY(expect_close());
        } else if (accept_name("break")) {
            s->kind = Stmt::Kind::break_;
            LLMQ_TRY(expect_close());
        } else if (accept_name("continue")) {
            s->kind = Stmt::Kind::continue_;
            LLMQ_TRY(expect_close());
        } else if (accept_name("generation") || accept_name("endgeneration")) {
            // Hugging Face's {% generation %} marks assistant text for training masks; it
            // renders nothing itself.
            LLMQ_TRY(expect_close());
            return error_;
        } else {
            return fail(peek().kind == Token::Kind::name ? "unknown tag '" + peek().text + "'" : "expected a tag name");
        }
        if (!ok()) return error_;
        body.push_back(std::move(s));
        return Status();
    }

    // ---- expressions (a failure leaves error_ set and yields nullptr)

    ExprPtr fail_expr(const std::string& what) {
        (void)fail(what);
        return nullptr;
    }
    void want_op(const char* op) { (void)expect_op(op); }

    ExprPtr parse_expression() {
        if (++depth_ > max_depth) {
            fail_expr("expression nests too deeply");
            return nullptr;
        }
        ExprPtr e = parse_or_test(true);
        --depth_;
        return e;
    }

    // with_conditional: the for-loop iterable and filter stop before "if".
    ExprPtr parse_or_test(bool with_conditional) {
        ExprPtr e = parse_or();
        while (ok() && with_conditional && is_name("if")) {
            const int line = next().line;
            auto c = node(Expr::Kind::conditional, line);
            ExprPtr cond = parse_or();
            ExprPtr other = accept_name("else") ? parse_or_test(true) : nullptr;
            c->args.push_back(std::move(cond));
            c->args.push_back(std::move(e));
            c->args.push_back(std::move(other));
            e = std::move(c);
        }
        return e;
    }

    ExprPtr binary(const std::string& op, ExprPtr l, ExprPtr r, int line) {
        auto b = node(Expr::Kind::binary, line);
        b->name = op;
        b->args.push_back(std::move(l));
        b->args.push_back(std::move(r));
        return b;
    }

    ExprPtr parse_or() {
        ExprPtr e = parse_and();
        while (ok() && is_name("or")) e = binary("or", std::move(e), (next(), parse_and()), peek().line);
        return e;
    }
    ExprPtr parse_and() {
        ExprPtr e = parse_not();
        while (ok() && is_name("and")) e = binary("and", std::move(e), (next(), parse_not()), peek().line);
        return e;
    }
    ExprPtr parse_not() {
        if (is_name("not")) {
            if (++depth_ > max_depth) {
                fail_expr("expression nests too deeply");
                return nullptr;
            }
            const int line = next().line;
            auto u = node(Expr::Kind::unary, line);
            u->name = "not";
            u->args.push_back(parse_not());
            --depth_;
            return u;
        }
        return parse_compare();
    }
    ExprPtr parse_compare() {
        ExprPtr e = parse_math1();
        while (ok()) {
            const int line = peek().line;
            std::string op;
            if (is_op("==") || is_op("!=") || is_op("<") || is_op(">") || is_op("<=") || is_op(">=")) {
                op = next().text;
            } else if (is_name("in")) {
                next();
                op = "in";
            } else if (is_name("not") && is_name("in", 1)) {
                p_ += 2;
                op = "not in";
            } else {
                break;
            }
            e = binary(op, std::move(e), parse_math1(), line);
        }
        return e;
    }
    ExprPtr parse_math1() {
        ExprPtr e = parse_concat();
        while (ok() && (is_op("+") || is_op("-"))) {
            const Token& t = next();
            e = binary(t.text, std::move(e), parse_concat(), t.line);
        }
        return e;
    }
    ExprPtr parse_concat() {
        ExprPtr e = parse_math2();
        while (ok() && is_op("~")) {
            const int line = next().line;
            e = binary("~", std::move(e), parse_math2(), line);
        }
        return e;
    }
    ExprPtr parse_math2() {
        ExprPtr e = parse_pow();
        while (ok() && (is_op("*") || is_op("/") || is_op("//") || is_op("%"))) {
            const Token& t = next();
            e = binary(t.text, std::move(e), parse_pow(), t.line);
        }
        return e;
    }
    ExprPtr parse_pow() {
        ExprPtr e = parse_unary();
        while (ok() && is_op("**")) {
            const int line = next().line;
            e = binary("**", std::move(e), parse_unary(), line);
        }
        return e;
    }
    // As Jinja: "-x | f" is f(-x); the operand of a unary minus takes no filters itself.
    ExprPtr parse_unary(bool with_filter = true) {
        ExprPtr e;
        if (is_op("-") || is_op("+")) {
            if (++depth_ > max_depth) return fail_expr("expression nests too deeply");
            const Token& t = next();
            e = node(Expr::Kind::unary, t.line);
            e->name = t.text;
            e->args.push_back(parse_unary(false));
            --depth_;
        } else {
            e = parse_postfix(parse_primary());
        }
        return with_filter ? parse_filters(std::move(e)) : std::move(e);
    }

    // Call arguments after "(": positional, then name=value.
    void parse_call_args(Expr& call) {
        while (ok() && !is_op(")")) {
            if (peek().kind == Token::Kind::name && is_op("=", 1)) {
                call.kwnames.push_back(next().text);
                next();
            } else {
                call.kwnames.emplace_back();
            }
            call.args.push_back(parse_expression());
            if (!accept_op(",")) break;
        }
        want_op(")");
    }

    ExprPtr parse_postfix(ExprPtr e) {
        while (ok()) {
            const int line = peek().line;
            if (accept_op(".")) {
                auto a = node(Expr::Kind::attribute, line);
                auto name = expect_identifier();
                if (!name) return nullptr;
                a->name = *name;
                a->args.push_back(std::move(e));
                e = std::move(a);
            } else if (accept_op("[")) {
                ExprPtr parts[3];
                bool is_slice = false;
                for (int k = 0; k < 3 && ok(); ++k) {
                    if (!is_op(":") && !is_op("]")) parts[k] = parse_expression();
                    if (k < 2 && accept_op(":")) {
                        is_slice = true;
                        continue;
                    }
                    break;
                }
                want_op("]");
                auto s = node(is_slice ? Expr::Kind::slice : Expr::Kind::subscript, line);
                s->args.push_back(std::move(e));
                if (!is_slice && !parts[0]) {
                    fail_expr("expected an index");
                    return nullptr;
                }
                s->args.push_back(std::move(parts[0]));
                if (is_slice) {
                    s->args.push_back(std::move(parts[1]));
                    s->args.push_back(std::move(parts[2]));
                }
                e = std::move(s);
            } else if (accept_op("(")) {
                auto c = node(Expr::Kind::call, line);
                c->args.push_back(std::move(e));
                c->kwnames.emplace_back();
                parse_call_args(*c);
                e = std::move(c);
            } else {
                break;
            }
        }
        return e;
    }

    ExprPtr parse_filters(ExprPtr e) {
        while (ok()) {
            const int line = peek().line;
            if (accept_op("|")) {
                auto f = node(Expr::Kind::filter, line);
                auto name = expect_identifier();
                if (!name) return nullptr;
                f->name = *name;
                f->args.push_back(std::move(e));
                f->kwnames.emplace_back();
                if (accept_op("(")) parse_call_args(*f);
                e = parse_postfix(std::move(f));
            } else if (is_name("is")) {
                next();
                auto t = node(Expr::Kind::test, line);
                t->negate = accept_name("not");
                auto name = expect_identifier();
                if (!name) return nullptr;
                t->name = *name;
                t->args.push_back(std::move(e));
                t->kwnames.emplace_back();
                if (accept_op("(")) {
                    parse_call_args(*t);
                } else if (peek().kind == Token::Kind::string || peek().kind == Token::Kind::integer ||
                           peek().kind == Token::Kind::number ||
                           (peek().kind == Token::Kind::name && !is_name("and") && !is_name("or") &&
                            !is_name("else") && !is_name("if") && !is_name("in") && !is_name("not"))) {
                    // "x is sameas none", "n is divisibleby 3": one argument without parentheses.
                    t->args.push_back(parse_primary());
                    t->kwnames.emplace_back();
                }
                e = std::move(t);
            } else {
                break;
            }
        }
        return e;
    }

    ExprPtr parse_primary() {
        if (!ok()) return nullptr;
        if (++depth_ > max_depth) {
            fail_expr("expression nests too deeply");
            return nullptr;
        }
        const Token& t = peek();
        ExprPtr e;
        switch (t.kind) {
            case Token::Kind::string: {
                e = node(Expr::Kind::literal, t.line);
                std::string s = next().text;
                while (peek().kind == Token::Kind::string) s += next().text;  // "a" "b" joins
                e->value = Value::markup(std::move(s));
                break;
            }
            case Token::Kind::integer: {
                e = node(Expr::Kind::literal, t.line);
                errno = 0;
                const long long v = std::strtoll(t.text.c_str(), nullptr, 10);
                if (errno == ERANGE) {
                    fail_expr("integer literal out of range");
                    return nullptr;
                }
                e->value = Value::integer(v);
                next();
                break;
            }
            case Token::Kind::number:
                e = node(Expr::Kind::literal, t.line);
                e->value = Value::number(std::strtod(t.text.c_str(), nullptr));
                next();
                break;
            case Token::Kind::name: {
                const std::string& n = t.text;
                e = node(Expr::Kind::literal, t.line);
                if (n == "true" || n == "True") e->value = Value::boolean(true);
                else if (n == "false" || n == "False") e->value = Value::boolean(false);
                else if (n == "none" || n == "None") e->value = Value::none();
                else {
                    e->kind = Expr::Kind::name;
                    e->name = n;
                }
                next();
                break;
            }
            case Token::Kind::op:
                if (accept_op("(")) {
                    ExprPtr first = is_op(")") ? nullptr : parse_expression();
                    if (accept_op(",") || !first) {
                        // a tuple: a list for our purposes
                        e = node(Expr::Kind::list, t.line);
                        if (first) e->args.push_back(std::move(first));
                        while (ok() && !is_op(")")) {
                            e->args.push_back(parse_expression());
                            if (!accept_op(",")) break;
                        }
                    } else {
                        e = std::move(first);
                    }
                    want_op(")");
                } else if (accept_op("[")) {
                    e = node(Expr::Kind::list, t.line);
                    while (ok() && !is_op("]")) {
                        e->args.push_back(parse_expression());
                        if (!accept_op(",")) break;
                    }
                    want_op("]");
                } else if (accept_op("{")) {
                    e = node(Expr::Kind::dict, t.line);
                    while (ok() && !is_op("}")) {
                        e->args.push_back(parse_expression());
                        want_op(":");
                        e->args.push_back(parse_expression());
                        if (!accept_op(",")) break;
                    }
                    want_op("}");
                } else {
                    fail_expr("expected a value");
                }
                break;
            default: fail_expr("expected a value");
        }
        --depth_;
        return ok() ? std::move(e) : nullptr;
    }

    std::vector<Token> t_;
    size_t p_ = 0;
    int depth_ = 0;
    Status error_;
};

}  // namespace

Expected<Template> parse(std::string_view source) {
    auto tokens = lex(source);
    if (!tokens) return tokens.status();
    return Parser(std::move(*tokens)).run();
}

}  // namespace llmq::jinja
