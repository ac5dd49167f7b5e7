#include "shard.hpp"

#include <arpa/inet.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "ringrelay/io/task.hpp"
#include "session.hpp"

namespace rr::relay {

RequestIdGenerator::RequestIdGenerator(unsigned shard) {
    if (getrandom(&seed_, sizeof seed_, 0) != sizeof seed_) seed_ = 0x9e3779b97f4a7c15ull ^ std::uint64_t(getpid());
    seed_ ^= std::uint64_t(shard) << 56;
}

void RequestIdGenerator::next(char out[32]) noexcept {
    static constexpr char hex[] = "0123456789abcdef";
    // splitmix64 of the counter keeps ids unguessable-looking and unique per shard.
    std::uint64_t z = seed_ + 0x9e3779b97f4a7c15ull * ++counter_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    const std::uint64_t parts[2] = {seed_, z};
    for (int p = 0; p < 2; ++p)
        for (int i = 0; i < 16; ++i) out[p * 16 + i] = hex[(parts[p] >> (60 - 4 * i)) & 15];
}

void PeerAddress::append_to(std::string& out) const {
    char text[INET6_ADDRSTRLEN] = "unknown";
    if (family == AF_INET || family == AF_INET6) inet_ntop(family, bytes, text, sizeof text);
    out.append(text);
}

PeerAddress PeerAddress::of_socket(int fd) noexcept {
    PeerAddress p;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return p;
    if (ss.ss_family == AF_INET) {
        p.family = AF_INET;
        std::memcpy(p.bytes, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, 4);
    } else if (ss.ss_family == AF_INET6) {
        p.family = AF_INET6;
        std::memcpy(p.bytes, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, 16);
    }
    return p;
}

Shard::Shard(unsigned index, const ServeSettings& settings, const io::LoopOptions& loop_options)
    : index_(index), settings_(settings), loop_(loop_options), pool_(loop_), ids_(index) {}

void Shard::add_relay_target(const upstream::UpstreamTarget& t) { relay_target_ = pool_.add_target(t); }

void Shard::on_accept(void* ctx, int fd) {
    auto* self = static_cast<Shard*>(ctx);
    io::spawn(run_client_session(*self, fd));
}

void Shard::run(int listen_fd) {
    listener_ = std::make_unique<io::Listener>(loop_, listen_fd, &Shard::on_accept, this);
    listener_->start();
    loop_.run();
}

}  // namespace rr::relay
