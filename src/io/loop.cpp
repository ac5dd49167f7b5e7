#include "ringrelay/io/loop.hpp"

#include <algorithm>

#include "ringrelay/io/socket.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace rr::io {

thread_local Loop* Loop::tl_current_ = nullptr;

namespace {

// Tries the ring setups from best to plainest: DEFER_TASKRUN needs 6.1 and
// SINGLE_ISSUER 6.0; COOP_TASKRUN (5.19) is the next best thing without them.
int init_ring(io_uring& ring, const LoopOptions& o, std::string& desc) {
    struct Attempt {
        unsigned flags;
        const char* name;
    };
    const Attempt attempts[] = {
        {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "single_issuer+defer_taskrun"},
        {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN, "single_issuer+coop_taskrun"},
        {IORING_SETUP_COOP_TASKRUN, "coop_taskrun"},
        {0, "plain"},
    };
    int rc = -EINVAL;
    for (const Attempt& a : attempts) {
        io_uring_params p{};
        p.flags = a.flags | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
        p.cq_entries = o.cq_entries;
        rc = io_uring_queue_init_params(o.sq_entries, &ring, &p);
        if (rc == 0) {
            desc = a.name;
            if (!(p.features & IORING_FEAT_NODROP)) desc += " (no NODROP: CQ overflow loses CQEs)";
            if (!(p.features & IORING_FEAT_EXT_ARG)) desc += " (no EXT_ARG)";
            return 0;
        }
    }
    return rc;
}

std::uint64_t monotonic_ms() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::uint64_t(ts.tv_sec) * 1000 + std::uint64_t(ts.tv_nsec) / 1000000;
}

}  // namespace

Loop::Loop(const LoopOptions& opts) {
    if (int rc = init_ring(ring_, opts, setup_desc_); rc < 0)
        throw std::system_error(-rc, std::generic_category(), "io_uring_queue_init");
    if (int rc = buffers_.setup(&ring_, opts.buffer_count, opts.buffer_size); rc < 0) {
        io_uring_queue_exit(&ring_);
        throw std::system_error(-rc, std::generic_category(), "io_uring_register_buf_ring");
    }
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    tl_current_ = this;
    update_clock();
    arm_wakeup();
}

Loop::~Loop() {
    if (wake_fd_ >= 0) close(wake_fd_);
    if (tl_current_ == this) tl_current_ = nullptr;
    // Exiting the ring drops the buffer registration; buffers_ unmaps afterwards.
    io_uring_queue_exit(&ring_);
}

io_uring_sqe* Loop::sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    while (s == nullptr) {
        io_uring_submit(&ring_);
        s = io_uring_get_sqe(&ring_);
    }
    return s;
}

void Loop::cancel(Completion* c) {
    io_uring_sqe* s = sqe();
    io_uring_prep_cancel64(s, reinterpret_cast<std::uint64_t>(c), 0);
    io_uring_sqe_set_data64(s, 0);
}

void Loop::stop() noexcept {
    stop_.store(true, std::memory_order_relaxed);
    // Wake the loop without queuing anything: only the eventfd write matters.
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = write(wake_fd_, &one, sizeof one);
}

// The wake-up protocol: the poster whose push finds the inbox empty rings the
// eventfd; run_posted() takes the whole inbox in one exchange. Every non-empty inbox
// therefore has exactly one ring owed by the push that made it non-empty, written
// after that push; the loop reaps the ring (or is already awake) and run_posted()
// in the same iteration sees the inbox the ring was for, or an emptier one because an
// earlier drain took it (then the ring is a spare wake-up, harmless). Posts onto a
// non-empty inbox need no ring: the ring for that inbox is owed already. There is no
// flag to get stuck (see docs/ARCHITECTURE.md "The event loop").
void Loop::post(Posted* p) noexcept {
    Posted* head = inbox_.load(std::memory_order_relaxed);
    do {
        p->next = head;
    } while (!inbox_.compare_exchange_weak(head, p, std::memory_order_release,
                                           std::memory_order_relaxed));
    if (head == nullptr) {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = write(wake_fd_, &one, sizeof one);
    }
}

void Loop::arm_wakeup() {
    io_uring_sqe* s = sqe();
    io_uring_prep_poll_multishot(s, wake_fd_, POLLIN);
    io_uring_sqe_set_data(s, &wake_completion_);
}

