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
// start-up, on one thread; every shard creates its sessions from it concurrently.
// A server context's certificates can be reloaded from any thread while shards
// run (reload(): a new set of wolfSSL contexts replaces the old one for new
// handshakes; each session keeps the set it began with alive until it is freed).
// The client context's resumption cache is locked (touched once per upstream
// connect, never per request). A session belongs to one socket and is used only
// on that socket's shard. Contexts must outlive every session made from them.
// wolfSSL_Init()/wolfSSL_Cleanup() are reference counted by wolfSSL: the first
// context constructed initialises the library, the last one destroyed (at exit,
// on the start-up thread) cleans it up.
//
// Errors: contexts throw std::runtime_error at start-up with a one-line reason
// (file, and what is wrong with it). Sessions report failures through the
// socket (readers and senders get -EPROTO, or the TCP error that caused it) and
// keep a readable reason in error_text().
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ringrelay/io/socket.hpp"
#include "ringrelay/io/task.hpp"

struct WOLFSSL_CTX;
struct WOLFSSL;
struct WOLFSSL_SESSION;

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

    // Session resumption to upstreams: the last resumable session (TLS 1.2 session
    // or TLS 1.3 ticket) of each resume key (an upstream target), offered again by
    // the next client session made with that key. Holds one session per key.
    void remember_session(const std::string& resume_key, WOLFSSL* ssl) const noexcept;
    // Offers the remembered session of resume_key to ssl; false when there is none.
    bool offer_session(const std::string& resume_key, WOLFSSL* ssl) const noexcept;
    // Forgets resume_key's session (the server refused it, or the handshake failed).
    void forget_session(const std::string& resume_key) const noexcept;
    std::size_t remembered_sessions() const noexcept;

private:
    WOLFSSL_CTX* ctx_ = nullptr;
    bool system_cas_loaded_ = false;
    mutable std::mutex sessions_mu_;
    mutable std::unordered_map<std::string, WOLFSSL_SESSION*> sessions_;
};

// A certificate chain and its private key, PEM files.
struct TlsCertificateFiles {
    std::string cert_file;
    std::string key_file;
};

class TlsCertificateSet;  // the wolfSSL contexts of one load of the certificates (tls.cpp)
class TlsTicketKeys;      // the session ticket keys of a listener (tls.cpp)

// The listener's context: one or several certificate chains with their private
// keys, PEM files. Serves TLS 1.2 and 1.3, answers ALPN "http/1.1", and issues
// session tickets (resumption without a server-side cache).
//
// Several certificates are chosen by SNI: each one answers the DNS names of its
// certificate (subjectAltName DNS entries, else the subject CN; "*.example.com"
// covers one label), an exact name before a wildcard, the first listed when two
// claim the same name. The first certificate is the default: it answers clients
// that send no SNI or a name no certificate has.
//
// Ticket keys are random, made in memory (never written or logged), shared by
// every certificate and kept across reload(): a new key encrypts tickets every
// kTicketKeyRotation, the one before still decrypts them (and its tickets are
// re-issued under the new key), so a ticket lives at most two rotations.
class TlsServerContext {
public:
    static constexpr std::uint64_t kTicketKeyRotationSeconds = 3600;

    // Throws std::runtime_error naming the file and the problem when the
    // certificate or key cannot be read, parsed, or do not belong together.
    TlsServerContext(const std::string& cert_file, const std::string& key_file);
    // Several certificates, the first being the default (at least one).
    explicit TlsServerContext(std::vector<TlsCertificateFiles> certificates);
    ~TlsServerContext();
    TlsServerContext(const TlsServerContext&) = delete;
    TlsServerContext& operator=(const TlsServerContext&) = delete;

    // Reads every certificate and key again (the same files) and, when all load,
    // serves new handshakes with them; sessions already made keep theirs. When any
    // file is bad, keeps the certificates in use and returns why (the same message
    // the constructor would throw); empty on success. Any thread, while shards run.
    std::string reload();
    // How many times the certificates were loaded (1 after construction).
    std::uint64_t generation() const noexcept;
    // The names the certificates answer, in order, for the start-up log
    // ("default" first, then each certificate's names).
    std::vector<std::string> server_names() const;

    // The default certificate's wolfSSL context, valid until the next reload().
    WOLFSSL_CTX* native() const noexcept;

    // Starts a new ticket key now (the clock does it every kTicketKeyRotationSeconds).
    void rotate_ticket_key() noexcept;

private:
    friend class TlsSession;
    std::shared_ptr<const TlsCertificateSet> current() const noexcept;

    std::vector<TlsCertificateFiles> files_;
    std::shared_ptr<TlsTicketKeys> tickets_;
    mutable std::mutex mu_;  // guards current_ and generation_
    std::shared_ptr<const TlsCertificateSet> current_;
    std::uint64_t generation_ = 0;
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
    // ALPN http/1.1. host may be "[v6]". With a resume_key (say, the upstream's
    // address and host), it offers the session remembered for that key and, once
    // the server grants a resumable session, remembers it for the next one.
    // Null when wolfSSL cannot allocate.
    static std::unique_ptr<TlsSession> client(const TlsClientContext& ctx, std::string_view host,
                                              std::string_view resume_key = {});
    // A server session with the context's current certificates. Null when wolfSSL
    // cannot allocate.
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
    // The handshake resumed an earlier session (ticket or session id).
    bool resumed() const noexcept;
    // The SNI name the client sent (server side), empty if none.
    std::string_view server_name() const noexcept;

private:
    friend class Socket;
    friend class Socket::SendAwaiter;
    friend Task<int> tls_handshake(Socket& socket, std::uint64_t deadline_ms);

    TlsSession(WOLFSSL* ssl, bool is_server) noexcept;
    static int on_wolfssl_ticket(WOLFSSL* ssl, const unsigned char* ticket, int size, void* ctx);
    void remember_for_resumption() noexcept;
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
    // Server: the certificates this session was made with, alive while it is.
    std::shared_ptr<const TlsCertificateSet> certificates_;
    // Client resumption: where to remember the session, and whether a TLS 1.3
    // ticket came since the last time it was remembered.
    const TlsClientContext* resume_ctx_ = nullptr;
    std::string resume_key_;
    bool ticket_arrived_ = false;
};

// Runs the TLS handshake of socket (client or server, as its session says):
// drives wolfSSL over the socket's queued ciphertext and sends what it produces.
// Yields 0, or -errno: -ETIMEDOUT at deadline_ms (monotonic; 0 = none), -EPROTO
// when the peer or its certificate was refused, -ECONNRESET when the peer closed
// mid-way; the session's error_text() then says why. Afterwards the socket serves
// plaintext. The socket must have a session and be receiving.
Task<int> tls_handshake(Socket& socket, std::uint64_t deadline_ms);

}  // namespace rr::io
