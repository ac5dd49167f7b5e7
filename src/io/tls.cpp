// TLS sessions on io::Socket: wolfSSL with custom IO over the socket's queued
// provided buffers (see tls.hpp for the shape and the threading rules).
#include "ringrelay/io/tls.hpp"

#include <arpa/inet.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

// wolfSSL's headers must see its build options first.
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <new>
#include <stdexcept>
#include <tuple>
#include <utility>

namespace rr::io {
namespace {

constexpr std::string_view kAlpnHttp11 = "http/1.1";

// "reason (wolfSSL error N)", plus the alert the peer sent when that is why.
std::string describe_error(WOLFSSL* ssl, int err) {
    char reason[WOLFSSL_MAX_ERROR_SZ] = {};
    wolfSSL_ERR_error_string_n(static_cast<unsigned long>(err), reason, sizeof reason);
    std::string text = reason[0] != '\0' ? reason : "unknown error";
    text += " (wolfSSL error " + std::to_string(err) + ")";
    WOLFSSL_ALERT_HISTORY history{};
    if (ssl != nullptr && err == FATAL_ERROR && wolfSSL_get_alert_history(ssl, &history) == WOLFSSL_SUCCESS &&
        history.last_rx.level == alert_fatal) {
        text += ", peer sent alert: ";
        text += wolfSSL_alert_desc_string_long(history.last_rx.code);
    }
    return text;
}

// The most recent wolfSSL error of this thread, for start-up messages.
std::string last_error_suffix() {
    const unsigned long e = wolfSSL_ERR_get_error();
    if (e == 0) return {};
    char reason[WOLFSSL_MAX_ERROR_SZ] = {};
    wolfSSL_ERR_error_string_n(e, reason, sizeof reason);
    return std::string(" (wolfSSL: ") + reason + ")";
}

void require_readable(const std::string& path, const std::string& what) {
    if (::access(path.c_str(), R_OK) != 0)
        throw std::runtime_error("cannot read " + what + " " + path + ": " + std::strerror(errno));
}

// wolfSSL (Debian's build has FP_ECC) keeps a per-thread cache of precomputed ECC
// points, and wolfSSL_Cleanup() frees only the calling thread's. So a thread that
// makes sessions (a shard) frees its own cache when it exits.
void release_ecc_cache_at_thread_exit() noexcept {
    struct Release {
        ~Release() { wc_ecc_fp_free(); }
    };
    thread_local Release release;
    static_cast<void>(release);
}

bool is_ip_literal(const std::string& host) {
    unsigned char addr[sizeof(in6_addr)];
    return inet_pton(AF_INET, host.c_str(), addr) == 1 || inet_pton(AF_INET6, host.c_str(), addr) == 1;
}

// A context under construction: frees itself (and balances wolfSSL_Init) unless
// released, so every throw on the way cleans up.
class ContextGuard {
public:
    explicit ContextGuard(WOLFSSL_METHOD* (*method)()) {
        wolfSSL_Init();
        ctx_ = wolfSSL_CTX_new(method());
        if (ctx_ == nullptr) {
            wolfSSL_Cleanup();
            throw std::runtime_error("cannot create a TLS context (out of memory)");
        }
        // TLS 1.2 and 1.3 only: older versions are broken or deprecated (RFC 8996).
        wolfSSL_CTX_SetMinVersion(ctx_, WOLFSSL_TLSV1_2);
    }
    ~ContextGuard() {
        if (ctx_ == nullptr) return;
        wolfSSL_CTX_free(ctx_);
        wolfSSL_Cleanup();
    }
    ContextGuard(const ContextGuard&) = delete;
    ContextGuard& operator=(const ContextGuard&) = delete;
    WOLFSSL_CTX* get() const noexcept { return ctx_; }
    WOLFSSL_CTX* release() noexcept { return std::exchange(ctx_, nullptr); }

private:
    WOLFSSL_CTX* ctx_ = nullptr;
};

void free_context(WOLFSSL_CTX* ctx) noexcept {
    if (ctx == nullptr) return;
    wolfSSL_CTX_free(ctx);
    wolfSSL_Cleanup();
}

// One end of an in-memory TLS connection: reads `in`, appends to `out`.
struct MemoryEnd {
    std::string* in;
    std::string* out;
    static int recv(WOLFSSL*, char* buf, int size, void* ctx) {
        auto* e = static_cast<MemoryEnd*>(ctx);
        if (e->in->empty()) return WOLFSSL_CBIO_ERR_WANT_READ;
        const std::size_t n = std::min(e->in->size(), static_cast<std::size_t>(size));
        std::memcpy(buf, e->in->data(), n);
        e->in->erase(0, n);
        return static_cast<int>(n);
    }
    static int send(WOLFSSL*, char* buf, int size, void* ctx) {
        static_cast<MemoryEnd*>(ctx)->out->append(buf, static_cast<std::size_t>(size));
        return size;
    }
    void attach(WOLFSSL* ssl) {
        wolfSSL_SSLSetIORecv(ssl, &MemoryEnd::recv);
        wolfSSL_SSLSetIOSend(ssl, &MemoryEnd::send);
        wolfSSL_SetIOReadCtx(ssl, this);
        wolfSSL_SetIOWriteCtx(ssl, this);
    }
};

// Proves that the server's key belongs to its certificate the one way that holds
// for every key type: a handshake in memory, in which the server signs with the
// key and the client checks the signature against the certificate. (wolfSSL
// 5.5.4's wolfSSL_CTX_check_private_key accepts a mismatched ECC key.) Returns
// the failure, empty on success.
std::string handshake_in_memory(WOLFSSL_CTX* server_ctx) {
    ContextGuard client_ctx(&wolfSSLv23_client_method);
    wolfSSL_CTX_set_verify(client_ctx.get(), WOLFSSL_VERIFY_NONE, nullptr);  // the chain is not the question
    std::unique_ptr<WOLFSSL, void (*)(WOLFSSL*)> client(wolfSSL_new(client_ctx.get()), wolfSSL_free);
    std::unique_ptr<WOLFSSL, void (*)(WOLFSSL*)> server(wolfSSL_new(server_ctx), wolfSSL_free);
    if (!client || !server) return "out of memory";
    std::string to_client, to_server;
    MemoryEnd client_end{&to_client, &to_server}, server_end{&to_server, &to_client};
    client_end.attach(client.get());
    server_end.attach(server.get());
    bool client_done = false, server_done = false;
    for (int round = 0; round < 16 && !(client_done && server_done); ++round) {
        for (auto [ssl, done, accept] : {std::tuple{client.get(), &client_done, false},
                                         std::tuple{server.get(), &server_done, true}}) {
            if (*done) continue;
            const int rc = accept ? wolfSSL_accept(ssl) : wolfSSL_connect(ssl);
            if (rc == WOLFSSL_SUCCESS) {
                *done = true;
                continue;
            }
            const int err = wolfSSL_get_error(ssl, rc);
            if (err != WOLFSSL_ERROR_WANT_READ) return describe_error(ssl, err);
        }
    }
    return client_done && server_done ? std::string() : std::string("handshake did not finish");
}

}  // namespace

// ---- contexts ------------------------------------------------------------------

TlsClientContext::TlsClientContext(const TlsClientOptions& options) {
    ContextGuard guard(&wolfSSLv23_client_method);
    wolfSSL_CTX_set_verify(guard.get(), options.verify_peer ? WOLFSSL_VERIFY_PEER : WOLFSSL_VERIFY_NONE, nullptr);
    if (options.use_system_cas && ::access(kSystemBundle, R_OK) == 0) {
        // Skip the odd certificate wolfSSL cannot parse rather than trusting nothing.
        system_cas_loaded_ = wolfSSL_CTX_load_verify_locations_ex(guard.get(), kSystemBundle, nullptr,
                                                                  WOLFSSL_LOAD_FLAG_IGNORE_ERR) == WOLFSSL_SUCCESS;
    }
    if (!options.ca_file.empty()) {
        require_readable(options.ca_file, "upstream CA file");
        if (wolfSSL_CTX_load_verify_locations(guard.get(), options.ca_file.c_str(), nullptr) != WOLFSSL_SUCCESS)
            throw std::runtime_error("cannot load upstream CA file " + options.ca_file +
                                     ": no usable PEM certificate in it" + last_error_suffix());
    }
    wolfSSL_CTX_UseSessionTicket(guard.get());  // TLS 1.2 tickets; TLS 1.3 resumes with them anyway
    ctx_ = guard.release();
}

TlsClientContext::~TlsClientContext() {
    for (auto& [key, session] : sessions_) wolfSSL_SESSION_free(session);
    free_context(ctx_);
}

// ---- server certificates -------------------------------------------------------

namespace {

// A server context for one certificate chain and key, checked to belong together.
WOLFSSL_CTX* load_server_context(const TlsCertificateFiles& files) {
    const std::string& cert_file = files.cert_file;
    const std::string& key_file = files.key_file;
    require_readable(cert_file, "TLS certificate");
    require_readable(key_file, "TLS key");
    ContextGuard guard(&wolfSSLv23_server_method);
    if (wolfSSL_CTX_use_certificate_chain_file(guard.get(), cert_file.c_str()) != WOLFSSL_SUCCESS)
        throw std::runtime_error("cannot load TLS certificate " + cert_file + ": no usable PEM certificate in it" +
                                 last_error_suffix());
    if (wolfSSL_CTX_use_PrivateKey_file(guard.get(), key_file.c_str(), WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS)
        throw std::runtime_error("cannot load TLS key " + key_file + ": not an unencrypted PEM private key" +
                                 last_error_suffix());
    if (wolfSSL_CTX_check_private_key(guard.get()) != WOLFSSL_SUCCESS)
        throw std::runtime_error("TLS key " + key_file + " does not belong to the certificate " + cert_file);
    if (const std::string failure = handshake_in_memory(guard.get()); !failure.empty())
        throw std::runtime_error("TLS key " + key_file + " does not belong to the certificate " + cert_file +
                                 " (a test handshake failed: " + failure + ")");
    return guard.release();
}

std::string lowercase(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// The DNS names a server certificate answers: its subjectAltName DNS entries, or
// its subject CN when it has none (as clients without SAN support would check).
std::vector<std::string> certificate_names(WOLFSSL_CTX* ctx) {
    std::vector<std::string> names;
    WOLFSSL_X509* cert = wolfSSL_CTX_get0_certificate(ctx);
    if (cert == nullptr) return names;
    while (const char* n = wolfSSL_X509_get_next_altname(cert)) {
        std::string name = lowercase(n);
        if (!name.empty() && !is_ip_literal(name)) names.push_back(std::move(name));
    }
    if (names.empty()) {
        char cn[256] = {};
        if (wolfSSL_X509_NAME_get_text_by_NID(wolfSSL_X509_get_subject_name(cert), NID_commonName, cn,
                                              sizeof cn) > 0)
            names.push_back(lowercase(cn));
    }
    return names;
}

std::uint64_t now_seconds() noexcept {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count());
}

bool fill_random(unsigned char* p, std::size_t n) noexcept {
    while (n > 0) {
        const ssize_t got = ::getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        p += got;
        n -= static_cast<std::size_t>(got);
    }
    return true;
}

}  // namespace

// Session ticket keys: ChaCha20-Poly1305 over the ticket wolfSSL hands us, the
// key named in the clear so the right one decrypts it. Shared by every context of
// a listener (so SNI and reloads do not invalidate tickets); called from any shard.
class TlsTicketKeys {
public:
    explicit TlsTicketKeys(std::uint64_t rotation_seconds) : rotation_seconds_(rotation_seconds) {
        if (!make_key(current_, now_seconds()))
            throw std::runtime_error("cannot make a TLS session ticket key: no random bytes from the kernel");
    }
    ~TlsTicketKeys() {
        ::explicit_bzero(&current_, sizeof current_);
        ::explicit_bzero(&previous_, sizeof previous_);
    }
    TlsTicketKeys(const TlsTicketKeys&) = delete;
    TlsTicketKeys& operator=(const TlsTicketKeys&) = delete;

