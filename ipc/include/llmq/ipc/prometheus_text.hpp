// Prometheus text exposition (format 0.0.4) of llmqd's `metrics` control reply, for
// llmq-gateway's /metrics and llmqd's own [metrics] listen endpoint (and any other client).
//
// MetricsWriter writes families one at a time (HELP, TYPE, then samples), escaping label
// values; daemon_metrics_text() maps the `metrics` reply (documented in llmq_client.h) onto
// families named llmq_*.
//
// Pure functions, any thread.
#pragma once

#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace llmq::ipc {

using Labels = std::vector<std::pair<std::string, std::string>>;

class MetricsWriter {
public:
    // Starts a family: type is "counter", "gauge" or "histogram".
    void family(const std::string& name, const std::string& type, const std::string& help);
    void sample(const std::string& name, const Labels& labels, double value);
    // A histogram from {"buckets": [[le, cumulative]], "sum", "count"}.
    // A "# text" line (newlines become spaces).
    void comment(const std::string& text);
    void histogram(const std::string& name, const nlohmann::json& h);
    std::string text() const { return out_.str(); }

private:
    std::ostringstream out_;
};

// Every llmq_* family from the `metrics` reply.
void write_daemon_metrics(MetricsWriter& w, const nlohmann::json& metrics);

}  // namespace llmq::ipc
