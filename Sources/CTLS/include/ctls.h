#ifndef CTLS_H
#define CTLS_H
// The few OpenSSL entry points Swift cannot reach directly (macros) plus digest helpers.
// Everything else is called from Swift; the TLS logic lives there.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/rand.h>

/// SHA-1 of `length` bytes into `digest` (20 bytes): the WebSocket accept key.
void ctls_sha1(const void *bytes, size_t length, unsigned char *digest);
/// SHA-256 into `digest` (32 bytes).
void ctls_sha256(const void *bytes, size_t length, unsigned char *digest);
/// Standard base64 with padding; `output` needs 4 * ((length + 2) / 3) + 1 bytes. Returns the length written.
int ctls_base64_encode(const void *bytes, size_t length, char *output);
/// Cryptographically strong random bytes; returns 1 on success.
int ctls_random_bytes(void *bytes, int length);

#endif
