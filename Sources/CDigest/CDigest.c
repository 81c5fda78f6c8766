#include "CDigest.h"
#include <stdint.h>
#include <string.h>
#include <sys/random.h>

// SHA-1, base64 and randomness without libcrypto: every WebSocket handshake and client frame
// needs them, and neither the WebSocket layer nor a TLS-less program should depend on OpenSSL.
// SHA-1 serves only the handshake's accept key (RFC 6455 §4.2.2), not security.

static uint32_t rotl(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1_block(uint32_t h[5], const unsigned char *block) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++) {
        w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 | (uint32_t)block[4 * i + 2] << 8 | block[4 * i + 3];
    }
    for (int i = 16; i < 80; i++) w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
        else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
        else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
        else { f = b ^ c ^ d; k = 0xCA62C1D6; }
        uint32_t t = rotl(a, 5) + f + e + k + w[i];
        e = d; d = c; c = rotl(b, 30); b = a; a = t;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
}

void cdigest_sha1(const void *bytes, size_t length, unsigned char *digest) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    const unsigned char *input = bytes;
    size_t full = length / 64 * 64;
    for (size_t offset = 0; offset < full; offset += 64) sha1_block(h, input + offset);
    // The tail, 0x80, zeros and the bit length: one or two more blocks.
    unsigned char tail[128] = {0};
    size_t rest = length - full;
    if (rest) memcpy(tail, input + full, rest);
    tail[rest] = 0x80;
    size_t blocks = rest < 56 ? 1 : 2;
    uint64_t bits = (uint64_t)length * 8;
    for (int i = 0; i < 8; i++) tail[blocks * 64 - 1 - i] = (unsigned char)(bits >> (8 * i));
    for (size_t i = 0; i < blocks; i++) sha1_block(h, tail + 64 * i);
    for (int i = 0; i < 5; i++) {
        digest[4 * i] = (unsigned char)(h[i] >> 24);
        digest[4 * i + 1] = (unsigned char)(h[i] >> 16);
        digest[4 * i + 2] = (unsigned char)(h[i] >> 8);
        digest[4 * i + 3] = (unsigned char)h[i];
    }
}

int cdigest_base64_encode(const void *bytes, size_t length, char *output) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *in = bytes;
    char *out = output;
    size_t i = 0;
    for (; i + 3 <= length; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = alphabet[v >> 18]; *out++ = alphabet[(v >> 12) & 63]; *out++ = alphabet[(v >> 6) & 63]; *out++ = alphabet[v & 63];
    }
    if (i < length) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < length ? (uint32_t)in[i + 1] << 8 : 0);
        *out++ = alphabet[v >> 18];
        *out++ = alphabet[(v >> 12) & 63];
        *out++ = i + 1 < length ? alphabet[(v >> 6) & 63] : '=';
        *out++ = '=';
    }
    *out = 0;
    return (int)(out - output);
}

int cdigest_random_bytes(void *bytes, int length) {
    unsigned char *out = bytes;
    size_t remaining = (size_t)length;
    while (remaining > 0) {
        ssize_t n = getrandom(out, remaining, 0);
        if (n < 0) return 0;
        out += n;
        remaining -= (size_t)n;
    }
    return 1;
}
