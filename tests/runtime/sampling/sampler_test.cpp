// Sampler properties: greedy, top-k, seeds, the drawn distribution, top-p, min-p, penalties.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "llmq/runtime/sampler.hpp"

using llmq::Sampler;
using llmq::SamplingParams;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

SamplingParams plain(float temperature, uint64_t seed = 42) {
    SamplingParams p;
    p.temperature = temperature;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = seed;
    p.seed_set = true;
    return p;
}

std::vector<float> random_logits(size_t n, uint32_t seed, float scale = 3.0f) {
    std::mt19937 generator(seed);
    std::vector<float> logits(n);
    // Only the generator's raw integers are used, so the values are the same everywhere.
    for (float& v : logits)
        v = scale * (static_cast<float>(generator() % 20001) / 10000.0f - 1.0f);
    return logits;
}

int32_t sample_copy(Sampler& sampler, const std::vector<float>& logits,
                    const std::vector<int32_t>& recent = {}) {
    std::vector<float> copy = logits;
    return sampler.sample(copy, recent);
}

// softmax(logits / temperature) over `kept` (others get 0), renormalised.
std::vector<double> expected_probs(const std::vector<float>& logits, float temperature,
                                   const std::set<int32_t>& kept) {
    std::vector<double> p(logits.size(), 0.0);
    double max = -1e300;
    for (int32_t id : kept) max = std::max(max, static_cast<double>(logits[id]));
    double total = 0.0;
    for (int32_t id : kept) total += p[id] = std::exp((logits[id] - max) / temperature);
    for (double& v : p) v /= total;
    return p;
}

// Pearson's chi-square of observed counts against expected probabilities; a token with
// probability 0 must never be drawn.
double chi_square(const std::vector<int>& counts, const std::vector<double>& probs, int draws) {
    double statistic = 0.0;
    for (size_t i = 0; i < counts.size(); ++i) {
        if (probs[i] == 0.0) {
            CHECK_MESSAGE(counts[i] == 0, "token " << i << " should never be drawn");
            continue;
        }
        const double expected = probs[i] * draws;
        statistic += (counts[i] - expected) * (counts[i] - expected) / expected;
    }
    return statistic;
}

std::vector<int> histogram(const SamplingParams& params, const std::vector<float>& logits,
                           int draws) {
    Sampler sampler(params);
    std::vector<int> counts(logits.size(), 0);
    for (int i = 0; i < draws; ++i) {
        int32_t token = sample_copy(sampler, logits);
        REQUIRE(token >= 0);
        REQUIRE(token < static_cast<int32_t>(logits.size()));
        ++counts[token];
    }
    return counts;
}

// The ids of the k largest logits (ties: lower id), by a full sort.
std::set<int32_t> top_k_ids(const std::vector<float>& logits, int32_t k) {
    std::vector<int32_t> ids(logits.size());
    std::iota(ids.begin(), ids.end(), 0);
    std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
        return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    return {ids.begin(), ids.begin() + k};
}

}  // namespace

TEST_CASE("temperature 0 is the argmax, and the lowest id wins a tie") {
    Sampler sampler(plain(0.0f));
    CHECK(sample_copy(sampler, {1.0f, 3.0f, 3.0f, 2.0f}) == 1);
    CHECK(sample_copy(sampler, {-5.0f}) == 0);
    std::vector<float> big = random_logits(32000, 1);
    const int32_t argmax =
        static_cast<int32_t>(std::max_element(big.begin(), big.end()) - big.begin());
    for (int i = 0; i < 5; ++i) CHECK(sample_copy(sampler, big) == argmax);
    CHECK(std::isnan(sampler.last_logprob()));   // logprobs were not asked for
}

TEST_CASE("top_k = 1 is greedy at any temperature") {
    std::vector<float> logits = random_logits(50000, 2, 0.5f);
    const int32_t argmax =
        static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    for (float temperature : {0.5f, 1.0f, 5.0f, 100.0f}) {
        SamplingParams p = plain(temperature);
        p.top_k = 1;
        Sampler sampler(p);
        for (int i = 0; i < 10; ++i) CHECK(sample_copy(sampler, logits) == argmax);
    }
}

