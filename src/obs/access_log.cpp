#include "ringrelay/obs/access_log.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

namespace rr::obs {

// The writer's side. While records flow, the writer works in periods: drain every
// ring, write, then nap for the flush interval. Waking it per record cost more than everything else
// the log does (an eventfd write on the shard, a futex wake-up and a context switch on
// the writer's side, measured at +2.6 us per request), so producers stay silent while
// it naps, with two exceptions:
//  - `idle`: a whole period passed with nothing to take, so the writer sleeps until
//    rung. The first record after a quiet spell rings it (one syscall per burst).
//    Lost wake-ups are ruled out Dekker style, every access being sequentially
//    consistent: a producer stores its tail, then reads `idle`; the writer stores
//    idle = true, then reads every tail. One of the two sees the other.
//  - `urged`: a ring passed half full during a nap (a burst faster than a period can
//    hold); its producer rings once, so the writer drains before records are dropped.
struct WriterState {
    static constexpr std::size_t kBatchBytes = 256 * 1024;
    static constexpr std::size_t kReleaseEvery = 64;  // records formatted between head updates
    static constexpr int kStuckWriteMs = 5000;         // give up on an fd that takes nothing this long

    std::vector<AccessLogProducer*> producers;
    std::string path;
    int nap_ms = 5;  // AccessLogOptions::flush_interval_ms

    std::atomic<bool> idle{false};
    std::atomic<bool> urged{false};
    int wake_fd = -1;  // eventfd; set by start() before the writer exists, closed by ~AccessLog
    std::atomic<bool> stopping{false};
    std::atomic<bool> running{false};
    std::atomic<int> pending_fd{-1};  // a reopened file the writer has not switched to yet

    int fd = 2;  // the writer thread's, once started
    bool owns_fd = false;

    std::atomic<std::uint64_t> write_dropped{0};
    std::atomic<std::uint64_t> lines_written{0};
    std::atomic<std::uint64_t> rings{0};  // eventfd writes, by producers and control paths

    std::mutex control;  // start / stop / reopen
    std::thread thread;

    std::mutex flush_mu;
    std::condition_variable flush_cv;
    std::atomic<int> flush_waiters{0};

    // A producer saw idle: the first one to clear it rings the eventfd.
    void wake() noexcept {
        if (idle.exchange(false)) ring();
    }
    // A producer's ring is past half full: the first one to set `urged` rings.
    void urge() noexcept {
        if (!urged.load(std::memory_order_relaxed) && !urged.exchange(true)) ring();
    }
    // Control paths (stop, reopen, flush) ring whatever the writer is doing.
    void kick() noexcept {
        idle.store(false);
        ring();
    }
    void ring() noexcept {
        rings.fetch_add(1, std::memory_order_relaxed);
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof one);
    }

    void run();
    void nap() noexcept;
    void sleep_until_rung() noexcept;
    bool drain_once(std::string& buf, std::uint64_t& lines);
    bool rings_empty() const noexcept;
    void switch_file_if_reopened() noexcept;
    void write_out(std::string& buf, std::uint64_t& lines) noexcept;
    bool write_all(const std::string& buf, std::size_t& off) noexcept;
    void publish_written() noexcept;
    void close_files() noexcept;
};

namespace {

// The coarse clock (the kernel's last tick, 1-4 ms old) costs a fifth of the precise
// one here; a log timestamp needs no better. Shards wanting exact ms set ts_unix_ns.
std::int64_t coarse_realtime_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::uint64_t round_up_pow2(std::size_t n) noexcept {
    std::uint64_t p = 1;
    while (p < n) p <<= 1;
    return p;
}

}  // namespace

// ---- producer -----------------------------------------------------------------------

AccessLogProducer::AccessLogProducer(WriterState& writer, unsigned index, std::size_t capacity, Level level)
    : writer_(writer),
      index_(index),
      min_level_(level),
      mask_(round_up_pow2(std::max<std::size_t>(capacity, 2)) - 1),
      check_mask_(std::max<std::uint64_t>((mask_ + 1) / 8, 1) - 1),
      slots_(std::make_unique<AccessRecord[]>(mask_ + 1)) {
    // Touch every page now, so the shard's first thousand requests take no page faults.
    auto* bytes = reinterpret_cast<volatile unsigned char*>(slots_.get());
    const std::size_t size = (mask_ + 1) * sizeof(AccessRecord);
    for (std::size_t off = 0; off < size; off += 4096) bytes[off] = bytes[off];
}

