#define _GNU_SOURCE
#include <malloc.h>
#include "CSystem.h"
#include <sys/socket.h>
#include <sys/sendfile.h>
#include <unistd.h>

int csystem_accept4(int fd, struct sockaddr *addr, unsigned int *addrlen, int flags) {
    return accept4(fd, addr, (socklen_t *)addrlen, flags);
}

long csystem_sendfile(int out_fd, int in_fd, long long *offset, unsigned long count) {
    off_t off = (off_t)*offset;
    ssize_t n = sendfile(out_fd, in_fd, &off, (size_t)count);
    *offset = (long long)off;
    return (long)n;
}

int csystem_gettid(void) {
    return (int)gettid();
}

int csystem_set_mmap_threshold(int bytes) {
    return mallopt(M_MMAP_THRESHOLD, bytes);
}