    void rotate() noexcept {
        std::lock_guard lock(mu_);
        rotate_locked(now_seconds());
    }

    static int on_ticket(WOLFSSL*, unsigned char key_name[WOLFSSL_TICKET_NAME_SZ],
                         unsigned char iv[WOLFSSL_TICKET_IV_SZ], unsigned char mac[WOLFSSL_TICKET_MAC_SZ], int enc,
                         unsigned char* ticket, int in_len, int* out_len, void* ctx) {
        auto* self = static_cast<TlsTicketKeys*>(ctx);
        if (self == nullptr || in_len < 0 || in_len > 0xffff) return WOLFSSL_TICKET_RET_FATAL;
        return enc ? self->seal(key_name, iv, mac, ticket, in_len, out_len)
                   : self->open(key_name, iv, mac, ticket, in_len, out_len);
    }

private:
    struct Key {
        unsigned char name[WOLFSSL_TICKET_NAME_SZ];
        unsigned char secret[CHACHA20_POLY1305_AEAD_KEYSIZE];
        std::uint64_t started_s;
    };
    // The additional data bound to a ticket: its key name, IV and length.
    struct Aad {
        unsigned char bytes[WOLFSSL_TICKET_NAME_SZ + WOLFSSL_TICKET_IV_SZ + 2];
        Aad(const unsigned char* name, const unsigned char* iv, int len) noexcept {
            std::memcpy(bytes, name, WOLFSSL_TICKET_NAME_SZ);
            std::memcpy(bytes + WOLFSSL_TICKET_NAME_SZ, iv, WOLFSSL_TICKET_IV_SZ);
            bytes[sizeof bytes - 2] = static_cast<unsigned char>(len >> 8);
            bytes[sizeof bytes - 1] = static_cast<unsigned char>(len);
        }
    };