void Loop::on_wakeup(Completion* c, int, std::uint32_t flags) {
    Loop* self = static_cast<WakeCompletion*>(c)->loop;
    std::uint64_t value;
    [[maybe_unused]] auto n = read(self->wake_fd_, &value, sizeof value);
    if (!(flags & IORING_CQE_F_MORE)) self->arm_wakeup();
}

void Loop::run_posted() {
    if (inbox_.load(std::memory_order_relaxed) == nullptr) return;
    Posted* list = inbox_.exchange(nullptr, std::memory_order_acquire);
    Posted* fifo = nullptr;
    while (list) {  // the stack is newest first: reverse it
        Posted* next = list->next;
        list->next = fifo;
        fifo = list;
        list = next;
    }
    while (fifo) {
        Posted* next = fifo->next;
        ++stats_.posted;
        fifo->run(fifo);
        fifo = next;
    }
}

void Loop::run_deferred() {
    while (!deferred_.empty()) {
        std::vector<std::coroutine_handle<>> batch;
        batch.swap(deferred_);
        for (std::coroutine_handle<> h : batch) h.resume();
    }
}

void Loop::update_clock() noexcept { now_ms_ = monotonic_ms(); }

void Loop::reap() {
    // Copy a batch out and advance the CQ before dispatching, so handlers that submit
    // (and with it flush task work) never see a CQ full of entries we still hold.
    constexpr unsigned kBatch = 64;
    io_uring_cqe* cqes[kBatch];
    for (;;) {
        const unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, kBatch);
        if (n == 0) break;
        struct Entry {
            std::uint64_t user_data;
            int res;
            std::uint32_t flags;
        } batch[kBatch];
        for (unsigned i = 0; i < n; ++i) batch[i] = {cqes[i]->user_data, cqes[i]->res, cqes[i]->flags};
        io_uring_cq_advance(&ring_, n);
        stats_.cqes += n;
        for (unsigned i = 0; i < n; ++i) {
            if (batch[i].user_data == 0) continue;
            auto* c = reinterpret_cast<Completion*>(batch[i].user_data);
            c->on_cqe(c, batch[i].res, batch[i].flags);
        }
        if (n < kBatch) break;
    }
}

void Loop::iterate() {
    ++stats_.iterations;
    const std::uint64_t next = timers_.next_deadline();
    int rc;
    if (inbox_.load(std::memory_order_relaxed) != nullptr || !deferred_.empty()) {
        rc = io_uring_submit(&ring_);  // work is waiting: do not sleep
        io_uring_get_events(&ring_);
    } else if (next == UINT64_MAX) {
        rc = io_uring_submit_and_wait(&ring_, 1);
    } else {
        const std::uint64_t wait_ms = next > now_ms_ ? next - now_ms_ : 0;
        __kernel_timespec ts{static_cast<long long>(wait_ms / 1000),
                             static_cast<long long>((wait_ms % 1000) * 1000000)};
        io_uring_cqe* cqe = nullptr;
        rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    }
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN)
        throw std::system_error(-rc, std::generic_category(), "io_uring_submit_and_wait");
    if (io_uring_cq_has_overflow(&ring_)) {
        ++stats_.cq_overflows;
        io_uring_get_events(&ring_);
    }
    update_clock();
    reap();
    timers_.run_expired(now_ms_);
    run_posted();
    run_deferred();
}

void Loop::run() {
    while (!stopping()) iterate();
}

void Loop::drain_sockets(std::uint64_t timeout_ms) {
    struct Tick : Timer {
        Tick() : Timer([](Timer*) {}) {}
    } tick;  // bounds each wait, so the deadline is seen
    const std::uint64_t deadline = now_ms_ + timeout_ms;
    while (live_sockets_ > 0 && now_ms_ < deadline) {
        timers_.arm(tick, std::min(deadline, now_ms_ + 10));
        iterate();
    }
    timers_.cancel(tick);
}

}  // namespace rr::io

namespace rr::io {

void Loop::unpark_starved(Socket* s) noexcept {
    starved_.erase(std::remove(starved_.begin(), starved_.end(), s), starved_.end());
}

void Loop::retry_starved() {
    // Re-arm a few at a time: each recycled buffer can feed only so many receives.
    const std::size_t n = std::min<std::size_t>(starved_.size(), 4);
    for (std::size_t i = 0; i < n; ++i) {
        Socket* s = starved_.back();
        starved_.pop_back();
        s->retry_after_enobufs();
    }
}

}  // namespace rr::io
