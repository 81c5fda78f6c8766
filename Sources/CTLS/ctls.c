#include "ctls.h"
#include <stdio.h>

void ctls_sha1(const void *bytes, size_t length, unsigned char *digest) {
    SHA1((const unsigned char *)bytes, length, digest);
}

void ctls_sha256(const void *bytes, size_t length, unsigned char *digest) {
    SHA256((const unsigned char *)bytes, length, digest);
}

int ctls_base64_encode(const void *bytes, size_t length, char *output) {
    return EVP_EncodeBlock((unsigned char *)output, (const unsigned char *)bytes, (int)length);
}

int ctls_random_bytes(void *bytes, int length) {
    return RAND_bytes((unsigned char *)bytes, length);
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
