// TLS on io::Socket, with wolfSSL riding on the shard's io_uring buffers.
//
// wolfSSL never touches a file descriptor: its receive callback takes ciphertext
// from the socket's queued provided buffers (or answers "want read"), its send
// callback appends ciphertext to the session's output, which Socket::send()
// hands to io_uring. So a TLS socket keeps the plain socket's shape: one
// multishot recv, one send in flight, the same timers and back-pressure; the
// relay above reads and writes plaintext through the same Socket calls.
//
//   auto s = new io::Socket(loop, fd);
//   s->attach_tls(io::TlsSession::client(client_ctx, "api.example.com"));
//   s->start_receiving();
//   if (int rc = co_await io::tls_handshake(*s, deadline); rc < 0) { ...s->tls()->error_text()... }
//   co_await s->send(request, deadline);       // encrypted
//   co_await s->readable(deadline); s->front(); // decrypted
//
// Threading: a context (TlsClientContext, TlsServerContext) is built once at
// start-up, on one thread, and then only read: every shard creates its sessions
// from it concurrently (wolfSSL_new takes the context's own lock for its
// reference count; the certificate store is read-only once loaded). A session
// belongs to one socket and is used only on that socket's shard. Contexts must
// outlive every session made from them. The first context constructed calls
// wolfSSL_Init() and the last one destroyed wolfSSL_Cleanup(): both happen on
// the start-up thread, never while shards run.
//
// Errors: contexts throw std::runtime_error at start-up with a one-line reason
// (file, and what is wrong with it). Sessions report failures through the
// socket (readers and senders get -EPROTO, or the TCP error that caused it) and
// keep a readable reason in error_text().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "ringrelay/io/socket.hpp"
#include "ringrelay/io/task.hpp"

struct WOLFSSL_CTX;
struct WOLFSSL;

namespace rr::io {

// Where an upstream client context gets its trust from.
struct TlsClientOptions {
    // A PEM file of extra CA certificates trusted besides the system's (empty: none).
    std::string ca_file;
    // Load the system bundle, /etc/ssl/certs/ca-certificates.crt, when present.
    bool use_system_cas = true;
    // Verify the server's certificate chain and name. Off only for tests.
    bool verify_peer = true;
};

// The one client context of a process (TLS 1.2 and 1.3, peer verification on).
class TlsClientContext {
public:
    static constexpr const char* kSystemBundle = "/etc/ssl/certs/ca-certificates.crt";

    // Throws std::runtime_error ("cannot load upstream CA file F: ...") when a
    // named CA file cannot be read or holds no usable certificate.
    explicit TlsClientContext(const TlsClientOptions& options = {});
    ~TlsClientContext();
    TlsClientContext(const TlsClientContext&) = delete;
    TlsClientContext& operator=(const TlsClientContext&) = delete;

    WOLFSSL_CTX* native() const noexcept { return ctx_; }
    // Whether the system bundle was found and loaded (for the start-up log).
    bool system_cas_loaded() const noexcept { return system_cas_loaded_; }

private:
    WOLFSSL_CTX* ctx_ = nullptr;
    bool system_cas_loaded_ = false;
};

// The listener's context: a certificate chain and its private key, PEM files.
// Serves TLS 1.2 and 1.3 and answers ALPN "http/1.1".
class TlsServerContext {
public:
    // Throws std::runtime_error naming the file and the problem when the
    // certificate or key cannot be read, parsed, or do not belong together.
    TlsServerContext(const std::string& cert_file, const std::string& key_file);
    ~TlsServerContext();
    TlsServerContext(const TlsServerContext&) = delete;
    TlsServerContext& operator=(const TlsServerContext&) = delete;

    WOLFSSL_CTX* native() const noexcept { return ctx_; }

private:
    WOLFSSL_CTX* ctx_ = nullptr;
};

// One connection's TLS state. Created unattached, then given to its socket with
// Socket::attach_tls(); the socket owns and frees it.
class TlsSession {
public:
    // Plaintext the session decrypts ahead of the reader before it stops and
    // leaves ciphertext queued in the socket (back-pressure).
    static constexpr std::size_t kPlainHighWater = 64 * 1024;
    // Plaintext encrypted per send round: bounds the ciphertext held per socket.
    static constexpr std::size_t kEncryptChunk = 64 * 1024;