    static bool make_key(Key& k, std::uint64_t now) noexcept {
        k.started_s = now;
        return fill_random(k.name, sizeof k.name) && fill_random(k.secret, sizeof k.secret);
    }
    void rotate_locked(std::uint64_t now) noexcept {
        Key fresh;
        if (!make_key(fresh, now)) return;  // keep the current key rather than none
        previous_ = current_;
        has_previous_ = true;
        current_ = fresh;
        ::explicit_bzero(&fresh, sizeof fresh);
    }
    // A copy of the key to use (the lock is not held while encrypting).
    Key sealing_key() noexcept {
        std::lock_guard lock(mu_);
        const std::uint64_t now = now_seconds();
        if (now - current_.started_s >= rotation_seconds_) rotate_locked(now);
        return current_;
    }
    // The key named, and whether it is the previous one; false when unknown.
    bool opening_key(const unsigned char* name, Key& out, bool& old) noexcept {
        std::lock_guard lock(mu_);
        const std::uint64_t now = now_seconds();
        if (now - current_.started_s >= rotation_seconds_) rotate_locked(now);
        if (std::memcmp(name, current_.name, sizeof current_.name) == 0) {
            out = current_;
            old = false;
            return true;
        }
        if (has_previous_ && std::memcmp(name, previous_.name, sizeof previous_.name) == 0) {
            out = previous_;
            old = true;
            return true;
        }
        return false;
    }

