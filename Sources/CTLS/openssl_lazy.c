// OpenSSL, loaded when first used. The programs link no libssl/libcrypto: a tunnel over plain
// ws never touches TLS, and loading libcrypto (relocating and initialising it) cost ~4.4 MB of
// RSS in every idle process. Each OpenSSL function the package calls is defined here under its
// own name and forwards to the real one, looked up with dlsym in libssl.so.3 (and, through its
// dependencies, libcrypto.so.3) on first call. The Swift code and the helpers in ctls.c call
// OpenSSL as before; only functions listed here may be called.
#define _GNU_SOURCE
#include "ctls.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static void *library;
static pthread_once_t library_once = PTHREAD_ONCE_INIT;

static void open_library(void) {
    const char *names[] = {"libssl.so.3", "libssl.so"};
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !library; i++) library = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        fprintf(stderr, "remotedialer: TLS needs OpenSSL 3 (libssl.so.3): %s\n", dlerror());
        abort();
    }
}

// Looks `name` up once; `slot` caches it (a benign race: every thread stores the same pointer).
static void *resolve(void **slot, const char *name) {
    void *function = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (function) return function;
    pthread_once(&library_once, open_library);
    // The handle's lookup scope is libssl and its dependencies, so this finds the real function
    // even though the program's own stub of the same name comes first in the global scope.
    function = dlsym(library, name);
    if (!function) {
        fprintf(stderr, "remotedialer: OpenSSL has no %s\n", name);
        abort();
    }
    __atomic_store_n(slot, function, __ATOMIC_RELEASE);
    return function;
}