TEST_CASE("the same seed gives the same tokens; another seed gives others") {
    std::vector<std::vector<float>> steps;
    for (uint32_t i = 0; i < 64; ++i) steps.push_back(random_logits(32000, 100 + i, 1.0f));
    auto run = [&](SamplingParams p) {
        Sampler sampler(p);
        std::vector<int32_t> tokens;
        for (const auto& logits : steps) tokens.push_back(sample_copy(sampler, logits, tokens));
        return tokens;
    };
    SamplingParams defaults;   // top-k 40, top-p 0.95, min-p 0.05
    defaults.seed = 1234;
    defaults.repetition_penalty = 1.1f;
    std::vector<int32_t> first = run(defaults);
    CHECK(run(defaults) == first);
    SamplingParams other = defaults;
    other.seed = 1235;
    CHECK(run(other) != first);

    // Every path: no top-k (id-order draw), large top-k (nth_element), with top-p.
    for (int32_t k : {0, 5000}) {
        SamplingParams p = plain(1.0f, 7);
        p.top_k = k;
        p.top_p = 0.9f;
        std::vector<int32_t> a = run(p);
        CHECK(run(p) == a);
        p.seed = 8;
        CHECK(run(p) != a);
    }

    // seed 0 is a seed like any other when seed_set says so.
    SamplingParams zero = plain(1.0f, 0);
    CHECK(run(zero) == run(zero));
    CHECK(Sampler(zero).seed() == 0);
    // Without a seed each sampler draws its own from the OS and reports it.
    SamplingParams unseeded;
    CHECK(Sampler(unseeded).seed() != Sampler(unseeded).seed());
    SamplingParams repeat = unseeded;
    repeat.seed = Sampler(unseeded).seed();
    CHECK(run(repeat) == run(repeat));
}

TEST_CASE("draws follow softmax(logits / temperature)") {
    const std::vector<float> logits = {2.0f, 1.0f, 0.5f, 0.0f, -1.0f, -3.0f};
    const std::set<int32_t> all = {0, 1, 2, 3, 4, 5};
    constexpr int kDraws = 200000;
    for (float temperature : {0.7f, 1.0f, 2.5f}) {
        CAPTURE(temperature);
        auto counts = histogram(plain(temperature, 99), logits, kDraws);
        // 5 degrees of freedom: P(chi2 > 25) is about 1.4e-4.
        CHECK(chi_square(counts, expected_probs(logits, temperature, all), kDraws) < 25.0);
    }
    // A sampler that ignored the temperature would fail the same check.
    auto counts = histogram(plain(1.0f, 99), logits, kDraws);
    CHECK(chi_square(counts, expected_probs(logits, 2.5f, all), kDraws) > 1000.0);
}

TEST_CASE("top-k keeps exactly the k best and renormalises over them") {
    // The heap path (k small against the vocabulary).
    std::vector<float> logits = {0.3f, 2.0f, -1.0f, 1.5f, 1.5f, 0.9f, -20.0f};
    SamplingParams p = plain(1.3f, 5);
    p.top_k = 3;   // 2.0 (id 1), 1.5 (id 3), 1.5 (id 4)
    constexpr int kDraws = 100000;
    auto counts = histogram(p, logits, kDraws);
    CHECK(chi_square(counts, expected_probs(logits, 1.3f, {1, 3, 4}), kDraws) < 20.0);

    // A tie at the boundary goes to the lower id.
    p.top_k = 2;
    counts = histogram(p, logits, 20000);
    CHECK(counts[4] == 0);
    CHECK(counts[1] + counts[3] == 20000);

    // On a large vocabulary both selection paths keep the true top k.
    std::vector<float> big = random_logits(20000, 11, 1.0f);
    for (int32_t k : {40, 1024, 1025, 5000}) {
        CAPTURE(k);
        std::set<int32_t> best = top_k_ids(big, k);
        SamplingParams q = plain(50.0f, 3);   // hot: the draws spread over every kept token
        q.top_k = k;
        Sampler sampler(q);
        std::set<int32_t> seen;
        for (int i = 0; i < 1000; ++i) {
            int32_t token = sample_copy(sampler, big);
            CHECK(best.count(token) == 1);
            seen.insert(token);
        }
        CHECK(seen.size() > std::min<size_t>(k, 1000) / 2);
    }
}