    int seal(unsigned char* name, unsigned char* iv, unsigned char* mac, unsigned char* ticket, int len,
             int* out_len) noexcept {
        Key k = sealing_key();
        std::memcpy(name, k.name, sizeof k.name);
        std::memset(iv, 0, WOLFSSL_TICKET_IV_SZ);
        int ret = WOLFSSL_TICKET_RET_FATAL;
        if (fill_random(iv, CHACHA20_POLY1305_AEAD_IV_SIZE)) {
            const Aad aad(name, iv, len);
            if (wc_ChaCha20Poly1305_Encrypt(k.secret, iv, aad.bytes, sizeof aad.bytes, ticket,
                                            static_cast<word32>(len), ticket, mac) == 0) {
                *out_len = len;
                ret = WOLFSSL_TICKET_RET_OK;
            }
        }
        ::explicit_bzero(&k, sizeof k);
        return ret;
    }
    int open(unsigned char* name, unsigned char* iv, unsigned char* mac, unsigned char* ticket, int len,
             int* out_len) noexcept {
        Key k;
        bool old = false;
        if (!opening_key(name, k, old)) return WOLFSSL_TICKET_RET_REJECT;  // expired key: a full handshake
        const Aad aad(name, iv, len);
        const int rc = wc_ChaCha20Poly1305_Decrypt(k.secret, iv, aad.bytes, sizeof aad.bytes, ticket,
                                                   static_cast<word32>(len), mac, ticket);
        ::explicit_bzero(&k, sizeof k);
        if (rc != 0) return WOLFSSL_TICKET_RET_REJECT;
        *out_len = len;
        return old ? WOLFSSL_TICKET_RET_CREATE : WOLFSSL_TICKET_RET_OK;  // re-issue under the current key
    }

    const std::uint64_t rotation_seconds_;
    std::mutex mu_;
    Key current_{};
    Key previous_{};
    bool has_previous_ = false;
};

// One load of a listener's certificates: a wolfSSL context per certificate, the
// first being the default, whose SNI callback moves a session to the context of
// the name the client asked for.
class TlsCertificateSet {
public:
    TlsCertificateSet(const std::vector<TlsCertificateFiles>& files, std::shared_ptr<TlsTicketKeys> tickets)
        : tickets_(std::move(tickets)) {
        if (files.empty()) throw std::runtime_error("no TLS certificate given");
        for (const TlsCertificateFiles& f : files) {
            Entry e{Context(load_server_context(f)), {}};
            e.names = certificate_names(e.ctx.get());
            wolfSSL_CTX_set_TicketEncCb(e.ctx.get(), &TlsTicketKeys::on_ticket);
            wolfSSL_CTX_set_TicketEncCtx(e.ctx.get(), tickets_.get());
            entries_.push_back(std::move(e));
        }
        WOLFSSL_CTX* first = entries_.front().ctx.get();
        if (entries_.size() > 1) {
            wolfSSL_CTX_set_servername_callback(first, &TlsCertificateSet::on_server_name);
            wolfSSL_CTX_set_servername_arg(first, this);
        }
    }

    WOLFSSL_CTX* default_context() const noexcept { return entries_.front().ctx.get(); }

    // The context answering name (lower-cased): an exact name first, then a
    // wildcard of its parent; null when none does.
    WOLFSSL_CTX* context_for(const std::string& name) const noexcept {
        for (const Entry& e : entries_)
            for (const std::string& n : e.names)
                if (n == name) return e.ctx.get();
        const std::size_t dot = name.find('.');
        if (dot == std::string::npos || dot == 0) return nullptr;
        const std::string_view parent = std::string_view(name).substr(dot);  // ".example.com"
        for (const Entry& e : entries_)
            for (const std::string& n : e.names)
                if (n.size() == parent.size() + 1 && n[0] == '*' && std::string_view(n).substr(1) == parent)
                    return e.ctx.get();
        return nullptr;
    }

    std::vector<std::string> names() const {
        std::vector<std::string> out{"default"};
        for (const Entry& e : entries_) out.insert(out.end(), e.names.begin(), e.names.end());
        return out;
    }

private:
    struct FreeContext {
        void operator()(WOLFSSL_CTX* c) const noexcept { free_context(c); }
    };
    using Context = std::unique_ptr<WOLFSSL_CTX, FreeContext>;
    struct Entry {
        Context ctx;
        std::vector<std::string> names;
    };

