// llmq-gateway: OpenAI-compatible HTTP in front of one llmqd instance (see gateway_server.hpp).
#include <csignal>
#include <iostream>

#include <CLI/CLI.hpp>
#include <boost/asio/signal_set.hpp>

#include "gateway_config.hpp"
#include "gateway_server.hpp"

int main(int argc, char** argv) {
    using namespace llmq::gateway;
    std::signal(SIGPIPE, SIG_IGN);
    CLI::App app{"llmq-gateway: OpenAI-compatible HTTP (/v1/completions, /v1/chat/completions, /v1/models, "
                 "/health, /metrics) for a running llmqd.\n\nExample:\n  llmq-gateway --port 8080 &\n"
                 "  curl -s localhost:8080/v1/chat/completions -d '{\"model\": \"m\", \"messages\": "
                 "[{\"role\": \"user\", \"content\": \"Hi\"}]}'\n\nExit codes: 0 stopped by SIGINT/SIGTERM, 1 runtime "
                 "error, 2 usage error."};
    std::string config_path, listen, instance, ipc_dir, api_keys_file;
    int port = -1;
    bool print_config = false;
    app.add_option("--config", config_path, "TOML file with a [gateway] table");
    app.add_option("--listen", listen, "address to bind (default 127.0.0.1)");
    app.add_option("--port", port, "TCP port (default 8080; 0 picks a free one)")->check(CLI::Range(0, 65535));
    app.add_option("--instance", instance, "llmqd instance (default \"default\")");
    app.add_option("--ipc-dir", ipc_dir, "llmqd's socket folder (default $LLMQ_IPC_DIR or the user's)");
    app.add_option("--api-keys-file", api_keys_file, "accepted bearer tokens, one a line");
    app.add_flag("--print-config", print_config, "print every [gateway] key with its default and exit");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int rc = app.exit(e);
        return rc == 0 ? 0 : 2;
    }
    GatewayConfig config;
    if (print_config) {
        std::cout << print_gateway_config(config);
        return 0;
    }
    if (!config_path.empty()) {
        if (std::string error = load_gateway_config(config_path, &config); !error.empty()) {
            std::cerr << "llmq-gateway: " << error << "\n";
            return 2;
        }
    }
    if (!listen.empty()) config.listen = listen;
    if (port >= 0) config.port = static_cast<uint32_t>(port);
    if (!instance.empty()) config.instance = instance;
    if (!ipc_dir.empty()) config.ipc_dir = ipc_dir;
    if (!api_keys_file.empty()) config.api_keys_file = api_keys_file;
    std::set<std::string> keys;
    if (!config.api_keys_file.empty()) {
        if (std::string error = read_api_keys(config.api_keys_file, &keys); !error.empty()) {
            std::cerr << "llmq-gateway: " << error << "\n";
            return 2;
        }
    }

    boost::asio::io_context io;
    GatewayServer server(io, config, keys);
    if (std::string error = server.start(); !error.empty()) {
        std::cerr << "llmq-gateway: " << error << "\n";
        return 1;
    }
    std::cout << "llmq-gateway: listening on http://" << config.listen << ":" << server.port() << " for llmqd instance \""
              << config.instance << "\"" << (keys.empty() ? "" : " (bearer tokens required on /v1/)") << std::endl;
    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int) {
        if (!ec) io.stop();
    });
    io.run();
    std::cout << "llmq-gateway: stopped" << std::endl;
    return 0;
}
