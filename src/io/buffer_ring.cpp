#include "ringrelay/io/buffer_ring.hpp"

#include <sys/mman.h>

#include <cerrno>

namespace rr::io {

int BufferRing::setup(io_uring* ring, unsigned count, unsigned size) {
    if (count == 0 || count > 32768 || (count & (count - 1)) != 0) return -EINVAL;
    const std::size_t ring_bytes = sizeof(io_uring_buf) * count;
    void* r = mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED) return -errno;
    void* b = mmap(nullptr, std::size_t(count) * size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED) {
        const int err = errno;
        munmap(r, ring_bytes);
        return -err;
    }
    br_ = static_cast<io_uring_buf_ring*>(r);
    base_ = static_cast<char*>(b);
    count_ = count;
    size_ = size;
    io_uring_buf_ring_init(br_);

    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(br_);
    reg.ring_entries = count;
    reg.bgid = kGroupId;
    if (int rc = io_uring_register_buf_ring(ring, &reg, 0); rc < 0) return rc;

    const int mask = io_uring_buf_ring_mask(count);
    for (unsigned i = 0; i < count; ++i)
        io_uring_buf_ring_add(br_, data(static_cast<std::uint16_t>(i)), size,
                              static_cast<unsigned short>(i), mask, static_cast<int>(i));
    io_uring_buf_ring_advance(br_, static_cast<int>(count));
    return 0;
}

BufferRing::~BufferRing() {
    // The owning ring has been exited (or never had the registration): unmapping is
    // all that is left.
    if (br_ == nullptr) return;
    munmap(br_, sizeof(io_uring_buf) * count_);
    munmap(base_, std::size_t(count_) * size_);
}

void BufferRing::recycle(std::uint16_t bid) noexcept {
    io_uring_buf_ring_add(br_, data(bid), size_, bid, io_uring_buf_ring_mask(count_), 0);
    io_uring_buf_ring_advance(br_, 1);
    --in_use_;
}

}  // namespace rr::io