    static int on_server_name(WOLFSSL* ssl, int*, void* arg) {
        const auto* self = static_cast<const TlsCertificateSet*>(arg);
        const char* asked = wolfSSL_get_servername(ssl, WOLFSSL_SNI_HOST_NAME);
        if (self == nullptr || asked == nullptr) return 0;  // SSL_TLSEXT_ERR_OK: the default answers
        WOLFSSL_CTX* chosen = self->context_for(lowercase(asked));
        if (chosen != nullptr && chosen != self->default_context()) wolfSSL_set_SSL_CTX(ssl, chosen);
        return 0;
    }

    std::shared_ptr<TlsTicketKeys> tickets_;  // outlives the contexts that point at it
    std::vector<Entry> entries_;
};

TlsServerContext::TlsServerContext(const std::string& cert_file, const std::string& key_file)
    : TlsServerContext(std::vector<TlsCertificateFiles>{{cert_file, key_file}}) {}

TlsServerContext::TlsServerContext(std::vector<TlsCertificateFiles> certificates)
    : files_(std::move(certificates)),
      tickets_(std::make_shared<TlsTicketKeys>(kTicketKeyRotationSeconds)),
      current_(std::make_shared<const TlsCertificateSet>(files_, tickets_)),
      generation_(1) {}

TlsServerContext::~TlsServerContext() = default;

std::string TlsServerContext::reload() {
    std::shared_ptr<const TlsCertificateSet> fresh;
    try {
        fresh = std::make_shared<const TlsCertificateSet>(files_, tickets_);
    } catch (const std::exception& e) {
        return e.what();
    }
    std::shared_ptr<const TlsCertificateSet> old;  // freed outside the lock
    std::lock_guard lock(mu_);
    old = std::exchange(current_, std::move(fresh));
    ++generation_;
    return {};
}

std::shared_ptr<const TlsCertificateSet> TlsServerContext::current() const noexcept {
    std::lock_guard lock(mu_);
    return current_;
}

std::uint64_t TlsServerContext::generation() const noexcept {
    std::lock_guard lock(mu_);
    return generation_;
}

std::vector<std::string> TlsServerContext::server_names() const { return current()->names(); }

WOLFSSL_CTX* TlsServerContext::native() const noexcept { return current()->default_context(); }

void TlsServerContext::rotate_ticket_key() noexcept { tickets_->rotate(); }

// ---- upstream session resumption -------------------------------------------------

void TlsClientContext::remember_session(const std::string& resume_key, WOLFSSL* ssl) const noexcept {
    WOLFSSL_SESSION* fresh = wolfSSL_get1_session(ssl);
    if (fresh == nullptr) return;
    WOLFSSL_SESSION* old = nullptr;
    {
        std::lock_guard lock(sessions_mu_);
        try {
            WOLFSSL_SESSION*& slot = sessions_[resume_key];
            old = std::exchange(slot, fresh);
        } catch (...) {  // out of memory: no resumption for this key
            old = fresh;
        }
    }
    if (old != nullptr) wolfSSL_SESSION_free(old);
}

bool TlsClientContext::offer_session(const std::string& resume_key, WOLFSSL* ssl) const noexcept {
    std::lock_guard lock(sessions_mu_);  // a session is read by one handshake at a time
    const auto it = sessions_.find(resume_key);
    if (it == sessions_.end()) return false;
    if (wolfSSL_set_session(ssl, it->second) == WOLFSSL_SUCCESS) return true;
    wolfSSL_SESSION_free(it->second);  // expired
    sessions_.erase(it);
    return false;
}

void TlsClientContext::forget_session(const std::string& resume_key) const noexcept {
    WOLFSSL_SESSION* old = nullptr;
    {
        std::lock_guard lock(sessions_mu_);
        const auto it = sessions_.find(resume_key);
        if (it == sessions_.end()) return;
        old = it->second;
        sessions_.erase(it);
    }
    wolfSSL_SESSION_free(old);
}

std::size_t TlsClientContext::remembered_sessions() const noexcept {
    std::lock_guard lock(sessions_mu_);
    return sessions_.size();
}

// ---- sessions ------------------------------------------------------------------

struct TlsSession::PlainBlock {
    // One full TLS record of plaintext (RFC 8446: at most 2^14 bytes).
    static constexpr std::size_t kSize = 16 * 1024;
    PlainBlock* next = nullptr;
    std::size_t begin = 0;
    std::size_t end = 0;
    char data[kSize];
};

TlsSession::TlsSession(WOLFSSL* ssl, bool is_server) noexcept : ssl_(ssl), is_server_(is_server) {
    release_ecc_cache_at_thread_exit();
    wolfSSL_SSLSetIORecv(ssl_, &TlsSession::on_wolfssl_recv);
    wolfSSL_SSLSetIOSend(ssl_, &TlsSession::on_wolfssl_send);
    wolfSSL_SetIOReadCtx(ssl_, this);
    wolfSSL_SetIOWriteCtx(ssl_, this);
}

TlsSession::~TlsSession() {
    while (plain_head_ != nullptr) delete std::exchange(plain_head_, plain_head_->next);
    wolfSSL_free(ssl_);
}

std::unique_ptr<TlsSession> TlsSession::client(const TlsClientContext& ctx, std::string_view host,
                                               std::string_view resume_key) {
    WOLFSSL* ssl = wolfSSL_new(ctx.native());
    if (ssl == nullptr) return nullptr;
    std::unique_ptr<TlsSession> session(new (std::nothrow) TlsSession(ssl, false));
    if (!session) {
        wolfSSL_free(ssl);
        return nullptr;
    }
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    const std::string name(host);
    bool ok;
    if (is_ip_literal(name)) {
        // RFC 6066: SNI carries host names only; an address is checked against the
        // certificate's IP subjectAltNames.
        ok = wolfSSL_X509_VERIFY_PARAM_set1_ip_asc(wolfSSL_get0_param(ssl), name.c_str()) == WOLFSSL_SUCCESS;
    } else {
        ok = wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, name.data(), static_cast<unsigned short>(name.size())) ==
                 WOLFSSL_SUCCESS &&
             wolfSSL_check_domain_name(ssl, name.c_str()) == WOLFSSL_SUCCESS;
    }
    std::string alpn(kAlpnHttp11);
    ok = ok && wolfSSL_UseALPN(ssl, alpn.data(), static_cast<unsigned>(alpn.size()),
                               WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) == WOLFSSL_SUCCESS;
    if (!ok) return nullptr;
    if (!resume_key.empty()) {
        try {
            session->resume_key_ = resume_key;
        } catch (...) {
            return nullptr;
        }
        session->resume_ctx_ = &ctx;
        ctx.offer_session(session->resume_key_, ssl);
        wolfSSL_set_SessionTicket_cb(ssl, &TlsSession::on_wolfssl_ticket, session.get());
    }
    return session;
}

std::unique_ptr<TlsSession> TlsSession::server(const TlsServerContext& ctx) {
    std::shared_ptr<const TlsCertificateSet> certificates = ctx.current();
    WOLFSSL* ssl = wolfSSL_new(certificates->default_context());
    if (ssl == nullptr) return nullptr;
    std::unique_ptr<TlsSession> session(new (std::nothrow) TlsSession(ssl, true));
    if (!session) {
        wolfSSL_free(ssl);
        return nullptr;
    }
    session->certificates_ = std::move(certificates);
    std::string alpn(kAlpnHttp11);
    if (wolfSSL_UseALPN(ssl, alpn.data(), static_cast<unsigned>(alpn.size()), WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) !=
        WOLFSSL_SUCCESS)
        return nullptr;
    return session;
}

std::string_view TlsSession::protocol() const noexcept {
    if (!handshake_done_) return {};
    const char* v = wolfSSL_get_version(ssl_);
    return v != nullptr ? std::string_view(v) : std::string_view();
}

std::string_view TlsSession::alpn() const noexcept {
    char* name = nullptr;
    unsigned short size = 0;
    if (wolfSSL_ALPN_GetProtocol(ssl_, &name, &size) != WOLFSSL_SUCCESS || name == nullptr) return {};
    return {name, size};
}

bool TlsSession::resumed() const noexcept { return handshake_done_ && wolfSSL_session_reused(ssl_) == 1; }

std::string_view TlsSession::server_name() const noexcept {
    const char* name = wolfSSL_get_servername(ssl_, WOLFSSL_SNI_HOST_NAME);
    return name != nullptr ? std::string_view(name) : std::string_view();
}

void TlsSession::bind(Socket* socket) noexcept { socket_ = socket; }

// ---- upstream resumption ----------------------------------------------------------

int TlsSession::on_wolfssl_ticket(WOLFSSL*, const unsigned char*, int, void* ctx) {
    // Called while wolfSSL is still taking the ticket in: the session is remembered
    // once wolfSSL_read has returned.
    static_cast<TlsSession*>(ctx)->ticket_arrived_ = true;
    return 0;
}

void TlsSession::remember_for_resumption() noexcept {
    ticket_arrived_ = false;
    if (resume_ctx_ != nullptr && !failed_) resume_ctx_->remember_session(resume_key_, ssl_);
}

// ---- wolfSSL's IO: ciphertext in from the socket's queue, out to a string -------

int TlsSession::on_wolfssl_recv(WOLFSSL*, char* buf, int size, void* ctx) {
    auto* self = static_cast<TlsSession*>(ctx);
    Socket& s = *self->socket_;
    const auto want = static_cast<std::size_t>(size);
    std::size_t copied = 0;
    while (copied < want) {
        const std::string_view f = s.raw_front();
        if (f.empty()) break;
        const std::size_t n = std::min(f.size(), want - copied);
        std::memcpy(buf + copied, f.data(), n);
        s.raw_consume(n);  // the provided buffer goes back to the ring once empty
        copied += n;
    }
    if (copied > 0) return static_cast<int>(copied);
    if (s.error_ != 0) return WOLFSSL_CBIO_ERR_CONN_RST;
    if (s.eof_) return WOLFSSL_CBIO_ERR_CONN_CLOSE;
    return WOLFSSL_CBIO_ERR_WANT_READ;
}

int TlsSession::on_wolfssl_send(WOLFSSL*, char* buf, int size, void* ctx) {
    // Never blocks: Socket::send() ships the output with io_uring afterwards.
    static_cast<TlsSession*>(ctx)->out_.append(buf, static_cast<std::size_t>(size));
    return size;
}

// ---- receiving -----------------------------------------------------------------

void TlsSession::on_received() noexcept {
    if (handshake_done_ && !failed_) decrypt_available();
}

bool TlsSession::more_to_decrypt() const noexcept {
    const Socket& s = *socket_;
    return s.raw_has_data() || s.eof_ || s.error_ != 0 || wolfSSL_has_pending(ssl_) != 0;
}

void TlsSession::append_block(PlainBlock* b) noexcept {
    if (plain_tail_ != nullptr) plain_tail_->next = b;
    else plain_head_ = b;
    plain_tail_ = b;
}

void TlsSession::decrypt_available() noexcept {
    Socket& s = *socket_;
    while (!reading_done_ && !failed_ && plain_bytes_ < kPlainHighWater && more_to_decrypt()) {
        // Every block in the chain holds bytes: a fresh one joins only once it has some.
        PlainBlock* fresh = nullptr;
        PlainBlock* b = plain_tail_;
        if (b == nullptr || b->end == PlainBlock::kSize) {
            fresh = b = new (std::nothrow) PlainBlock;
            if (b == nullptr) return fail_with(-ENOMEM, "out of memory for decrypted data");
        }
        const int r = wolfSSL_read(ssl_, b->data + b->end, static_cast<int>(PlainBlock::kSize - b->end));
        if (r > 0) {
            if (fresh != nullptr) append_block(fresh);
            b->end += static_cast<std::size_t>(r);
            plain_bytes_ += static_cast<std::size_t>(r);
            continue;
        }
        delete fresh;
        const int err = wolfSSL_get_error(ssl_, r);
        if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE) break;
        if (err == WOLFSSL_ERROR_ZERO_RETURN || r == 0 || err == WOLFSSL_ERROR_SYSCALL ||
            err == SOCKET_PEER_CLOSED_E) {
            // close_notify, or the TCP stream ended (the relay's framing tells a
            // truncated message from a whole one). A reset stays the socket's error.
            close_notify_received_ = err == WOLFSSL_ERROR_ZERO_RETURN;
            reading_done_ = true;
            if (s.error_ == 0) s.eof_ = true;
            break;
        }
        fail(err, "TLS record refused");
        break;
    }
    if (ticket_arrived_) [[unlikely]] remember_for_resumption();  // a TLS 1.3 ticket came
}