TEST_CASE("top-p keeps the smallest set that reaches p; min-p drops the unlikely") {
    // Probabilities 0.5, 0.3, 0.15, 0.05 at temperature 1.
    const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f),
                                       std::log(0.05f), -40.0f};
    constexpr int kDraws = 60000;
    for (int32_t top_k : {0, 4}) {   // id-order path and the sorted heap path
        CAPTURE(top_k);
        SamplingParams p = plain(1.0f, 17);
        p.top_k = top_k;

        p.top_p = 0.75f;   // 0.5 < 0.75 <= 0.8: tokens 0 and 1
        auto counts = histogram(p, logits, kDraws);
        CHECK(chi_square(counts, expected_probs(logits, 1.0f, {0, 1}), kDraws) < 15.0);

        p.top_p = 0.85f;   // 0.8 < 0.85 <= 0.95: tokens 0, 1, 2
        counts = histogram(p, logits, kDraws);
        CHECK(chi_square(counts, expected_probs(logits, 1.0f, {0, 1, 2}), kDraws) < 15.0);

        p.top_p = 0.0f;    // only the most likely
        counts = histogram(p, logits, 1000);
        CHECK(counts[0] == 1000);

        p.top_p = 1.0f;
        p.min_p = 0.35f;   // keep p >= 0.175: tokens 0 and 1
        counts = histogram(p, logits, kDraws);
        CHECK(chi_square(counts, expected_probs(logits, 1.0f, {0, 1}), kDraws) < 15.0);

        p.min_p = 0.2f;    // keep p >= 0.1: tokens 0, 1, 2
        counts = histogram(p, logits, kDraws);
        CHECK(chi_square(counts, expected_probs(logits, 1.0f, {0, 1, 2}), kDraws) < 15.0);

        p.min_p = 0.05f;   // both: min-p keeps 0..3, top-p 0.75 keeps 0..1
        p.top_p = 0.75f;
        counts = histogram(p, logits, kDraws);
        CHECK(chi_square(counts, expected_probs(logits, 1.0f, {0, 1}), kDraws) < 15.0);
    }
}

TEST_CASE("top-p is measured after temperature") {
    // At temperature 0.5 the probabilities are about 0.66, 0.24, 0.06, 0.04: top_p 0.85 keeps
    // tokens 0 and 1 (0.90), where at temperature 1 it would keep three.
    const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f),
                                       std::log(0.12f)};
    SamplingParams p = plain(0.5f, 23);
    p.top_p = 0.85f;
    auto counts = histogram(p, logits, 40000);
    CHECK(counts[2] == 0);
    CHECK(counts[3] == 0);
    CHECK(chi_square(counts, expected_probs(logits, 0.5f, {0, 1}), 40000) < 15.0);
}