bool AccessLogProducer::push(const AccessRecord& r) noexcept {
    if (!enabled(r.level)) return false;
    const std::uint64_t t = tail_.load(std::memory_order_relaxed);
    if (t - head_cache_ > mask_) {
        head_cache_ = head_.load(std::memory_order_acquire);
        if (t - head_cache_ > mask_) {
            dropped_.add();
            return false;
        }
    }
    AccessRecord& slot = slots_[t & mask_];
    slot = r;
    slot.shard = static_cast<std::uint16_t>(index_);
    if (slot.ts_unix_ns == 0) slot.ts_unix_ns = coarse_realtime_ns();
    tail_.store(t + 1);  // seq_cst: ordered before the idle check (see WriterState)
    if (writer_.idle.load()) writer_.wake();
    else if ((t & check_mask_) == 0) urge_if_half_full(t + 1);
    return true;
}

// Runs every check_mask_ + 1 pushes, so the writer's head line is read rarely.
void AccessLogProducer::urge_if_half_full(std::uint64_t tail) noexcept {
    head_cache_ = head_.load(std::memory_order_acquire);
    if (tail - head_cache_ > (mask_ + 1) / 2) writer_.urge();
}

// ---- writer thread ------------------------------------------------------------------

bool WriterState::rings_empty() const noexcept {
    for (const AccessLogProducer* p : producers)
        if (p->tail_.load() != p->head_.load(std::memory_order_relaxed)) return false;
    return true;
}

void WriterState::switch_file_if_reopened() noexcept {
    const int next = pending_fd.exchange(-1);
    if (next < 0) return;
    if (owns_fd) ::close(fd);
    fd = next;
    owns_fd = true;
}

void WriterState::publish_written() noexcept {
    for (AccessLogProducer* p : producers) p->written_.store(p->head_.load(std::memory_order_relaxed));
    if (flush_waiters.load() > 0) {
        std::lock_guard lk(flush_mu);
        flush_cv.notify_all();
    }
}

// Writes buf from `off` on; false when the fd fails or takes nothing for kStuckWriteMs.
bool WriterState::write_all(const std::string& buf, std::size_t& off) noexcept {
    while (off < buf.size()) {
        const ssize_t n = ::write(fd, buf.data() + off, buf.size() - off);
        if (n > 0) {
            off += static_cast<std::size_t>(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {  // a non-blocking stderr pipe that is full
            pollfd pfd{fd, POLLOUT, 0};
            if (::poll(&pfd, 1, kStuckWriteMs) <= 0) return false;
        } else {
            return false;
        }
    }
    return true;
}

// One write(2) per batch (more only on a short write). Lines a failed write could not
// put out are counted as dropped, so the metric shows a full disk.
void WriterState::write_out(std::string& buf, std::uint64_t& lines) noexcept {
    if (buf.empty()) return;
    switch_file_if_reopened();
    std::size_t off = 0;
    if (!write_all(buf, off)) {
        const auto lost = static_cast<std::uint64_t>(std::count(buf.begin() + static_cast<std::ptrdiff_t>(off), buf.end(), '\n'));
        write_dropped.fetch_add(lost, std::memory_order_relaxed);
        lines -= std::min(lines, lost);
    }
    lines_written.fetch_add(lines, std::memory_order_relaxed);
    lines = 0;
    buf.clear();
    publish_written();
}

// Takes what each ring held when the pass reached it (a busy shard cannot starve the
// others), formats it and writes it. Returns whether anything was taken.
bool WriterState::drain_once(std::string& buf, std::uint64_t& lines) {
    bool any = false;
    for (AccessLogProducer* p : producers) {
        std::uint64_t h = p->head_.load(std::memory_order_relaxed);
        const std::uint64_t t = p->tail_.load(std::memory_order_acquire);
        any = any || h != t;
        while (h != t) {
            append_access_line(buf, p->slots_[h & p->mask_]);
            ++h;
            ++lines;
            if (h % kReleaseEvery == 0) p->head_.store(h, std::memory_order_release);
            if (buf.size() >= kBatchBytes) {
                p->head_.store(h, std::memory_order_release);
                write_out(buf, lines);
            }
        }
        p->head_.store(h, std::memory_order_release);
    }
    write_out(buf, lines);
    return any;
}

void WriterState::run() {
    std::string buf;
    buf.reserve(kBatchBytes + 4096);
    std::uint64_t lines = 0;
    for (;;) {
        switch_file_if_reopened();
        // Read before draining: whatever was pushed before stop() is in the rings now.
        const bool stop = stopping.load();
        urged.store(false, std::memory_order_relaxed);
        if (drain_once(buf, lines)) {
            if (!stop) nap();
            continue;
        }
        if (stop) break;
        idle.store(true);
        if (!rings_empty() || stopping.load() || pending_fd.load() >= 0) {
            idle.store(false);
            continue;
        }
        sleep_until_rung();
        idle.store(false);
    }
    switch_file_if_reopened();
    publish_written();
}

// Waits one flush interval, or less when rung (urged, flush, reopen, stop).
void WriterState::nap() noexcept {
    pollfd pfd{wake_fd, POLLIN, 0};
    if (::poll(&pfd, 1, nap_ms) > 0) {
        std::uint64_t count;
        [[maybe_unused]] auto n = ::read(wake_fd, &count, sizeof count);
    }
}

void WriterState::sleep_until_rung() noexcept {
    std::uint64_t count;
    while (::read(wake_fd, &count, sizeof count) < 0 && errno == EINTR) {
    }
}

void WriterState::close_files() noexcept {
    if (const int p = pending_fd.exchange(-1); p >= 0) ::close(p);
    if (owns_fd) ::close(fd);
    fd = 2;
    owns_fd = false;
}

// ---- AccessLog ----------------------------------------------------------------------

namespace {
int open_log_file(const std::string& path, std::string& error) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) error = "cannot open log file " + path + ": " + std::strerror(errno);
    return fd;
}
}  // namespace