// Hidden: builds that export the program's symbols (SwiftPM's debug builds, for testable
// executables) would otherwise hand these stubs to libssl and libcrypto themselves, whose calls
// into each other would come back here, even from inside dlopen (pthread_once deadlocks).
#define FORWARD(ret, name, params, args) \
    __attribute__((visibility("hidden"))) ret name params { \
        static void *slot; \
        return ((__typeof__(&name))resolve(&slot, #name)) args; \
    }
#define FORWARD_VOID(name, params, args) \
    __attribute__((visibility("hidden"))) void name params { \
        static void *slot; \
        ((__typeof__(&name))resolve(&slot, #name)) args; \
    }

// libcrypto
FORWARD(const unsigned char *, ASN1_STRING_get0_data, (const ASN1_STRING *x), (x))
FORWARD(int, ASN1_STRING_length, (const ASN1_STRING *x), (x))
FORWARD(int, ASN1_STRING_to_UTF8, (unsigned char **out, const ASN1_STRING *in), (out, in))
FORWARD_VOID(BIO_clear_flags, (BIO *b, int flags), (b, flags))
FORWARD(size_t, BIO_ctrl_pending, (BIO *b), (b))
FORWARD(int, BIO_free, (BIO *a), (a))
FORWARD(void *, BIO_get_data, (BIO *a), (a))
FORWARD(int, BIO_get_new_index, (void), ())
FORWARD(BIO_METHOD *, BIO_meth_new, (int type, const char *name), (type, name))
FORWARD(int, BIO_meth_set_ctrl, (BIO_METHOD *biom, long (*ctrl)(BIO *, int, long, void *)), (biom, ctrl))
FORWARD(int, BIO_meth_set_destroy, (BIO_METHOD *biom, int (*destroy)(BIO *)), (biom, destroy))
FORWARD(int, BIO_meth_set_read, (BIO_METHOD *biom, int (*read)(BIO *, char *, int)), (biom, read))
FORWARD(int, BIO_meth_set_write, (BIO_METHOD *biom, int (*write)(BIO *, const char *, int)), (biom, write))
FORWARD(BIO *, BIO_new, (const BIO_METHOD *type), (type))
FORWARD(int, BIO_read, (BIO *b, void *data, int dlen), (b, data, dlen))
FORWARD(const BIO_METHOD *, BIO_s_mem, (void), ())
FORWARD_VOID(BIO_set_data, (BIO *a, void *ptr), (a, ptr))
FORWARD_VOID(BIO_set_flags, (BIO *b, int flags), (b, flags))
FORWARD_VOID(BIO_set_init, (BIO *a, int init), (a, init))
FORWARD(int, BIO_write, (BIO *b, const void *data, int dlen), (b, data, dlen))
FORWARD_VOID(CRYPTO_free, (void *ptr, const char *file, int line), (ptr, file, line))
FORWARD_VOID(ERR_clear_error, (void), ())
FORWARD_VOID(ERR_error_string_n, (unsigned long e, char *buf, size_t len), (e, buf, len))
FORWARD(unsigned long, ERR_get_error, (void), ())
FORWARD(const char *, ERR_reason_error_string, (unsigned long e), (e))
FORWARD_VOID(GENERAL_NAMES_free, (GENERAL_NAMES *a), (a))
FORWARD(int, OPENSSL_sk_num, (const OPENSSL_STACK *st), (st))
FORWARD(void *, OPENSSL_sk_value, (const OPENSSL_STACK *st, int i), (st, i))
FORWARD(unsigned char *, SHA256, (const unsigned char *d, size_t n, unsigned char *md), (d, n, md))
FORWARD(ASN1_STRING *, X509_NAME_ENTRY_get_data, (const X509_NAME_ENTRY *ne), (ne))
FORWARD(X509_NAME_ENTRY *, X509_NAME_get_entry, (const X509_NAME *name, int loc), (name, loc))
FORWARD(int, X509_NAME_get_index_by_NID, (const X509_NAME *name, int nid, int lastpos), (name, nid, lastpos))
FORWARD_VOID(X509_STORE_free, (X509_STORE *store), (store))
FORWARD(int, X509_STORE_load_file, (X509_STORE *ctx, const char *file), (ctx, file))
FORWARD(X509_STORE *, X509_STORE_new, (void), ())
FORWARD(int, X509_VERIFY_PARAM_set1_ip_asc, (X509_VERIFY_PARAM *param, const char *ipasc), (param, ipasc))
FORWARD_VOID(X509_free, (X509 *a), (a))
FORWARD(void *, X509_get_ext_d2i, (const X509 *x, int nid, int *crit, int *idx), (x, nid, crit, idx))
FORWARD(X509_NAME *, X509_get_subject_name, (const X509 *a), (a))
FORWARD(const char *, X509_verify_cert_error_string, (long n), (n))
FORWARD(int, i2d_X509, (const X509 *a, unsigned char **out), (a, out))

// libssl
FORWARD(int, SSL_CTX_check_private_key, (const SSL_CTX *ctx), (ctx))
FORWARD(long, SSL_CTX_ctrl, (SSL_CTX *ctx, int cmd, long larg, void *parg), (ctx, cmd, larg, parg))
FORWARD_VOID(SSL_CTX_free, (SSL_CTX *ctx), (ctx))
FORWARD(int, SSL_CTX_load_verify_locations, (SSL_CTX *ctx, const char *CAfile, const char *CApath), (ctx, CAfile, CApath))
FORWARD(SSL_CTX *, SSL_CTX_new, (const SSL_METHOD *meth), (meth))
FORWARD(int, SSL_CTX_set_alpn_protos, (SSL_CTX *ctx, const unsigned char *protos, unsigned int protos_len), (ctx, protos, protos_len))
FORWARD_VOID(SSL_CTX_set_alpn_select_cb, (SSL_CTX *ctx, SSL_CTX_alpn_select_cb_func cb, void *arg), (ctx, cb, arg))
FORWARD_VOID(SSL_CTX_set_client_CA_list, (SSL_CTX *ctx, STACK_OF(X509_NAME) *name_list), (ctx, name_list))
FORWARD(int, SSL_CTX_set_default_verify_paths, (SSL_CTX *ctx), (ctx))
FORWARD(uint64_t, SSL_CTX_set_options, (SSL_CTX *ctx, uint64_t op), (ctx, op))
FORWARD(int, SSL_CTX_set_session_id_context, (SSL_CTX *ctx, const unsigned char *sid_ctx, unsigned int sid_ctx_len), (ctx, sid_ctx, sid_ctx_len))
FORWARD_VOID(SSL_CTX_set_verify, (SSL_CTX *ctx, int mode, SSL_verify_cb callback), (ctx, mode, callback))
FORWARD(int, SSL_CTX_use_PrivateKey_file, (SSL_CTX *ctx, const char *file, int type), (ctx, file, type))
FORWARD(int, SSL_CTX_use_certificate_chain_file, (SSL_CTX *ctx, const char *file), (ctx, file))
FORWARD(long, SSL_ctrl, (SSL *ssl, int cmd, long larg, void *parg), (ssl, cmd, larg, parg))
FORWARD(int, SSL_do_handshake, (SSL *s), (s))
FORWARD_VOID(SSL_free, (SSL *ssl), (ssl))
FORWARD_VOID(SSL_get0_alpn_selected, (const SSL *ssl, const unsigned char **data, unsigned int *len), (ssl, data, len))
FORWARD(X509_VERIFY_PARAM *, SSL_get0_param, (SSL *ssl), (ssl))
FORWARD(X509 *, SSL_get1_peer_certificate, (const SSL *s), (s))
FORWARD(int, SSL_get_error, (const SSL *s, int ret_code), (s, ret_code))
FORWARD(int, SSL_get_verify_mode, (const SSL *s), (s))
FORWARD(long, SSL_get_verify_result, (const SSL *ssl), (ssl))
FORWARD(const char *, SSL_get_version, (const SSL *s), (s))
FORWARD(STACK_OF(X509_NAME) *, SSL_load_client_CA_file, (const char *file), (file))
FORWARD(SSL *, SSL_new, (SSL_CTX *ctx), (ctx))
FORWARD(int, SSL_read_ex, (SSL *ssl, void *buf, size_t num, size_t *readbytes), (ssl, buf, num, readbytes))
FORWARD(int, SSL_select_next_proto, (unsigned char **out, unsigned char *outlen, const unsigned char *in, unsigned int inlen,
                                     const unsigned char *client, unsigned int client_len), (out, outlen, in, inlen, client, client_len))
FORWARD(int, SSL_set1_host, (SSL *s, const char *hostname), (s, hostname))
FORWARD_VOID(SSL_set_accept_state, (SSL *s), (s))
FORWARD_VOID(SSL_set_bio, (SSL *s, BIO *rbio, BIO *wbio), (s, rbio, wbio))
FORWARD_VOID(SSL_set_connect_state, (SSL *s), (s))
FORWARD_VOID(SSL_set_verify, (SSL *s, int mode, SSL_verify_cb callback), (s, mode, callback))
FORWARD(int, SSL_shutdown, (SSL *s), (s))
FORWARD(int, SSL_write_ex, (SSL *s, const void *buf, size_t num, size_t *written), (s, buf, num, written))
FORWARD(const SSL_METHOD *, TLS_method, (void), ())
