#include "ringrelay/obs/access_log.hpp"

#include "ringrelay/common.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

namespace rr::obs {

// The writer's side. While lines flow, the writer works in periods: write what every
// ring holds, then nap for the flush interval. Waking it per line cost more than
// everything else the log does (an eventfd write on the shard, a futex wake-up and a
// context switch on the writer's side, measured at +2.6 us per request), so producers
// stay silent while it naps, with two exceptions:
//  - `idle`: a whole period passed with nothing to take, so the writer sleeps until
//    rung. The first line after a quiet spell rings it (one syscall per burst).
//    Lost wake-ups are ruled out Dekker style, every access being sequentially
//    consistent: a producer stores its tail, then reads `idle`; the writer stores
//    idle = true, then reads every tail. One of the two sees the other.
//  - `urged`: a ring passed half full during a nap (a burst faster than a period can
//    hold); its producer rings once, so the writer drains before lines are dropped.
struct WriterState {
    static constexpr int kStuckWriteMs = 5000;  // give up on an fd that takes nothing this long

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

    // One pass's view of a ring: bytes [from, to) go out in this write.
    struct Span {
        AccessLogProducer* producer;
        std::uint64_t from, to;
    };
    std::vector<Span> spans;  // the writer thread's, reused each pass
    std::vector<iovec> iov;

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
    bool drain_once() noexcept;
    bool rings_empty() const noexcept;
    void switch_file_if_reopened() noexcept;
    std::uint64_t write_iov() noexcept;
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

// Lines (newlines) in a byte range; memchr is the C library's vectorised scan.
std::uint64_t count_lines(const char* p, std::size_t n) noexcept {
    std::uint64_t lines = 0;
    const char* const end = p + n;
    while (const void* nl = std::memchr(p, '\n', static_cast<std::size_t>(end - p))) {
        ++lines;
        p = static_cast<const char*>(nl) + 1;
    }
    return lines;
}

}  // namespace

// ---- producer -----------------------------------------------------------------------

AccessLogProducer::AccessLogProducer(WriterState& writer, unsigned index, std::size_t ring_bytes, Level level)
    : writer_(writer),
      index_(index),
      min_level_(level),
      mask_(round_up_pow2(std::max(ring_bytes, 2 * kMaxAccessLineBytes)) - 1),
      check_mask_((mask_ + 1) / 8 - 1),
      bytes_(std::make_unique<char[]>(mask_ + 1)) {
    // Touch every page now, so the shard's first lines take no page faults.
    auto* bytes = reinterpret_cast<volatile char*>(bytes_.get());
    for (std::size_t off = 0; off <= mask_; off += 4096) bytes[off] = 0;
}

bool AccessLogProducer::push(const AccessRecord& r) noexcept {
    if (!enabled(r.level)) return false;
    char line[kMaxAccessLineBytes];
    const std::size_t n = write_access_line(line, r, index_, r.ts_unix_ns != 0 ? r.ts_unix_ns : coarse_realtime_ns());
    const std::uint64_t t = tail_.load(std::memory_order_relaxed);
    if (t + n - head_cache_ > mask_ + 1) {
        head_cache_ = head_.load(std::memory_order_acquire);
        if (t + n - head_cache_ > mask_ + 1) {
            dropped_.add();
            return false;
        }
    }
    // The line may wrap around the end of the ring: copy it in at most two pieces.
    const std::size_t at = t & mask_;
    const std::size_t first = std::min(n, mask_ + 1 - at);
    std::memcpy(bytes_.get() + at, line, first);
    std::memcpy(bytes_.get(), line + first, n - first);
    tail_.store(t + n);  // seq_cst: ordered before the idle check (see WriterState)
    if (writer_.idle.load()) writer_.wake();
    else if ((t & ~check_mask_) != ((t + n) & ~check_mask_)) urge_if_half_full(t + n);
    return true;
}

// Runs each time the tail crosses an eighth of the ring, so the writer's line is read rarely.
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

// Writes every iovec (resuming after short writes); returns the bytes written, fewer
// than asked when the fd fails or takes nothing for kStuckWriteMs.
std::uint64_t WriterState::write_iov() noexcept {
    std::uint64_t done = 0;
    iovec* v = iov.data();
    iovec* const end = v + iov.size();
    while (v != end) {
        const int count = static_cast<int>(std::min<std::ptrdiff_t>(end - v, IOV_MAX));
        const ssize_t n = ::writev(fd, v, count);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {  // a non-blocking stderr pipe that is full
            pollfd pfd{fd, POLLOUT, 0};
            if (::poll(&pfd, 1, kStuckWriteMs) <= 0) return done;
            continue;
        }
        if (n <= 0) return done;
        done += static_cast<std::uint64_t>(n);
        for (auto left = static_cast<std::size_t>(n); left > 0;) {
            const std::size_t take = std::min(left, v->iov_len);
            v->iov_base = static_cast<char*>(v->iov_base) + take;
            v->iov_len -= take;
            left -= take;
            if (v->iov_len == 0) ++v;
        }
        while (v != end && v->iov_len == 0) ++v;
    }
    return done;
}

// Hands what every ring held when the pass reached it to one writev (a busy shard cannot
// starve the others), straight from ring memory, then gives the bytes back to the
// producers. Lines a failed write could not put out are counted as dropped, so the
// metric shows a full disk. Returns whether anything was taken.
bool WriterState::drain_once() noexcept {
    spans.clear();
    iov.clear();
    for (AccessLogProducer* p : producers) {
        const std::uint64_t h = p->head_.load(std::memory_order_relaxed);
        const std::uint64_t t = p->tail_.load(std::memory_order_acquire);
        if (h == t) continue;
        spans.push_back({p, h, t});
        const std::size_t at = h & p->mask_;
        const std::size_t first = std::min<std::uint64_t>(t - h, p->mask_ + 1 - at);
        iov.push_back({p->bytes_.get() + at, first});
        if (first < t - h) iov.push_back({p->bytes_.get(), t - h - first});
    }
    if (spans.empty()) return false;
    switch_file_if_reopened();
    std::uint64_t written = write_iov();
    std::uint64_t lines = 0, lost = 0;
    for (const Span& s : spans) {
        AccessLogProducer& p = *s.producer;
        const std::uint64_t ok = std::min(written, s.to - s.from);
        written -= ok;
        for (std::uint64_t pos = s.from; pos != s.to;) {  // at most two contiguous pieces
            const std::size_t at = pos & p.mask_;
            const std::size_t len = std::min<std::uint64_t>(s.to - pos, p.mask_ + 1 - at);
            const std::size_t good = pos < s.from + ok ? std::min<std::uint64_t>(len, s.from + ok - pos) : 0;
            lines += count_lines(p.bytes_.get() + at, good);
            lost += count_lines(p.bytes_.get() + at + good, len - good);
            pos += len;
        }
        p.head_.store(s.to, std::memory_order_release);
    }
    lines_written.fetch_add(lines, std::memory_order_relaxed);
    if (lost != 0) write_dropped.fetch_add(lost, std::memory_order_relaxed);
    publish_written();
    return true;
}

void WriterState::run() {
    name_this_thread("rr-log-writer");
    spans.reserve(producers.size());
    iov.reserve(2 * producers.size());
    for (;;) {
        switch_file_if_reopened();
        // Read before draining: whatever was pushed before stop() is in the rings now.
        const bool stop = stopping.load();
        urged.store(false, std::memory_order_relaxed);
        if (drain_once()) {
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
        producers_.push_back(std::make_unique<AccessLogProducer>(*state_, i, options.ring_bytes, options.level));
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