TEST_CASE("penalties change exactly the logits of recent tokens") {
    SamplingParams p = plain(0.0f);
    p.repetition_penalty = 2.0f;
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
    p.penalty_last_n = 64;
    Sampler sampler(p);
    std::vector<float> logits = {2.0f, -2.0f, 1.0f, 0.5f};
    // 7 and -5 are not in the vocabulary and are ignored.
    const std::vector<int32_t> recent = {0, 1, 7, 1, -5};
    CHECK(sampler.sample(logits, recent) == 2);
    CHECK(logits[0] == doctest::Approx(2.0f / 2 - 0.5f - 0.25f));       // positive: divided
    CHECK(logits[1] == doctest::Approx(-2.0f * 2 - 0.5f - 2 * 0.25f));  // negative: multiplied
    CHECK(logits[2] == 1.0f);
    CHECK(logits[3] == 0.5f);

    // Only the last penalty_last_n tokens count.
    p.penalty_last_n = 2;
    Sampler window(p);
    logits = {2.0f, -2.0f, 1.0f, 0.5f};
    CHECK(window.sample(logits, std::vector<int32_t>{0, 1, 1}) == 0);
    CHECK(logits[0] == 2.0f);
    CHECK(logits[1] == doctest::Approx(-2.0f * 2 - 0.5f - 2 * 0.25f));

    // penalty_last_n = 0 turns them off; -1 reads every token given.
    p.penalty_last_n = 0;
    Sampler off(p);
    logits = {2.0f, -2.0f, 1.0f, 0.5f};
    (void)off.sample(logits, recent);
    CHECK(logits == std::vector<float>{2.0f, -2.0f, 1.0f, 0.5f});
    p.penalty_last_n = -1;
    Sampler all(p);
    logits = {2.0f, -2.0f, 1.0f, 0.5f};
    (void)all.sample(logits, std::vector<int32_t>(1000, 3));
    CHECK(logits[3] == doctest::Approx(0.5f / 2 - 0.5f - 1000 * 0.25f));

    // A strong repetition penalty moves greedy off the repeated token.
    SamplingParams q = plain(0.0f);
    q.repetition_penalty = 3.0f;
    Sampler repeat(q);
    logits = {3.0f, 2.0f};
    CHECK(repeat.sample(logits, std::vector<int32_t>{0}) == 1);
}

TEST_CASE("NaN and infinite logits are handled, never drawn wrongly") {
    for (float temperature : {0.0f, 1.0f}) {
        CAPTURE(temperature);
        Sampler sampler(plain(temperature));
        CHECK(sample_copy(sampler, {}) == -1);
        CHECK(sample_copy(sampler, {kNaN, kNaN}) == -1);
        CHECK(sample_copy(sampler, {-kInf, -kInf}) == -1);
        CHECK(sample_copy(sampler, {kNaN, 1.0f, kNaN}) == 1);
        CHECK(sample_copy(sampler, {0.0f, kInf, 5.0f, kInf}) == 1);
        for (int i = 0; i < 100; ++i) CHECK(sample_copy(sampler, {-kInf, 0.0f, kNaN, 0.0f}) % 2 == 1);
    }
}

TEST_CASE("logprobs report the penalised model distribution at temperature 1") {
    SamplingParams p = plain(0.0f);
    p.logprobs = 3;
    Sampler sampler(p);
    const std::vector<float> logits = {1.0f, 2.0f, 3.0f, 0.0f};
    CHECK(sample_copy(sampler, logits) == 2);
    double total = 0;
    for (float v : logits) total += std::exp(v);
    CHECK(sampler.last_logprob() == doctest::Approx(3.0 - std::log(total)));
    auto top = sampler.last_top_logprobs();
    REQUIRE(top.size() == 3);
    CHECK(top[0].token == 2);
    CHECK(top[1].token == 1);
    CHECK(top[2].token == 0);
    CHECK(top[1].logprob == doctest::Approx(2.0 - std::log(total)));

    // The same numbers whatever the temperature and truncation used for the draw.
    SamplingParams hot = plain(3.0f, 9);
    hot.logprobs = 1;
    hot.top_k = 2;
    Sampler drawn(hot);
    int32_t token = sample_copy(drawn, logits);
    CHECK(drawn.last_logprob() == doctest::Approx(logits[token] - std::log(total)));
    CHECK(drawn.last_top_logprobs().size() == 1);
}

TEST_CASE("out-of-range parameters are clamped, never undefined") {
    SamplingParams p;
    p.temperature = kNaN;
    p.top_p = 7.0f;
    p.min_p = -1.0f;
    p.top_k = -5;
    p.repetition_penalty = -1.0f;
    p.logprobs = 1000;
    p.seed = 3;
    Sampler sampler(p);
    CHECK(sampler.params().temperature == SamplingParams{}.temperature);
    CHECK(sampler.params().top_p == 1.0f);
    CHECK(sampler.params().min_p == 0.0f);
    CHECK(sampler.params().top_k == 0);
    CHECK(sampler.params().repetition_penalty > 0.0f);
    CHECK(sampler.params().logprobs == llmq::SamplingLimits::logprobs);
    int32_t token = sample_copy(sampler, random_logits(100, 4));
    CHECK(token >= 0);
    CHECK(token < 100);
}