int TlsSession::read_state() const noexcept {
    const Socket& s = *socket_;
    if (plain_bytes_ != 0) return Socket::kData;
    if (!handshake_done_ && !failed_ && s.raw_has_data()) return Socket::kData;  // news for the handshake
    if (s.error_ != 0) return s.error_;
    if (reading_done_ || (!handshake_done_ && s.eof_)) return Socket::kEof;
    return Socket::kWouldBlock;
}

std::string_view TlsSession::plaintext() const noexcept {
    if (plain_head_ == nullptr) return {};
    return {plain_head_->data + plain_head_->begin, plain_head_->end - plain_head_->begin};
}

void TlsSession::consume_plaintext(std::size_t n) noexcept {
    if (plain_head_ == nullptr) return;
    plain_head_->begin += n;
    plain_bytes_ -= n;
    if (plain_head_->begin == plain_head_->end) {  // an idle connection keeps no block
        delete std::exchange(plain_head_, plain_head_->next);
        if (plain_head_ == nullptr) plain_tail_ = nullptr;
    }
    if (handshake_done_ && !failed_) decrypt_available();  // below the mark again: catch up
}

// ---- sending -------------------------------------------------------------------

int TlsSession::encrypt(const char* p, std::size_t n) noexcept {
    if (write_broken_) return -EPIPE;
    if (n == 0) return 0;
    if (failed_) return socket_->error_ != 0 ? socket_->error_ : -EPROTO;
    if (!handshake_done_) return -ENOTCONN;
    const int r = wolfSSL_write(ssl_, p, static_cast<int>(std::min(n, kEncryptChunk)));
    if (r > 0) return r;  // all of it, or (partial-write mode) a prefix
    const int err = wolfSSL_get_error(ssl_, r);
    // Our send callback never blocks, so wolfSSL has no reason to want a write;
    // should it anyway, the output is sent and the same bytes offered again, as
    // wolfSSL_write requires.
    if (err == WOLFSSL_ERROR_WANT_WRITE && !out_.empty()) return 0;
    fail(err, "TLS encryption failed");
    return -EPROTO;
}