    // A client session that sends SNI for host (unless host is an IP literal),
    // verifies the certificate against host (DNS name or IP address), and offers
    // ALPN http/1.1. host may be "[v6]". Null when wolfSSL cannot allocate.
    static std::unique_ptr<TlsSession> client(const TlsClientContext& ctx, std::string_view host);
    // A server session. Null when wolfSSL cannot allocate.
    static std::unique_ptr<TlsSession> server(const TlsServerContext& ctx);

    ~TlsSession();
    TlsSession(const TlsSession&) = delete;
    TlsSession& operator=(const TlsSession&) = delete;

    bool is_server() const noexcept { return is_server_; }
    bool handshake_done() const noexcept { return handshake_done_; }
    // The peer sent close_notify (a TCP EOF without it also ends reading, but
    // leaves this false).
    bool close_notify_received() const noexcept { return close_notify_received_; }
    // Why the session failed ("certificate verify failed: ..."), empty while healthy.
    std::string_view error_text() const noexcept { return error_text_; }
    // "TLSv1.3" / "TLSv1.2" once the handshake is done.
    std::string_view protocol() const noexcept;
    // The ALPN protocol both sides agreed on, empty if none.
    std::string_view alpn() const noexcept;

private:
    friend class Socket;
    friend class Socket::SendAwaiter;
    friend Task<int> tls_handshake(Socket& socket, std::uint64_t deadline_ms);

    TlsSession(WOLFSSL* ssl, bool is_server) noexcept;
    static int on_wolfssl_recv(WOLFSSL* ssl, char* buf, int size, void* ctx);
    static int on_wolfssl_send(WOLFSSL* ssl, char* buf, int size, void* ctx);

    // Socket hooks.
    void bind(Socket* socket) noexcept;
    void on_received() noexcept;
    int read_state() const noexcept;
    // The oldest decrypted bytes not yet consumed (one block; more may follow).
    std::string_view plaintext() const noexcept;
    std::size_t plaintext_bytes() const noexcept { return plain_bytes_; }
    void consume_plaintext(std::size_t n) noexcept;
    // Encrypts up to kEncryptChunk of [p, p+n) into the output; returns the
    // plaintext bytes taken (0 when wolfSSL wants its output sent first), or -errno.
    int encrypt(const char* p, std::size_t n) noexcept;
    // Moves the pending output into the in-flight slot; empty when nothing waits.
    std::string_view take_ciphertext() noexcept;
    void ciphertext_sent(bool whole) noexcept;
    void send_close_notify() noexcept;

    // Handshake steps (tls_handshake()).
    enum class Step { done, want_read, again, failed };
    Step handshake_step() noexcept;
    void finish_handshake() noexcept;

    void decrypt_available() noexcept;
    bool more_to_decrypt() const noexcept;
    struct PlainBlock;
    void append_block(PlainBlock* b) noexcept;
    void release_send_buffers() noexcept;
    void fail(int wolfssl_error, std::string_view what) noexcept;
    void fail_with(int err, std::string text) noexcept;
    // The socket's error, or -EPROTO.
    int failure_code() const noexcept;

    WOLFSSL* ssl_;
    Socket* socket_ = nullptr;
    bool is_server_;
    bool handshake_done_ = false;
    bool failed_ = false;
    bool close_notify_received_ = false;
    bool reading_done_ = false;  // close_notify or TCP EOF reached the reader
    bool write_broken_ = false;  // a send stopped mid-record: no more records may follow
    bool close_notify_sent_ = false;
    // Decrypted bytes not yet consumed, in a chain of fixed blocks: bytes never
    // move once decrypted, so a view from plaintext() stays valid while new
    // plaintext arrives behind it (the relay sends from such views).
    PlainBlock* plain_head_ = nullptr;
    PlainBlock* plain_tail_ = nullptr;
    std::size_t plain_bytes_ = 0;
    std::string out_;      // ciphertext produced, not yet handed to a send
    std::string sending_;  // ciphertext of the send in flight (stable while it is)
    std::string error_text_;
};

// Runs the TLS handshake of socket (client or server, as its session says):
// drives wolfSSL over the socket's queued ciphertext and sends what it produces.
// Yields 0, or -errno: -ETIMEDOUT at deadline_ms (monotonic; 0 = none), -EPROTO
// when the peer or its certificate was refused, -ECONNRESET when the peer closed
// mid-way; the session's error_text() then says why. Afterwards the socket serves
// plaintext. The socket must have a session and be receiving.
Task<int> tls_handshake(Socket& socket, std::uint64_t deadline_ms);

}  // namespace rr::io