TEST_CASE("a denormal or tiny temperature is greedy, not the last token") {
    // 1/1e-45 is infinite: (best - best) * inf was NaN and the draw fell through to the end.
    const std::vector<float> logits = {0.5f, 3.0f, -1.0f, 2.0f, 0.25f};
    for (float temperature : {1e-45f, std::numeric_limits<float>::denorm_min(),
                              std::numeric_limits<float>::min(), 1e-30f, 1e-6f, 9e-5f}) {
        CAPTURE(temperature);
        for (uint64_t seed = 1; seed <= 20; ++seed) {
            Sampler sampler(plain(temperature, seed));
            CHECK(sample_copy(sampler, logits) == 1);
        }
    }
    // Just above the bound it is a real (if very cold) draw, still of the best token here.
    Sampler cold(plain(llmq::SamplingLimits::greedy_temperature * 2));
    CHECK(sample_copy(cold, logits) == 1);
}

TEST_CASE("no parameter and no logit makes the sampler pick a token it must not") {
    // Hostile values everywhere: the chosen token is in range, never a NaN or -inf logit,
    // the lowest +inf when there is one; -1 only when no logit is finite or +inf.
    const float specials[] = {kNaN, kInf, -kInf, 0.0f, -0.0f, 1e-45f,
                              std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                              1e30f, -1e30f, 1.0f, 1e-4f};
    std::mt19937 rng(7);
    auto pick = [&] { return specials[rng() % std::size(specials)]; };
    for (int trial = 0; trial < 4000; ++trial) {
        SamplingParams p;
        p.temperature = pick();
        p.top_p = pick();
        p.min_p = pick();
        p.repetition_penalty = pick();
        p.presence_penalty = pick();
        p.frequency_penalty = pick();
        p.top_k = static_cast<int32_t>(rng() % 4) - 1;
        p.logprobs = static_cast<int32_t>(rng() % 3);
        p.seed = trial;
        p.seed_set = true;
        std::vector<float> logits(1 + rng() % 9);
        for (float& v : logits) v = rng() % 3 == 0 ? pick() : static_cast<float>(rng() % 100) / 10.0f;
        const std::vector<int32_t> recent = {0, 1, 1, 2};
        CAPTURE(trial);
        std::string shown = "t=" + std::to_string(p.temperature) + " top_p=" + std::to_string(p.top_p) +
                            " min_p=" + std::to_string(p.min_p) + " rep=" + std::to_string(p.repetition_penalty) +
                            " pres=" + std::to_string(p.presence_penalty) + " freq=" + std::to_string(p.frequency_penalty) +
                            " k=" + std::to_string(p.top_k) + " logits:";
        for (float v : logits) shown += " " + std::to_string(v);
        CAPTURE(shown);
        int32_t first_inf = -1;
        bool any = false;
        for (size_t i = 0; i < logits.size(); ++i) {
            if (logits[i] == kInf && first_inf < 0) first_inf = static_cast<int32_t>(i);
            any = any || (!std::isnan(logits[i]) && logits[i] != -kInf);
        }
        Sampler sampler(p);
        std::vector<float> work = logits;
        const int32_t token = sampler.sample(work, recent);
        if (!any) {
            CHECK(token == -1);
            continue;
        }
        REQUIRE(token >= 0);
        REQUIRE(token < static_cast<int32_t>(logits.size()));
        CHECK_FALSE(std::isnan(logits[token]));
        CHECK(work[token] != -kInf);
        if (first_inf >= 0 && std::isinf(work[first_inf]) && work[first_inf] > 0) CHECK(token == first_inf);
        if (p.logprobs > 0) CHECK_FALSE(std::isnan(sampler.last_logprob()));
    }
}
