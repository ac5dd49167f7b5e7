// Task<T>: the lazy coroutine type every request path is written in, and spawn()
// to start a detached one. A Task starts when awaited and resumes its awaiter by
// symmetric transfer when it finishes, so deep call chains do not grow the stack.
//
// Frames come from a per-thread size-class free list (frame_alloc): a shard serves
// thousands of requests a second and each one is a handful of coroutine frames, so
// malloc/free per frame would be the largest cost on the path. Frames must be freed
// on the thread that allocated them (true by construction: a request never moves
// between shards).
//
// Exceptions are not used on the request path: an exception escaping a coroutine
// terminates the process.
//
// Ownership: a Task owns its frame and destroys it with itself (a Task never awaited
// never runs); a spawned task, or a Detached root, owns its own frame and frees it when
// it finishes. References a coroutine takes as parameters are borrowed: what they name
// must outlive the task's run, which the awaiting caller guarantees by awaiting it.
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <utility>

namespace rr::io {

void* frame_alloc(std::size_t size);
void frame_free(void* p, std::size_t size) noexcept;

template <class T = void>
class Task;

namespace detail {

struct PromiseBase {
    std::coroutine_handle<> continuation = std::noop_coroutine();

    static void* operator new(std::size_t n) { return frame_alloc(n); }
    static void operator delete(void* p, std::size_t n) noexcept { frame_free(p, n); }

    std::suspend_always initial_suspend() noexcept { return {}; }

    struct FinalAwaiter {
        bool await_ready() noexcept { return false; }
        template <class P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
            return h.promise().continuation;
        }
        void await_resume() noexcept {}
    };
    FinalAwaiter final_suspend() noexcept { return {}; }
    [[noreturn]] void unhandled_exception() noexcept { std::terminate(); }
};

template <class T>
struct Promise : PromiseBase {
    T value{};
    Task<T> get_return_object() noexcept;
    template <class U>
    void return_value(U&& v) noexcept(noexcept(value = std::forward<U>(v))) {
        value = std::forward<U>(v);
    }
};

template <>
struct Promise<void> : PromiseBase {
    Task<void> get_return_object() noexcept;
    void return_void() noexcept {}
};

}  // namespace detail

template <class T>
class [[nodiscard]] Task {
public:
    using promise_type = detail::Promise<T>;
    using Handle = std::coroutine_handle<promise_type>;

    explicit Task(Handle h) noexcept : h_(h) {}
    Task(Task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
    Task& operator=(Task&& o) noexcept {
        if (this != &o) {
            if (h_) h_.destroy();
            h_ = std::exchange(o.h_, {});
        }
        return *this;
    }
    Task(const Task&) = delete;
    Task& operator=(const Task&) = delete;
    ~Task() {
        if (h_) h_.destroy();
    }

    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiter) noexcept {
        h_.promise().continuation = awaiter;
        return h_;
    }
    T await_resume() noexcept {
        if constexpr (!std::is_void_v<T>) return std::move(h_.promise().value);
    }

    Handle release() noexcept { return std::exchange(h_, {}); }

private:
    Handle h_;
};

namespace detail {
template <class T>
Task<T> Promise<T>::get_return_object() noexcept {
    return Task<T>(std::coroutine_handle<Promise<T>>::from_promise(*this));
}
inline Task<void> Promise<void>::get_return_object() noexcept {
    return Task<void>(std::coroutine_handle<Promise<void>>::from_promise(*this));
}

// The frame that owns a spawned task: starts at once, frees itself at the end.
struct Detached {
    struct promise_type {
        static void* operator new(std::size_t n) { return frame_alloc(n); }
        static void operator delete(void* p, std::size_t n) noexcept { frame_free(p, n); }
        Detached get_return_object() noexcept { return {}; }
        std::suspend_never initial_suspend() noexcept { return {}; }
        std::suspend_never final_suspend() noexcept { return {}; }
        void return_void() noexcept {}
        [[noreturn]] void unhandled_exception() noexcept { std::terminate(); }
    };
};

inline Detached run_detached(Task<void> t) { co_await std::move(t); }
}  // namespace detail

// Starts t now, on this thread; it runs until its first suspension and then lives
// on in the event loop until it returns. Whoever spawns is responsible for making
// everything t refers to outlive it.
inline void spawn(Task<void> t) { detail::run_detached(std::move(t)); }

// A coroutine that starts at once and frees itself when it returns, for the
// long-lived roots (one per connection): declaring the root as Detached instead of
// spawning a Task saves a second frame per connection, which an idle keep-alive
// connection would otherwise carry for its whole life.
using Detached = detail::Detached;

}  // namespace rr::io
