// ringrelay-mock: the OpenAI- and Anthropic-shaped mock upstream of REFERENCE.md section 6.
//
//   ringrelay-mock --listen HOST:PORT [--threads N] [--default NAME=VALUE]... [--name NAME]
//
// HOST is an IPv4 address or a bracketed IPv6 one; PORT 0 picks a free port. The
// first line on stdout is "listening on HOST:PORT" with the bound port (tests read
// it). Serves until SIGTERM or SIGINT, then closes everything and exits 0.
// Exit codes: 1 when it cannot listen, 2 on a usage error.
#include <arpa/inet.h>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <netinet/in.h>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <vector>

#include "behaviours.hpp"
#include "server.hpp"

namespace {

constexpr unsigned kMaxThreads = 64;  // the loop index must fit the 6 low bits of an id

struct Options {
    std::string listen = "127.0.0.1:0";
    unsigned threads = 0;  // 0: online CPUs, at most 4
    std::string name;      // in response ids; empty: "mock<port>"
};

struct ListenAddress {
    std::string host;  // as given, without brackets
    sockaddr_storage addr{};
    socklen_t length = 0;
};

[[noreturn]] void usage_error(const std::string& message) {
    std::fprintf(stderr,
                 "ringrelay-mock: %s\nusage: ringrelay-mock --listen HOST:PORT [--threads N]"
                 " [--default NAME=VALUE]... [--name NAME]\n",
                 message.c_str());
    std::exit(2);
}

Options parse_options(int argc, char** argv) {
    Options options;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        std::string value;
        const auto eq = arg.find('=');
        if (arg.starts_with("--") && eq != std::string_view::npos) {
            value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
        } else if (arg == "--listen" || arg == "--threads" || arg == "--default" || arg == "--name") {
            if (i + 1 >= argc) usage_error(std::string(arg) + " needs a value");
            value = argv[++i];
        }
        if (arg == "--listen") {
            options.listen = value;
        } else if (arg == "--threads") {
            char* end = nullptr;
            const unsigned long n = std::strtoul(value.c_str(), &end, 10);
            if (value.empty() || *end != '\0' || n < 1 || n > kMaxThreads)
                usage_error("--threads wants 1.." + std::to_string(kMaxThreads));
            options.threads = static_cast<unsigned>(n);
        } else if (arg == "--default") {
            // x-mock-NAME: VALUE for every request that does not send it (behaviours.hpp).
            const auto sep = value.find('=');
            if (sep == std::string::npos) usage_error("--default wants NAME=VALUE, e.g. behavior=hang");
            const std::string_view bad = rr::mock::set_default_behaviour(std::string_view(value).substr(0, sep),
                                                                         std::string_view(value).substr(sep + 1));
            if (!bad.empty()) usage_error("--default: " + std::string(bad));
        } else if (arg == "--name") {
            // Letters and digits only: the name sits inside ids ("resp_<name>_<n>").
            const bool ok = !value.empty() && value.size() <= 32 &&
                            value.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") ==
                                std::string::npos;
            if (!ok) usage_error("--name wants 1..32 letters or digits");
            options.name = value;
        } else if (arg == "--help" || arg == "-h") {
            usage_error("serves mock OpenAI/Anthropic answers");
        } else {
            usage_error("unknown argument " + std::string(arg));
        }
    }
    if (options.threads == 0) {
        const unsigned cpus = std::thread::hardware_concurrency();
        options.threads = cpus == 0 ? 1 : (cpus > 4 ? 4 : cpus);
    }
    return options;
}

std::optional<ListenAddress> parse_listen(std::string_view text) {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    ListenAddress out;
    std::string_view host = text.substr(0, colon);
    const std::string port_text(text.substr(colon + 1));
    char* end = nullptr;
    const unsigned long port = std::strtoul(port_text.c_str(), &end, 10);
    if (port_text.empty() || *end != '\0' || port > 65535) return std::nullopt;
    const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
    if (bracketed) host = host.substr(1, host.size() - 2);
    out.host = host;
    if (bracketed) {
        auto* a6 = reinterpret_cast<sockaddr_in6*>(&out.addr);
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(static_cast<std::uint16_t>(port));
        if (inet_pton(AF_INET6, out.host.c_str(), &a6->sin6_addr) != 1) return std::nullopt;
        out.length = sizeof(sockaddr_in6);
    } else {
        auto* a4 = reinterpret_cast<sockaddr_in*>(&out.addr);
        a4->sin_family = AF_INET;
        a4->sin_port = htons(static_cast<std::uint16_t>(port));
        if (inet_pton(AF_INET, out.host.c_str(), &a4->sin_addr) != 1) return std::nullopt;
        out.length = sizeof(sockaddr_in);
    }
    return out;
}

std::uint16_t port_of(const sockaddr_storage& addr) {
    return ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6&>(addr).sin6_port
                                            : reinterpret_cast<const sockaddr_in&>(addr).sin_port);
}

// A non-blocking SO_REUSEPORT listener; binding port 0 updates address to the port
// the kernel chose, so the next loop's listener joins the same port.
int open_listener(ListenAddress& address) {
    const int fd = socket(address.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, reinterpret_cast<const sockaddr*>(&address.addr), address.length) != 0 ||
        listen(fd, 4096) != 0) {
        const int err = errno;
        ::close(fd);
        throw std::system_error(err, std::generic_category(), "cannot listen on " + address.host);
    }
    socklen_t length = address.length;
    getsockname(fd, reinterpret_cast<sockaddr*>(&address.addr), &length);
    return fd;
}

// Thousands of connections are normal in a load test: take all the descriptors allowed.
void raise_open_files_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

int serve(const Options& options) {
    auto address = parse_listen(options.listen);
    if (!address) usage_error("--listen wants HOST:PORT, not " + options.listen);
    raise_open_files_limit();

    // Block the stop signals before any thread starts, so they all inherit the mask
    // and only sigwait() below sees them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    std::vector<int> listeners;
    listeners.reserve(options.threads);
    for (unsigned i = 0; i < options.threads; ++i) listeners.push_back(open_listener(*address));
    const int stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd < 0) throw std::system_error(errno, std::generic_category(), "eventfd");

    const std::string name = options.name.empty() ? "mock" + std::to_string(port_of(address->addr)) : options.name;
    rr::mock::MockState state(options.threads, name);
    std::vector<std::unique_ptr<rr::mock::Loop>> loops;
    loops.reserve(options.threads);
    for (unsigned i = 0; i < options.threads; ++i)
        loops.push_back(std::make_unique<rr::mock::Loop>(i, listeners[i], stop_fd, state));
    std::vector<std::thread> threads;
    threads.reserve(loops.size());
    for (auto& loop : loops) threads.emplace_back([&loop] { loop->run(); });

    const bool v6 = address->addr.ss_family == AF_INET6;
    std::printf("listening on %s%s%s:%u\n", v6 ? "[" : "", address->host.c_str(), v6 ? "]" : "",
                static_cast<unsigned>(port_of(address->addr)));
    std::fflush(stdout);

    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    const std::uint64_t one = 1;  // stays readable: every loop sees it and returns
    [[maybe_unused]] const ssize_t written = write(stop_fd, &one, sizeof one);
    for (auto& t : threads) t.join();
    loops.clear();
    for (const int fd : listeners) ::close(fd);
    ::close(stop_fd);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const Options options = parse_options(argc, argv);
    try {
        return serve(options);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ringrelay-mock: %s\n", e.what());
        return 1;
    }
}
