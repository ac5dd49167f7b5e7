// BufferRing: a shard's provided-buffer ring for multishot recv. The kernel picks
// a free buffer for each receive and names it in the CQE (IORING_CQE_F_BUFFER,
// buffer id in the upper flag bits); we give it back with recycle() once nothing
// views its bytes any more.
//
// liburing 2.3 lacks io_uring_setup_buf_ring (2.4), so the ring memory is mmap'd
// and registered by hand. The buffer memory is one anonymous mapping: pages are
// only resident once a receive has used them.
//
// Owned by its Loop (one per shard), used only on that loop's thread; the ring and
// buffer mappings are unmapped by the destructor, after the io_uring has stopped
// using them. A view of data(bid) is valid until recycle(bid). setup() reports
// errors as -errno (-EINVAL for a bad count); nothing throws.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <string_view>

namespace rr::io {

class BufferRing {
public:
    static constexpr std::uint16_t kGroupId = 0;

    BufferRing() = default;
    BufferRing(const BufferRing&) = delete;
    BufferRing& operator=(const BufferRing&) = delete;
    ~BufferRing();

    // Registers count (power of two, <= 32768) buffers of size bytes with ring.
    // Returns 0 or -errno.
    int setup(io_uring* ring, unsigned count, unsigned size);

    char* data(std::uint16_t bid) const noexcept { return base_ + std::size_t(bid) * size_; }
    unsigned buffer_size() const noexcept { return size_; }
    unsigned count() const noexcept { return count_; }
    unsigned in_use() const noexcept { return in_use_; }
    // More than half the ring is in user space: sockets then stop pinning buffers a
    // reader is not waiting for (see socket.hpp, "Under pressure").
    bool under_pressure() const noexcept { return in_use_ > count_ / 2; }

    // Called when a CQE hands buffer bid to user space.
    void note_taken() noexcept { ++in_use_; }
    // Gives buffer bid back to the kernel.
    void recycle(std::uint16_t bid) noexcept;

private:
    io_uring_buf_ring* br_ = nullptr;
    char* base_ = nullptr;
    unsigned count_ = 0;
    unsigned size_ = 0;
    unsigned in_use_ = 0;
};

}  // namespace rr::io
