// Per-thread size-class free lists for coroutine frames (see task.hpp for why).
// Frames are rounded up to 64 bytes; sizes above kMaxCached go to the global heap.
#include <cstdlib>
#include <new>

#include "ringrelay/io/task.hpp"

namespace rr::io {
namespace {

// 16-byte classes: a frame that lives as long as its connection should not carry
// up to 63 bytes of rounding.
constexpr std::size_t kGranule = 16;
constexpr std::size_t kMaxCached = 16 * 1024;
constexpr std::size_t kClasses = kMaxCached / kGranule;

struct FreeNode {
    FreeNode* next;
};

struct FreeLists {
    FreeNode* heads[kClasses + 1] = {};
    ~FreeLists() {
        for (FreeNode*& head : heads) {
            while (head) {
                FreeNode* next = head->next;
                ::operator delete(head);
                head = next;
            }
        }
    }
};

thread_local FreeLists tl_free;

std::size_t class_of(std::size_t size) noexcept { return (size + kGranule - 1) / kGranule; }

}  // namespace

// Under AddressSanitizer every frame goes to the real heap, so a use-after-free of
// a coroutine frame is reported instead of hidden by the cache.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kCacheFrames = false;
#else
constexpr bool kCacheFrames = true;
#endif

void* frame_alloc(std::size_t size) {
    if (!kCacheFrames || size > kMaxCached) return ::operator new(size);
    const std::size_t c = class_of(size);
    if (FreeNode* n = tl_free.heads[c]) {
        tl_free.heads[c] = n->next;
        return n;
    }
    return ::operator new(c * kGranule);
}

void frame_free(void* p, std::size_t size) noexcept {
    if (!kCacheFrames || size > kMaxCached) {
        ::operator delete(p);
        return;
    }
    auto* n = static_cast<FreeNode*>(p);
    const std::size_t c = class_of(size);
    n->next = tl_free.heads[c];
    tl_free.heads[c] = n;
}

}  // namespace rr::io
