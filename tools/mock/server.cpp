#include "server.hpp"

#include <array>
#include <cerrno>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <system_error>
#include <unistd.h>

namespace rr::mock {
namespace {

// epoll data of the two fds that are not connections; connections carry
// (generation << 32 | slot), and generation 0 is never handed out.
constexpr std::uint64_t kListenerTag = 1;
constexpr std::uint64_t kStopTag = 2;
// Timer slot meaning "resume accepting" after running out of file descriptors.
constexpr std::uint32_t kAcceptPauseSlot = UINT32_MAX;
constexpr std::int64_t kAcceptPauseNs = 100'000'000;
constexpr int kAcceptBatch = 64;  // then let the ready connections have a turn

std::uint64_t tag_of(std::uint32_t slot, std::uint32_t generation) {
    return std::uint64_t{generation} << 32 | slot;
}

void watch(int epoll_fd, int fd, std::uint32_t events, std::uint64_t tag) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = tag;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0)
        throw std::system_error(errno, std::generic_category(), "epoll_ctl");
}

}  // namespace

Loop::Loop(std::size_t index, int listen_fd, int stop_fd, MockState& state)
    : ctx_(index, state), listen_fd_(listen_fd), stop_fd_(stop_fd) {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
    watch(epoll_fd_, listen_fd_, EPOLLIN, kListenerTag);
    watch(epoll_fd_, stop_fd_, EPOLLIN, kStopTag);
}

Loop::~Loop() {
    connections_.clear();  // closes every socket before the epoll fd goes
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

void Loop::run() noexcept {
    std::array<epoll_event, 256> events;
    for (;;) {
        const int timeout = ctx_.timers.wait_ms(monotonic_ns());
        const int n =
            epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), timeout);
        if (n < 0 && errno != EINTR) return;
        for (int i = 0; i < n; ++i) {
            const std::uint64_t tag = events[i].data.u64;
            if (tag == kStopTag) return;
            if (tag == kListenerTag) {
                accept_ready();
                continue;
            }
            const auto slot = static_cast<std::uint32_t>(tag);
            if (Connection* c = find(slot, static_cast<std::uint32_t>(tag >> 32))) {
                c->on_events(events[i].events);
                release_if_closed(slot);
            }
        }
        fire_timers();
    }
}

void Loop::accept_ready() noexcept {
    for (int i = 0; i < kAcceptBatch; ++i) {
        const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            adopt(fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            // The listener stays readable while the backlog waits: without a pause this
            // level-triggered fd would spin the loop until a descriptor frees up.
            set_accepting(false);
            ctx_.timers.add(TimerEntry{monotonic_ns() + kAcceptPauseNs, kAcceptPauseSlot, 0, 0});
        }
        return;  // EAGAIN: backlog empty (another loop may have taken it)
    }
}

void Loop::adopt(int fd) noexcept {
    const int one = 1;
    // Stream events are small writes that must leave at once, not wait for Nagle.
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::uint32_t slot;
    if (!free_slots_.empty()) {
        slot = free_slots_.back();
        free_slots_.pop_back();
    } else {
        slot = static_cast<std::uint32_t>(connections_.size());
        connections_.emplace_back();
        generations_.push_back(0);
    }
    std::uint32_t& generation = generations_[slot];
    if (++generation == 0) generation = 1;  // generation 0 would let a tag equal kListenerTag
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = tag_of(slot, generation);
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        ::close(fd);
        free_slots_.push_back(slot);
        return;
    }
    connections_[slot] = std::make_unique<Connection>(fd, slot, generation, ctx_);
    ctx_.stats.add(Counter::connections_accepted);
}

Connection* Loop::find(std::uint32_t slot, std::uint32_t generation) noexcept {
    if (slot >= connections_.size() || generations_[slot] != generation) return nullptr;
    return connections_[slot].get();
}

void Loop::release_if_closed(std::uint32_t slot) noexcept {
    if (!connections_[slot]->closed()) return;
    connections_[slot].reset();  // closing the fd also removes it from the epoll set
    free_slots_.push_back(slot);
    ctx_.stats.add(Counter::connections_closed);
}

void Loop::fire_timers() noexcept {
    ctx_.timers.pop_due(monotonic_ns(), [this](const TimerEntry& e) {
        if (e.slot == kAcceptPauseSlot) return set_accepting(true);
        if (Connection* c = find(e.slot, e.generation)) {
            c->on_timer(e.token);
            release_if_closed(e.slot);
        }
    });
}

void Loop::set_accepting(bool on) noexcept {
    if (accepting_ == on) return;
    accepting_ = on;
    epoll_event ev{};
    ev.events = on ? std::uint32_t{EPOLLIN} : 0U;
    ev.data.u64 = kListenerTag;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, listen_fd_, &ev);
}

}  // namespace rr::mock
