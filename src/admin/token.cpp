// The admin token: $RINGRELAY_ADMIN_TOKEN, else DATA/admin.token, made on first
// start (mode 0600) from wolfSSL's DRBG through the store's id generator.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "ringrelay/admin/admin.hpp"
#include "ringrelay/common.hpp"
#include "ringrelay/obs/log.hpp"
#include "ringrelay/store/ops.hpp"

namespace rr::admin {
namespace {

// 43 base62 characters carry 256 bits, the strength of 32 random bytes.
constexpr std::size_t kTokenChars = 43;
constexpr std::size_t kMaxTokenBytes = 4096;

[[noreturn]] void fail(std::string message) {
    throw std::runtime_error(std::move(message));
}

std::string os_reason() {
    return std::strerror(errno);
}

// A token goes into an Authorization header: visible ASCII, no spaces.
void check_token(std::string_view token, std::string_view source) {
    if (token.empty())
        fail(cat("the admin token in ", source, " is empty: put a token in it, or delete the file to get a new one"));
    if (token.size() > kMaxTokenBytes) fail(cat("the admin token in ", source, " is longer than 4096 bytes"));
    for (char c : token) {
        if (c <= ' ' || c > '~')
            fail(cat("the admin token in ", source,
                     " holds a space or a control or non-ASCII character: use visible ASCII"));
    }
}

// mkdir -p, new directories 0700 (the data directory holds credentials).
void make_dirs(const std::string& dir) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode)) fail(cat("data dir ", dir, " is not a directory"));
        return;
    }
    const std::size_t slash = dir.find_last_of('/');
    if (slash != std::string::npos && slash > 0) make_dirs(dir.substr(0, slash));
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
        fail(cat("cannot create data dir ", dir, " (", os_reason(), ")"));
}

std::string read_token_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(cat("cannot read the admin token file ", path, " (", os_reason(), ")"));
    struct stat st {};
    if (::fstat(fd, &st) == 0 && (st.st_mode & 077) != 0)
        obs::log(obs::Level::warn, "admin token file is readable by other users: chmod 600 it", {{"path", path}});
    std::string text;
    char buf[1024];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > kMaxTokenBytes + 2) break;
    }
    ::close(fd);
    if (!text.empty() && text.back() == '\n') text.pop_back();
    if (!text.empty() && text.back() == '\r') text.pop_back();
    check_token(text, path);
    return text;
}

// Creates the file with a new token; false when another process made it first.
bool create_token_file(const std::string& path, std::string& token) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST) return false;
        fail(cat("cannot create the admin token file ", path, " (", os_reason(), ")"));
    }
    const store::Status made = store::generate_id("", kTokenChars, token);
    const std::string line = token + "\n";
    const bool written = made.ok() && ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                         ::fsync(fd) == 0;
    const std::string reason = made.ok() ? os_reason() : made.message;
    ::close(fd);
    if (!written) {
        ::unlink(path.c_str());
        fail(cat("cannot write the admin token file ", path, " (", reason, ")"));
    }
    obs::log(obs::Level::info, "admin token created", {{"path", path}});
    return true;
}

}  // namespace

std::string load_or_create_admin_token(const std::string& data_dir) {
    if (const char* env = std::getenv("RINGRELAY_ADMIN_TOKEN"); env != nullptr && *env != '\0') {
        check_token(env, "RINGRELAY_ADMIN_TOKEN");
        return env;
    }
    make_dirs(data_dir);
    const std::string path = data_dir + "/admin.token";
    std::string token;
    if (create_token_file(path, token)) return token;
    return read_token_file(path);
}

}  // namespace rr::admin
