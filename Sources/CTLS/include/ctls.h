#ifndef CTLS_H
#define CTLS_H
// The few OpenSSL entry points Swift cannot reach directly (macros), and SHA-256.
// Everything else is called from Swift; the TLS logic lives there. OpenSSL itself is loaded on
// first use (openssl_lazy.c): only the functions forwarded there may be called.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/rand.h>

/// SHA-256 into `digest` (32 bytes).
void ctls_sha256(const void *bytes, size_t length, unsigned char *digest);


/// A write-only BIO that hands each piece of ciphertext OpenSSL writes to `sink(context, bytes,
/// length)` at once, unbuffered: a stream's write path then takes it straight from OpenSSL's
/// record buffer, with none of a memory BIO's two copies. `sink` returns `length` (it takes all)
/// or -1 (the stream is gone). Set the context with `ctls_sink_bio_set_context` before use.
typedef int (*ctls_sink)(void *context, const void *bytes, int length);
BIO *ctls_sink_bio_new(ctls_sink sink);
void ctls_sink_bio_set_context(BIO *bio, void *context);

/// A read-only BIO over bytes the caller lends (`ctls_window_bio_set`): OpenSSL reads them in
/// place, with none of a memory BIO's copy in; when they are used up a read asks to retry.
/// `ctls_window_bio_taken` tells how many it has read since the last set.
BIO *ctls_window_bio_new(void);
void ctls_window_bio_set(BIO *bio, const void *bytes, size_t length);
size_t ctls_window_bio_taken(BIO *bio);

/// Macros Swift cannot call, as functions.
int ctls_ctx_set_min_tls12(SSL_CTX *ctx);
int ctls_ctx_set_min_tls13(SSL_CTX *ctx);
/// Partial writes, moving write buffers, buffers released when idle.
void ctls_ctx_set_stream_mode(SSL_CTX *ctx);
/// No renegotiation, no compression; servers choose the cipher.
void ctls_ctx_set_secure_options(SSL_CTX *ctx);
/// A server's ALPN protocols in wire format (length-prefixed names), in its order of preference.
struct ctls_alpn_list { const unsigned char *protocols; unsigned int length; };
/// Server: answer ALPN with the first protocol of `list` the client offers; no ALPN if none is.
/// `list` must outlive the context.
void ctls_ctx_select_alpn(SSL_CTX *ctx, const struct ctls_alpn_list *list);
int ctls_set_server_name(SSL *ssl, const char *name);
/// The oldest error on this thread's queue as "reason" text (library detail dropped), and
/// clears the queue; "" if none.
void ctls_pop_error(char *buffer, size_t length);
void ctls_clear_errors(void);

/// Mutual TLS (server): verify client certificates against `store` only, not the context's
/// store (which holds the roots a client connection trusts). Takes its own reference.
int ctls_set1_verify_store(SSL *ssl, X509_STORE *store);

/// Reading a verified certificate. The subject's most specific (last) commonName as UTF-8, its
/// length in `*length`; NULL if it has none. Free it with `ctls_free`.
unsigned char *ctls_x509_common_name(X509 *certificate, int *length);
void ctls_free(void *pointer);
/// The subjectAltName entries; NULL if the certificate has none. Free with `ctls_general_names_free`.
GENERAL_NAMES *ctls_x509_subject_alt_names(X509 *certificate);
int ctls_general_names_count(const GENERAL_NAMES *names);
/// The type of entry `index` (GEN_DNS, GEN_IPADD, …); for those two, its bytes (borrowed from
/// `names`): a DNS name's characters, an address's 4 or 16 bytes.
int ctls_general_name(const GENERAL_NAMES *names, int index, const unsigned char **bytes, int *length);
void ctls_general_names_free(GENERAL_NAMES *names);

#endif
