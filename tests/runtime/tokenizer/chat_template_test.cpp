// Chat templates rendered by llmq's Jinja interpreter against the outputs their families
// document, the whitespace rules of Hugging Face's environment, errors that name the line,
// and the tokenization rule: control tokens only from the template's markup.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <doctest/doctest.h>

#include "llmq/runtime/chat_template.hpp"
#include "vocab_fixture.hpp"

using llmq::ChatMessage;
using llmq::ChatRenderOptions;
using llmq::ChatTemplate;

namespace {

// tests/runtime/tokenizer/chat_templates/<name> as published (no final newline).
std::string template_text(const std::string& name) {
    const char* root = std::getenv("LLMQ_SOURCE_ROOT");
    REQUIRE_MESSAGE(root != nullptr, "LLMQ_SOURCE_ROOT is not set; run the test through meson");
    std::ifstream in(std::string(root) + "/tests/runtime/tokenizer/chat_templates/" + name);
    REQUIRE_MESSAGE(in.good(), "cannot open " << name);
    std::ostringstream s;
    s << in.rdbuf();
    std::string text = s.str();
    if (text.ends_with("\n")) text.pop_back();
    return text;
}

ChatRenderOptions options(std::string bos, std::string eos, bool generation_prompt = true) {
    ChatRenderOptions o;
    o.bos_token = std::move(bos);
    o.eos_token = std::move(eos);
    o.add_generation_prompt = generation_prompt;
    return o;
}

llmq::Expected<std::string> render(const std::string& source, const std::vector<ChatMessage>& messages,
                                   const ChatRenderOptions& o) {
    auto t = ChatTemplate::parse(source, "test");
    if (!t) return t.status();
    auto p = (*t)->render(messages, o);
    if (!p) return p.status();
    return p->text;
}

std::string must_render(const std::string& file, const std::vector<ChatMessage>& messages,
                        const ChatRenderOptions& o) {
    auto r = render(template_text(file), messages, o);
    REQUIRE_MESSAGE(r.ok(), file << ": " << r.status().to_string());
    return *r;
}

const std::vector<ChatMessage> with_system = {
    {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Thanks"}};
const std::vector<ChatMessage> no_system = {{"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Thanks"}};

}  // namespace

TEST_CASE("Llama 2 chat: system folded into the first turn, <s>[INST] per user turn, </s> after answers") {
    CHECK(must_render("llama2.jinja", with_system, options("<s>", "</s>")) ==
          "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Thanks [/INST]");
    CHECK(must_render("llama2.jinja", {{"user", "  Hi there \n"}}, options("<s>", "</s>")) ==
          "<s>[INST] Hi there [/INST]");
}

TEST_CASE("Llama 3 instruct: headers, trimmed content, <|eot_id|>, the assistant header last") {
    CHECK(must_render("llama3.jinja", with_system, options("<|begin_of_text|>", "<|eot_id|>")) ==
          "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
          "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
          "<|start_header_id|>user<|end_header_id|>\n\nThanks<|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\n");
    CHECK(must_render("llama3.jinja", {{"user", " Hi "}}, options("<|begin_of_text|>", "<|eot_id|>", false)) ==
          "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
}

TEST_CASE("Llama 3.1 instruct: the dated system header, with and without a system message") {
    const auto o = options("<|begin_of_text|>", "<|eot_id|>");
    CHECK(must_render("llama3.1.jinja", {{"system", "Be brief."}, {"user", "Hi"}}, o) ==
          "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
          "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
          "Be brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\n");
    CHECK(must_render("llama3.1.jinja", {{"user", "Hi"}}, o) ==
          "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
          "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
          "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\n");
    // A tool result: the template sends "tool" turns as ipython, JSON-quoted.
    CHECK(must_render("llama3.1.jinja", {{"user", "Hi"}, {"tool", "42"}}, options("<|begin_of_text|>", "", false))
              .ends_with("<|start_header_id|>ipython<|end_header_id|>\n\n\"42\"<|eot_id|>"));
}

TEST_CASE("Mistral v0.1: [INST] turns, answers end with </s>, a system message is refused") {
    CHECK(must_render("mistral-v0.1.jinja", no_system, options("<s>", "</s>")) ==
          "<s>[INST] Hi [/INST]Hello!</s>[INST] Thanks [/INST]");
    auto r = render(template_text("mistral-v0.1.jinja"), with_system, options("<s>", "</s>"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("Conversation roles must alternate user/assistant/user/assistant/...") !=
          std::string::npos);
    CHECK(r.status().message().find("line 1") != std::string::npos);
}

TEST_CASE("Mistral v0.3: the system message joins the last user turn (namespace, selectattr, loop.last)") {
    CHECK(must_render("mistral-v0.3.jinja", with_system, options("<s>", "</s>")) ==
          "<s>[INST] Hi[/INST] Hello!</s>[INST] Be brief.\n\nThanks[/INST]");
    auto r = render(template_text("mistral-v0.3.jinja"), {{"user", "a"}, {"user", "b"}}, options("<s>", "</s>"));
    REQUIRE_FALSE(r.ok());
    CHECK_MESSAGE(r.status().message().find("chat template line 18") != std::string::npos, r.status().message());
    CHECK(r.status().message().find("conversation roles must alternate") != std::string::npos);
}

TEST_CASE("Qwen2.5: the default system prompt, ChatML turns, the assistant header") {
    CHECK(must_render("qwen2.5.jinja", {{"user", "Hi"}}, options("", "<|im_end|>")) ==
          "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
          "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    CHECK(must_render("qwen2.5.jinja", with_system, options("", "<|im_end|>")) ==
          "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
          "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nThanks<|im_end|>\n"
          "<|im_start|>assistant\n");
}

TEST_CASE("ChatML, Gemma and Phi-3") {
    CHECK(must_render("chatml.jinja", {{"system", "S"}, {"user", "Hi"}}, options("", "")) ==
          "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    CHECK(must_render("gemma.jinja", no_system, options("<bos>", "<eos>")) ==
          "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
          "<start_of_turn>user\nThanks<end_of_turn>\n<start_of_turn>model\n");
    auto r = render(template_text("gemma.jinja"), with_system, options("<bos>", "<eos>"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("System role not supported") != std::string::npos);
    CHECK(must_render("phi3.jinja", with_system, options("<s>", "<|endoftext|>")) ==
          "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n"
          "<|user|>\nThanks<|end|>\n<|assistant|>\n");
    CHECK(must_render("phi3.jinja", {{"user", "Hi"}}, options("<s>", "<|endoftext|>", false)) ==
          "<|user|>\nHi<|end|>\n<|endoftext|>");
}

TEST_CASE("trim_blocks, lstrip_blocks and the - and + whitespace controls") {
    const std::vector<ChatMessage> m = {{"user", "Hi"}, {"assistant", "Yo"}};
    const auto o = options("", "");
    // Block tags on their own lines vanish with their indentation and newline; {{ }} keeps both.
    CHECK(*render("{% for m in messages %}\n  {% if m.role == 'user' %}\nU: {{ m.content }}\n  {% endif %}\n{% endfor %}\n",
                  m, o) == "U: Hi\n");
    CHECK(*render("a  {%- if true -%}  b  {%- endif %}\nc", m, o) == "abc");
    CHECK(*render("a\n  {%+ if true %}b{% endif %}", m, o) == "a\n  b");
    CHECK(*render("x {# note #}\ny {{- ' z' }}", m, o) == "x y z");
    CHECK(*render("  {{ 'a' }}\n", m, o) == "  a\n");
}

TEST_CASE("expressions: filters, methods, tests, slicing, set, namespace, loops") {
    const std::vector<ChatMessage> m = {{"user", " Hello World "}, {"assistant", "b"}, {"user", "c"}};
    const auto o = options("<s>", "</s>");
    auto r = [&](const std::string& src) {
        auto out = render(src, m, o);
        REQUIRE_MESSAGE(out.ok(), src << ": " << out.status().to_string());
        return *out;
    };
    CHECK(r("{{ messages | length }} {{ messages[0].content | trim | upper }} {{ 'AbC' | lower }}") == "3 HELLO WORLD abc");
    CHECK(r("{{ messages[0]['content'].strip().split(' ') | join('+') }}") == "Hello+World");
    CHECK(r("{{ 'a,b,,c'.split(',') }}") == "['a', 'b', '', 'c']");
    CHECK(r("{{ messages[0].content.strip().startswith('Hell') }} {{ 'x.txt'.endswith(('.md', '.txt')) }}") == "True True");
    CHECK(r("{{ 'aXbX'.replace('X', '-') }} {{ 'abcdef'[1:4] }} {{ 'abc'[::-1] }} {{ [1, 2, 3][-1] }}") == "a-b- bcd cba 3");
    CHECK(r("{% for x in messages[1:] %}{{ loop.index }}{{ x.role[0] }}{% if not loop.last %},{% endif %}{% endfor %}") == "1a,2u");
    CHECK(r("{% for x in [] %}a{% else %}empty{% endfor %}") == "empty");
    CHECK(r("{% for x in messages if x.role == 'user' %}{{ loop.length }}{% endfor %}") == "22");
    CHECK(r("{% set ns = namespace(n=0) %}{% for x in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}") == "3");
    CHECK(r("{% set n = 5 %}{% for x in messages %}{% set n = 7 %}{% endfor %}{{ n }}") == "5");
    CHECK(r("{{ undefined_thing is defined }} {{ tools is not defined }} {{ none is none }} {{ 3 is odd }}") == "False True True True");
    CHECK(r("{{ 'ell' in messages[0].content }} {{ 'z' not in 'abc' }} {{ 'role' in messages[0] }}") == "True True True");
    CHECK(r("{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ 7 % 3 }} {{ 1 ~ 'a' ~ none }} {{ 2 ** 3 }} {{ -3 | abs }}") == "7 3 1 1aNone 8 3");
    CHECK(r("{{ x | default('dflt') }} {{ '' | default('e', true) }} {{ 'v' if false else 'w' }}") == "dflt e w");
    CHECK(r("{{ {'a': [1, 2.5, true, none], 'b': 'q\"'} | tojson }}") == "{\"a\": [1, 2.5, true, null], \"b\": \"q\\\"\"}");
    CHECK(r("{{ {'a': 1} | tojson(indent=2) }}") == "{\n  \"a\": 1\n}");
    CHECK(r("{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | list | length }}") == "2");
    CHECK(r("{% macro turn(who, text='?') %}[{{ who }}:{{ text }}]{% endmacro %}{{ turn('u') }}{{ turn('a', text='x') }}") == "[u:?][a:x]");
    CHECK(r("{% for i in range(3) %}{{ i }}{% if i == 1 %}{% break %}{% endif %}{% endfor %}") == "01");
    CHECK(r("{% set s %}in{{ 1 }}{% endset %}{{ s }}") == "in1");
    CHECK(r("{{ 'hello world'.title() }} {{ 'hello'.capitalize() }} {{ [3, 1, 3] | unique | list }}") == "Hello World Hello [3, 1]");
    CHECK(r("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}") == "a=1;b=2;");
    CHECK(r("{{ bos_token }}{{ eos_token }}{{ add_generation_prompt }}") == "<s></s>True");
}

TEST_CASE("strftime_now formats the render's moment as Llama 3.2's date line asks") {
    // Llama 3.2's published template computes its "Today Date" line this way.
    const std::string source =
        "{%- if not date_string is defined %}\n"
        "    {%- if strftime_now is defined %}\n"
        "        {%- set date_string = strftime_now(\"%d %b %Y\") %}\n"
        "    {%- else %}\n"
        "        {%- set date_string = \"26 Jul 2024\" %}\n"
        "    {%- endif %}\n"
        "{%- endif %}\n"
        "{{- \"Today Date: \" + date_string }}";
    auto o = options("", "");
    o.now = 1733140800;  // 2024-12-02 12:00 UTC: the same date in every time zone within 11 hours
    auto r = render(source, {{"user", "Hi"}}, o);
    REQUIRE_MESSAGE(r.ok(), r.status().to_string());
    CHECK(*r == "Today Date: 02 Dec 2024");
    o.now = -1;  // the current time: a date of that shape, not the template's fallback
    r = render(source, {{"user", "Hi"}}, o);
    REQUIRE(r.ok());
    CHECK(r->size() == std::string("Today Date: 02 Dec 2024").size());
    CHECK(r->find("26 Jul 2024") == std::string::npos);
    for (const char* bad : {"{{ strftime_now() }}", "{{ strftime_now(3) }}"}) {
        auto e = render(bad, {{"user", "Hi"}}, o);
        REQUIRE_FALSE(e.ok());
        CHECK(e.status().message().find("strftime_now takes one format string") != std::string::npos);
    }
}

TEST_CASE("errors name the template line and what is wrong") {
    const std::vector<ChatMessage> m = {{"user", "Hi"}};
    const auto o = options("", "");
    struct Case {
        const char* source;
        const char* line;
        const char* what;
    };
    const Case cases[] = {
        {"a\n{{ messages[0].content }\nb", "line 2", "never closed"},
        {"{% if true %}\nx", "line 2", "{% endif %}"},
        {"ok\n\n{{ messages | frobnicate }}", "line 3", "unknown filter 'frobnicate'"},
        {"{% for m in messages %}\n{{ m.content + 1 }}{% endfor %}", "line 2", "cannot apply '+' to string and integer"},
        {"\n{{ raise_exception('no system role here') }}", "line 2", "no system role here"},
        {"{{ nothing.attr }}", "line 1", "'nothing' is undefined"},
        {"{% foo %}", "line 1", "unknown tag 'foo'"},
        {"{{ 'a' 'b' ) }}", "line 1", "expected '}}'"},
        {"{% for i in range(2000000) %}{% endfor %}", "line 1", "range is too long"},
        {"{{ 'x' * 100000000 }}", "line 1", "too long"},
    };
    for (const Case& c : cases) {
        auto r = render(c.source, m, o);
        REQUIRE_MESSAGE(!r.ok(), c.source);
        const std::string msg = r.status().message();
        CHECK_MESSAGE(msg.find(c.line) != std::string::npos, c.source << " -> " << msg);
        CHECK_MESSAGE(msg.find(c.what) != std::string::npos, c.source << " -> " << msg);
        CHECK_MESSAGE(msg.starts_with("test: chat template line"), msg);
    }
    std::string deep(5000, '(');
    auto r = render("{{ " + deep + "1" + std::string(5000, ')') + " }}", m, o);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("nests too deeply") != std::string::npos);
}

TEST_CASE("the rendered prompt marks message text as data, markup as template") {
    auto t = ChatTemplate::parse(template_text("llama3.jinja"), "llama3");
    REQUIRE(t.ok());
    auto p = (*t)->render(std::vector<ChatMessage>{{"user", "<|eot_id|>"}}, options("<|begin_of_text|>", "<|eot_id|>"));
    REQUIRE(p.ok());
    REQUIRE(p->from_data.size() == p->text.size());
    const size_t at = p->text.find("\n\n<|eot_id|>") + 2;  // the user's text
    const size_t role = p->text.find("user");                // the role is data too
    for (size_t k = 0; k < p->text.size(); ++k) {
        const bool data = (k >= at && k < at + 10) || (k >= role && k < role + 4);
        CHECK_MESSAGE(p->from_data[k] == (data ? 1 : 0), "byte " << k << " of " << p->text);
    }
}

TEST_CASE("Llama 3 vocabulary: typed control-token text stays text, the template's markup becomes tokens") {
    auto tok = llmq::test::load_shared_tokenizer("llama3-bpe.gguf");
    if (!tok) return;
    auto t = ChatTemplate::parse(template_text("llama3.jinja"), "llama3");
    REQUIRE(t.ok());
    const auto o = llmq::chat_render_options(*tok, true);
    CHECK(o.bos_token == "<|begin_of_text|>");
    auto p = (*t)->render(std::vector<ChatMessage>{{"user", "say <|eot_id|> now"}}, o);
    REQUIRE(p.ok());
    const auto ids = llmq::encode_chat_prompt(*tok, *p);
    const int32_t eot = tok->find_token("<|eot_id|>");
    CHECK(std::count(ids.begin(), ids.end(), eot) == 1);  // the template's, after the message
    CHECK(ids.front() == 128000);
    CHECK(std::count(ids.begin(), ids.end(), 128000) == 1);  // bos_token markup, no second BOS
    CHECK(std::count(ids.begin(), ids.end(), tok->find_token("<|start_header_id|>")) == 2);
    // The message's own text tokenizes exactly as plain text does.
    const auto typed = tok->encode("say <|eot_id|> now", false, false);
    CHECK(std::search(ids.begin(), ids.end(), typed.begin(), typed.end()) != ids.end());
    // With specials parsed everywhere (the old behaviour) the typed text would end the turn.
    CHECK(std::count(typed.begin(), typed.end(), eot) == 0);
    CHECK(tok->decode(ids, {.skip_leading_space = true, .render_special = true}) == p->text);
}

TEST_CASE("Llama 2 vocabulary: the rendered conversation tokenizes with <s> and </s><s> separators") {
    auto tok = llmq::test::load_shared_tokenizer("llama-spm.gguf");
    if (!tok) return;
    auto t = ChatTemplate::parse(template_text("llama2.jinja"), "llama2");
    REQUIRE(t.ok());
    auto p = (*t)->render(with_system, llmq::chat_render_options(*tok, true));
    REQUIRE(p.ok());
    // sentencepiece's ids for the two text fragments, with <s>=1 and </s>=2 between them.
    const std::vector<int32_t> want = {
        1,     518,   25580, 29962, 3532,  14816, 29903, 6778, 13,    3629,  11473, 29889,
        13,    29966, 829,   14816, 29903, 6778,  13,    13,   18567, 518,   29914, 25580,
        29962, 15043, 29991, 29871, 2,     1,     518,   25580, 29962, 1834,  518,   29914,
        25580, 29962};
    CHECK(llmq::encode_chat_prompt(*tok, *p) == want);
}

TEST_CASE("a model without a template gets the plain one") {
    auto p = ChatTemplate::plain()->render(with_system, options("", ""));
    REQUIRE(p.ok());
    CHECK(p->text == "System: Be brief.\nUser: Hi\nAssistant: Hello!\nUser: Thanks\nAssistant:");
}

TEST_CASE("an image part renders as a mark between its text, and typed marker text stays text") {
    auto tok = llmq::test::load_shared_tokenizer("llama-spm.gguf");
    if (!tok) return;
    auto t = ChatTemplate::parse(template_text("llama2.jinja"), "llama2");
    REQUIRE(t.ok());
    const std::string content = "Look at " + std::string(llmq::chat_image_marker) + " and <image> too";
    auto p = (*t)->render(std::vector<ChatMessage>{{"user", content}}, llmq::chat_render_options(*tok, true));
    REQUIRE(p.ok());
    size_t images = 0;
    const auto ids = llmq::encode_chat_prompt(*tok, *p, -1, &images);
    CHECK(images == 1);
    REQUIRE(std::count(ids.begin(), ids.end(), -1) == 1);
    // Either side of the mark: the prompt's text tokenized on its own, markup and all.
    const size_t at = p->text.find(llmq::chat_image_marker);
    const size_t end = at + llmq::chat_image_marker.size();
    llmq::ChatPrompt before{p->text.substr(0, at), std::vector<uint8_t>(p->from_data.begin(), p->from_data.begin() + static_cast<std::ptrdiff_t>(at))};
    std::vector<int32_t> want = llmq::encode_chat_prompt(*tok, before);
    want.push_back(-1);
    const std::vector<uint8_t> after_marks(p->from_data.begin() + static_cast<std::ptrdiff_t>(end), p->from_data.end());
    const auto after = tok->encode_marked(std::string_view(p->text).substr(end), after_marks);
    want.insert(want.end(), after.begin(), after.end());
    CHECK(ids == want);
    // Without image parts the marker-aware encoding is the plain one.
    auto plain = (*t)->render(std::vector<ChatMessage>{{"user", "Look at <image> too"}}, llmq::chat_render_options(*tok, true));
    REQUIRE(plain.ok());
    CHECK(llmq::encode_chat_prompt(*tok, *plain, -1, &images) == llmq::encode_chat_prompt(*tok, *plain));
    CHECK(images == 0);
}