AccessLog::AccessLog(unsigned producers, AccessLogOptions options) : state_(std::make_unique<WriterState>()) {
    state_->path = std::move(options.path);
    state_->nap_ms = std::max(options.flush_interval_ms, 1);
    producers_.reserve(producers);
    for (unsigned i = 0; i < producers; ++i) {
        producers_.push_back(std::make_unique<AccessLogProducer>(*state_, i, options.ring_capacity, options.level));
        state_->producers.push_back(producers_.back().get());
    }
}

AccessLog::~AccessLog() {
    stop();
    if (state_->wake_fd >= 0) ::close(state_->wake_fd);
}

bool AccessLog::start(std::string& error) {
    WriterState& s = *state_;
    std::lock_guard lk(s.control);
    if (s.running.load() || s.thread.joinable()) {
        error = "access log already started";
        return false;
    }
    if (!s.path.empty()) {
        const int fd = open_log_file(s.path, error);
        if (fd < 0) return false;
        s.fd = fd;
        s.owns_fd = true;
    }
    if (s.wake_fd < 0) s.wake_fd = ::eventfd(0, EFD_CLOEXEC);
    if (s.wake_fd < 0) {
        error = std::string("access log: eventfd: ") + std::strerror(errno);
        s.close_files();
        return false;
    }
    s.stopping.store(false);
    try {
        s.thread = std::thread([&s] { s.run(); });
    } catch (const std::system_error& e) {
        error = std::string("access log: cannot start the writer thread: ") + e.what();
        s.close_files();
        return false;
    }
    s.running.store(true);
    return true;
}

void AccessLog::stop() {
    WriterState& s = *state_;
    std::lock_guard lk(s.control);
    if (!s.thread.joinable()) return;
    s.stopping.store(true);
    s.kick();
    s.thread.join();
    s.running.store(false);
    {
        std::lock_guard flk(s.flush_mu);
        s.flush_cv.notify_all();
    }
    s.close_files();
}

bool AccessLog::reopen(std::string& error) {
    WriterState& s = *state_;
    std::lock_guard lk(s.control);
    if (s.path.empty() || !s.running.load()) return true;  // stderr, or start() opens it fresh
    const int fd = open_log_file(s.path, error);
    if (fd < 0) return false;
    if (const int unused = s.pending_fd.exchange(fd); unused >= 0) ::close(unused);
    s.kick();
    return true;
}

void AccessLog::flush() {
    WriterState& s = *state_;
    if (!s.running.load()) return;
    std::vector<std::uint64_t> targets;
    targets.reserve(producers_.size());
    for (const auto& p : producers_) targets.push_back(p->tail_.load());
    const auto done = [&] {
        if (!s.running.load()) return true;
        for (std::size_t i = 0; i < producers_.size(); ++i)
            if (producers_[i]->written_.load() < targets[i]) return false;
        return true;
    };
    std::unique_lock lk(s.flush_mu);
    s.flush_waiters.fetch_add(1);
    s.kick();
    s.flush_cv.wait(lk, done);
    s.flush_waiters.fetch_sub(1);
}

std::uint64_t AccessLog::dropped() const noexcept {
    std::uint64_t n = state_->write_dropped.load(std::memory_order_relaxed);
    for (const auto& p : producers_) n += p->dropped();
    return n;
}

std::uint64_t AccessLog::written() const noexcept { return state_->lines_written.load(std::memory_order_relaxed); }

std::uint64_t AccessLog::wakeups() const noexcept { return state_->rings.load(std::memory_order_relaxed); }

}  // namespace rr::obs
