// Force-included (-include) into a second build of src/gateway/*.cpp for the model tests.
// Each RR_CHAOS_POINT() in those sources then sometimes yields or sleeps a little, so the
// windows between two atomic steps (the ones the proof in token_pool.hpp reasons about)
// are wide enough for other threads to run inside them. Normal builds define the points
// as nothing.
#pragma once

#include <chrono>
#include <random>
#include <thread>

namespace rr::gateway::chaos {
inline void point() {
    thread_local std::minstd_rand rng{std::random_device{}()};
    const auto roll = rng() % 64;
    if (roll < 6) {
        std::this_thread::yield();
    } else if (roll == 6) {
        std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
}
}  // namespace rr::gateway::chaos

#define RR_CHAOS_POINT() ::rr::gateway::chaos::point()
