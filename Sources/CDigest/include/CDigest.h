#ifndef CDIGEST_H
#define CDIGEST_H
// SHA-1, base64 and randomness, with no library beneath: the WebSocket layer's needs.
#include <stddef.h>

/// SHA-1 of `length` bytes into `digest` (20 bytes): the WebSocket accept key.
void cdigest_sha1(const void *bytes, size_t length, unsigned char *digest);
/// Standard base64 with padding; `output` needs 4 * ((length + 2) / 3) + 1 bytes. Returns the length written.
int cdigest_base64_encode(const void *bytes, size_t length, char *output);
/// Cryptographically strong random bytes (getrandom(2)); returns 1 on success.
int cdigest_random_bytes(void *bytes, int length);

#endif
