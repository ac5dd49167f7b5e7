// Shared by the store unit tests: a temporary data directory and a fresh Env in it.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "ringrelay/store.hpp"

namespace rr::store::test {

// A directory under $TMPDIR (or /tmp) removed with everything in it on destruction.
class TempDir {
public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "rr-store-test-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::permissions(path_, std::filesystem::perms::owner_all, ec);
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string sub(const std::string& name) const { return rr::cat(path_, "/", name); }

private:
    std::string path_;
};

// A data dir with an open Env; `now` is a fixed clock the tests move by hand.
struct Fixture {
    TempDir dir;
    std::unique_ptr<Env> env;
    std::int64_t now = 1'750'000'000'000LL;

    explicit Fixture(const Env::Options& options = {}) {
        Status s = Env::open(dir.sub("data"), env, options);
        INFO(s.message);
        REQUIRE(s.ok());
    }
};

inline KeySpec key_spec(std::string name) {
    KeySpec k;
    k.name = std::move(name);
    return k;
}

inline ChannelSpec channel_spec(std::string name, std::vector<std::string> models, std::int32_t priority = 0) {
    ChannelSpec c;
    c.name = std::move(name);
    c.base_url = "https://api.example.com/v1";
    c.api_key = "sk-test-123";
    c.models = std::move(models);
    c.priority = priority;
    return c;
}

}  // namespace rr::store::test