std::string_view TlsSession::take_ciphertext() noexcept {
    if (out_.empty()) return {};
    out_.swap(sending_);  // sending_ is empty: one send at a time
    return sending_;
}

void TlsSession::ciphertext_sent(bool whole) noexcept {
    sending_.clear();
    if (!whole) write_broken_ = true;  // half a record went out: the stream is unusable
}

void TlsSession::release_send_buffers() noexcept {
    // An idle connection keeps no ciphertext buffer; a busy one pays a malloc per
    // send, small beside the encryption itself.
    constexpr std::size_t kKeep = 4096;
    if (sending_.capacity() > kKeep) std::string().swap(sending_);
    if (out_.empty() && out_.capacity() > kKeep) std::string().swap(out_);
}

void TlsSession::send_close_notify() noexcept {
    Socket& s = *socket_;
    if (!handshake_done_ || failed_ || write_broken_ || close_notify_sent_ || s.error_ != 0 || !sending_.empty())
        return;
    close_notify_sent_ = true;
    wolfSSL_shutdown(ssl_);  // first call: queues our close_notify, reads nothing
    if (out_.empty()) return;
    // Best effort with one non-blocking send: the socket closes right after and
    // nobody would wait for an io_uring send. It lets the peer tell our clean end
    // from a truncation.
    [[maybe_unused]] const ssize_t n = ::send(s.fd_, out_.data(), out_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    out_.clear();
}

// ---- failing -------------------------------------------------------------------

void TlsSession::fail(int wolfssl_error, std::string_view what) noexcept {
    std::string text(what);
    if (!text.empty()) text += ": ";
    text += describe_error(ssl_, wolfssl_error);
    fail_with(-EPROTO, std::move(text));
}

void TlsSession::fail_with(int err, std::string text) noexcept {
    failed_ = true;
    // A session offered to a handshake that failed is not offered again.
    if (resume_ctx_ != nullptr && !handshake_done_) resume_ctx_->forget_session(resume_key_);
    if (error_text_.empty()) error_text_ = std::move(text);
    if (socket_->error_ == 0) socket_->error_ = err;  // readers and senders see it from now on
}

int TlsSession::failure_code() const noexcept { return socket_->error_ != 0 ? socket_->error_ : -EPROTO; }

// ---- handshake -----------------------------------------------------------------

TlsSession::Step TlsSession::handshake_step() noexcept {
    if (failed_) return Step::failed;
    const int r = is_server_ ? wolfSSL_accept(ssl_) : wolfSSL_connect(ssl_);
    if (r == WOLFSSL_SUCCESS) return Step::done;
    const int err = wolfSSL_get_error(ssl_, r);
    if (err == WOLFSSL_ERROR_WANT_READ) return Step::want_read;
    if (err == WOLFSSL_ERROR_WANT_WRITE) return Step::again;
    const Socket& s = *socket_;
    if (s.error_ != 0)
        fail_with(s.error_, std::string("connection failed during the TLS handshake: ") + std::strerror(-s.error_));
    else if (s.eof_)
        fail_with(-ECONNRESET, "peer closed the connection during the TLS handshake");
    else
        fail(err, {});  // the reason says it: "certificate verify failed", an alert...
    return Step::failed;
}

void TlsSession::finish_handshake() noexcept {
    handshake_done_ = true;
    // TLS 1.2 sessions (id or ticket) are resumable now; a TLS 1.3 ticket comes
    // after the handshake (on_wolfssl_ticket).
    if (resume_ctx_ != nullptr && (ticket_arrived_ || wolfSSL_version(ssl_) != TLS1_3_VERSION))
        remember_for_resumption();
    // Application data that came with the last handshake flight is queued already.
    decrypt_available();
}

Task<int> tls_handshake(Socket& socket, std::uint64_t deadline_ms) {
    TlsSession* t = socket.tls();
    if (t == nullptr) co_return -EINVAL;
    for (;;) {
        const TlsSession::Step step = t->handshake_step();
        const bool had_output = !t->out_.empty();
        if (had_output) {  // our next flight (or the alert that ends it all)
            const int sent = co_await socket.send({}, deadline_ms);
            if (sent < 0 && step != TlsSession::Step::failed) {
                t->fail_with(sent, sent == -ETIMEDOUT ? std::string("TLS handshake timed out")
                                                      : std::string("sending the TLS handshake failed: ") +
                                                            std::strerror(-sent));
                co_return sent;
            }
        }
        switch (step) {
        case TlsSession::Step::done:
            t->finish_handshake();
            co_return 0;
        case TlsSession::Step::failed:
            co_return t->failure_code();
        case TlsSession::Step::again:
            if (!had_output) {
                t->fail_with(-EIO, "TLS handshake stalled: wolfSSL wants to write with nothing to send");
                co_return -EIO;
            }
            continue;
        case TlsSession::Step::want_read:
            break;
        }
        const int state = co_await socket.readable(deadline_ms);
        if (state == Socket::kData) continue;
        if (state == Socket::kEof) {
            t->fail_with(-ECONNRESET, "peer closed the connection during the TLS handshake");
            co_return -ECONNRESET;
        }
        t->fail_with(state, state == -ETIMEDOUT ? std::string("TLS handshake timed out")
                                                : std::string("connection failed during the TLS handshake: ") +
                                                      std::strerror(-state));
        co_return state;
    }
}

}  // namespace rr::io
