/* wolfSSL 5.5.4 build options for ringrelay's fallback build (subprojects/wolfssl.wrap).
 *
 * Upstream's configure passes its options as -D flags and writes them to
 * wolfssl/options.h for users. Our meson.build instead compiles the library with
 * -DWOLFSSL_USER_SETTINGS, which makes wolfssl/wolfcrypt/settings.h include this file,
 * and gives users the same flag; our wolfssl/options.h includes this file too. So the
 * library and every file that includes a wolfSSL header see one set of options.
 *
 * The set: what ringrelay uses (src/io/tls.cpp, src/store/secret.cpp), a TLS 1.2/1.3
 * client and server that talks to today's servers and clients, and the defaults of
 * configure where they matter. Debian 12's libwolfssl (configure --enable-all and
 * more) has much more; what we leave out we do not call. */
#ifndef RINGRELAY_WOLFSSL_USER_SETTINGS_H
#define RINGRELAY_WOLFSSL_USER_SETTINGS_H

/* ---- platform: what configure's checks find on Linux with gcc or clang ---------- */
#define HAVE_PTHREAD
#define HAVE_THREAD_LS        /* thread-local storage: the per-thread FP_ECC cache and
                                 error queue below, as in Debian's build */
#define HAVE_GMTIME_R         /* thread-safe time for certificate date checks */
#define HAVE_SYS_TIME_H
#define HAVE_LIMITS_H
#define HAVE_GETADDRINFO
#ifdef __SIZEOF_INT128__
    /* configure's AC_CHECK_TYPES([__uint128_t]): 128-bit products in the big-number
     * and curve25519 code. It changes types in public headers, hence here. */
    #define HAVE___UINT128_T 1
#endif
#if defined(__x86_64__)
    #define WOLFSSL_X86_64_BUILD
    #define WOLFSSL_SP_X86_64  /* inline x86_64 assembly in sp_int.c, as configure */
#endif

/* ---- hardening: configure's default (--enable-harden) ---------------------------- */
#define TFM_TIMING_RESISTANT
#define ECC_TIMING_RESISTANT
#define WC_RSA_BLINDING

/* ---- big numbers: configure's default (sp-math-all), RSA keys up to 4096 bits --- */
#define WOLFSSL_SP_MATH_ALL
#define SP_INT_BITS 4096

/* ---- random numbers: Hash_DRBG over SHA-256 (secret.cpp's wc_InitRng) ---------- */
#define HAVE_HASHDRBG

/* ---- protocol versions: TLS 1.2 and 1.3 only ------------------------------------ */
#define WOLFSSL_TLS13
#define NO_OLD_TLS            /* no TLS 1.0/1.1 code: tls.cpp sets TLS 1.2 as the minimum */
#define HAVE_TLS_EXTENSIONS
#define HAVE_SUPPORTED_CURVES /* needed by TLS 1.3 and ECDHE */
#define HAVE_EXTENDED_MASTER  /* RFC 7627, configure's default */
#define HAVE_ENCRYPT_THEN_MAC /* RFC 7366 for CBC suites, configure's default */
#define HAVE_SNI              /* wolfSSL_UseSNI: ringrelay names the upstream host */
#define HAVE_ALPN             /* wolfSSL_UseALPN / wolfSSL_ALPN_GetProtocol: http/1.1 */
#define HAVE_FFDHE_2048       /* TLS 1.3 FFDHE group and DHE suites, configure's default */
#define HAVE_DH_DEFAULT_PARAMS
/* A TLS 1.2 server says it supports secure renegotiation (RFC 5746) without doing
 * any: OpenSSL 3 clients refuse TLS 1.2 servers that do not. As Debian's. */
#define HAVE_SERVER_RENEGOTIATION_INFO
/* Session tickets stay off (configure's default): ringrelay does not resume. */

/* ---- hashes, MACs, KDFs ---------------------------------------------------------- */
#define WOLFSSL_SHA224
#define WOLFSSL_SHA384        /* TLS_AES_256_GCM_SHA384, ECDSA-P384 certificates */
#define WOLFSSL_SHA512        /* Ed25519, SHA-512 certificate signatures */
#define HAVE_HKDF             /* TLS 1.3 key schedule */

/* ---- ciphers ---------------------------------------------------------------------- */
#define HAVE_AESGCM
#define GCM_TABLE_4BIT        /* configure's default GCM table size */
#define HAVE_AES_DECRYPT
#define HAVE_CHACHA
#define HAVE_POLY1305         /* ChaCha20-Poly1305 suites */
#define NO_RC4                /* the obsolete ones, off as in configure's defaults */
#define NO_DES3
#define NO_DSA
#define NO_MD4
#define NO_PSK

/* ---- public keys ------------------------------------------------------------------ */
#define WC_RSA_PSS            /* TLS 1.3 signs with RSA-PSS; RSA upstreams need it */
#define HAVE_ECC              /* ECDSA (the test certificates are P-256) and ECDHE */
#define ECC_SHAMIR            /* faster signature checks, configure's default */
/* The fixed-point cache that speeds up ECC with the same point; tls.cpp frees each
 * thread's cache with wc_ecc_fp_free(), which exists only with FP_ECC (Debian's
 * build has it too). */
#define FP_ECC
#define HAVE_CURVE25519       /* X25519, the key share most TLS 1.3 peers send first */
#define HAVE_ED25519          /* Ed25519 certificates */

/* ---- certificates ----------------------------------------------------------------- */
#define WOLFSSL_ALT_NAMES     /* subjectAltName checks */
#define WOLFSSL_IP_ALT_NAME   /* IP addresses in subjectAltName: the test certificate's
                                 IP:127.0.0.1, checked via X509_VERIFY_PARAM_set1_ip_asc */
#define WOLFSSL_ALT_CERT_CHAINS /* verify when the peer sends extra or cross-signed
                                   certificates (common with public CAs), as Debian's */

/* ---- names ------------------------------------------------------------------------ */
/* No macros for the old names (Sha256 for wc_Sha256, RNG, ...): ringrelay has its own
 * rr::store::Sha256, which the Sha256 macro would rewrite. Debian's build sets these. */
#define NO_OLD_RNGNAME
#define NO_OLD_WC_NAMES
#define NO_OLD_SSL_NAMES
#define NO_OLD_SHA_NAMES
#define NO_OLD_MD5_NAME

/* ---- the OpenSSL-style API tls.cpp calls ------------------------------------------ */
/* wolfSSL_get0_param, wolfSSL_X509_VERIFY_PARAM_set1_ip_asc, wolfSSL_ERR_get_error,
 * wolfSSL_alert_desc_string_long. */
#define OPENSSL_EXTRA
/* wolfSSL_ERR_get_error reads the calling thread's errors (tls.cpp's start-up
 * messages), as in Debian's build. */
#define ERROR_QUEUE_PER_THREAD
/* Send an alert when a handshake fails for a bad certificate and the like, so the
 * peer learns why, as Debian's build does. */
#define WOLFSSL_EXTRA_ALERTS

#endif /* RINGRELAY_WOLFSSL_USER_SETTINGS_H */
