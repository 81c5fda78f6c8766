#include "ctls.h"
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ctls_sha256(const void *bytes, size_t length, unsigned char *digest) {
    SHA256((const unsigned char *)bytes, length, digest);
}

int ctls_ctx_set_min_tls12(SSL_CTX *ctx) { return (int)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION); }
int ctls_ctx_set_min_tls13(SSL_CTX *ctx) { return (int)SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION); }

void ctls_ctx_set_stream_mode(SSL_CTX *ctx) {
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
}

void ctls_ctx_set_secure_options(SSL_CTX *ctx) {
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
}

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg) {
    const struct ctls_alpn_list *ours = arg;
    (void)ssl;
    unsigned char *selected = NULL;
    if (inlen > 0 && SSL_select_next_proto(&selected, outlen, ours->protocols, ours->length, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
        *out = selected;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

void ctls_ctx_select_alpn(SSL_CTX *ctx, const struct ctls_alpn_list *list) {
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, (void *)list);
}

int ctls_set_server_name(SSL *ssl, const char *name) { return (int)SSL_set_tlsext_host_name(ssl, name); }

void ctls_pop_error(char *buffer, size_t length) {
    unsigned long code = ERR_get_error();
    buffer[0] = 0;
    if (code != 0) {
        const char *reason = ERR_reason_error_string(code);
        if (reason) {
            snprintf(buffer, length, "%s", reason);
        } else {
            ERR_error_string_n(code, buffer, length);
        }
    }
    ERR_clear_error();
}

void ctls_clear_errors(void) { ERR_clear_error(); }

int ctls_set1_verify_store(SSL *ssl, X509_STORE *store) { return (int)SSL_set1_verify_cert_store(ssl, store); }

unsigned char *ctls_x509_common_name(X509 *certificate, int *length) {
    X509_NAME *subject = X509_get_subject_name(certificate);
    int index = -1, last = -1;
    while ((index = X509_NAME_get_index_by_NID(subject, NID_commonName, index)) >= 0) last = index;
    if (last < 0) return NULL;
    unsigned char *utf8 = NULL;
    *length = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, last)));
    return *length < 0 ? NULL : utf8;
}

void ctls_free(void *pointer) { OPENSSL_free(pointer); }

GENERAL_NAMES *ctls_x509_subject_alt_names(X509 *certificate) {
    return X509_get_ext_d2i(certificate, NID_subject_alt_name, NULL, NULL);
}

int ctls_general_names_count(const GENERAL_NAMES *names) { return sk_GENERAL_NAME_num(names); }

int ctls_general_name(const GENERAL_NAMES *names, int index, const unsigned char **bytes, int *length) {
    const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, index);
    const ASN1_STRING *value = NULL;
    if (name->type == GEN_DNS) value = name->d.dNSName;
    if (name->type == GEN_IPADD) value = name->d.iPAddress;
    *bytes = value ? ASN1_STRING_get0_data(value) : NULL;
    *length = value ? ASN1_STRING_length(value) : 0;
    return name->type;
}

void ctls_general_names_free(GENERAL_NAMES *names) { GENERAL_NAMES_free(names); }

// The window BIO (see ctls.h).
struct window_state { const unsigned char *bytes; size_t length; size_t taken; };
static BIO_METHOD *window_method;
static pthread_once_t window_method_once = PTHREAD_ONCE_INIT;

static int window_read(BIO *bio, char *out, int capacity) {
    struct window_state *state = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    if (!state || capacity <= 0) return 0;
    size_t left = state->length - state->taken;
    if (left == 0) {
        BIO_set_retry_read(bio);
        return -1;
    }
    size_t count = left < (size_t)capacity ? left : (size_t)capacity;
    memcpy(out, state->bytes + state->taken, count);
    state->taken += count;
    return (int)count;
}

static long window_ctrl(BIO *bio, int command, long number, void *pointer) {
    (void)number; (void)pointer;
    struct window_state *state = BIO_get_data(bio);
    switch (command) {
    case BIO_CTRL_PENDING: return state ? (long)(state->length - state->taken) : 0;
    case BIO_CTRL_FLUSH: return 1;
    default: return 0;
    }
}

static int window_destroy(BIO *bio) {
    free(BIO_get_data(bio));
    BIO_set_data(bio, NULL);
    return 1;
}

static void make_window_method(void) {
    window_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "remotedialer lent ciphertext");
    if (!window_method) return;
    BIO_meth_set_read(window_method, window_read);
    BIO_meth_set_ctrl(window_method, window_ctrl);
    BIO_meth_set_destroy(window_method, window_destroy);
}

BIO *ctls_window_bio_new(void) {
    pthread_once(&window_method_once, make_window_method);
    if (!window_method) return NULL;
    struct window_state *state = calloc(1, sizeof *state);
    if (!state) return NULL;
    BIO *bio = BIO_new(window_method);
    if (!bio) { free(state); return NULL; }
    BIO_set_data(bio, state);
    BIO_set_init(bio, 1);
    return bio;
}

void ctls_window_bio_set(BIO *bio, const void *bytes, size_t length) {
    struct window_state *state = BIO_get_data(bio);
    if (!state) return;
    state->bytes = bytes;
    state->length = bytes ? length : 0;
    state->taken = 0;
}

size_t ctls_window_bio_taken(BIO *bio) {
    struct window_state *state = BIO_get_data(bio);
    return state ? state->taken : 0;
}

// The sink BIO (see ctls.h). Its method table is made once and shared by every BIO.
struct sink_state { ctls_sink sink; void *context; };
static BIO_METHOD *sink_method;
static pthread_once_t sink_method_once = PTHREAD_ONCE_INIT;

static int sink_write(BIO *bio, const char *bytes, int length) {
    struct sink_state *state = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    if (!state || !state->context) return -1;
    return state->sink(state->context, bytes, length);
}

static long sink_ctrl(BIO *bio, int command, long number, void *pointer) {
    (void)bio; (void)number; (void)pointer;
    // OpenSSL flushes after each flight of handshake records: nothing is held here to flush.
    return command == BIO_CTRL_FLUSH ? 1 : 0;
}

static int sink_destroy(BIO *bio) {
    free(BIO_get_data(bio));
    BIO_set_data(bio, NULL);
    return 1;
}

static void make_sink_method(void) {
    sink_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "remotedialer stream sink");
    if (!sink_method) return;
    BIO_meth_set_write(sink_method, sink_write);
    BIO_meth_set_ctrl(sink_method, sink_ctrl);
    BIO_meth_set_destroy(sink_method, sink_destroy);
}

BIO *ctls_sink_bio_new(ctls_sink sink) {
    pthread_once(&sink_method_once, make_sink_method);
    if (!sink_method) return NULL;
    struct sink_state *state = calloc(1, sizeof *state);
    if (!state) return NULL;
    BIO *bio = BIO_new(sink_method);
    if (!bio) { free(state); return NULL; }
    state->sink = sink;
    BIO_set_data(bio, state);
    BIO_set_init(bio, 1);
    return bio;
}

void ctls_sink_bio_set_context(BIO *bio, void *context) {
    struct sink_state *state = BIO_get_data(bio);
    if (state) state->context = context;
}
