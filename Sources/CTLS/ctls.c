#include "ctls.h"

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
