// The few Linux system calls that `import Glibc` does not expose to Swift.
// Deliberately does not include <sys/socket.h>: socket constants must stay in Glibc's module.
#ifndef CSYSTEM_H
#define CSYSTEM_H

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/signalfd.h>
#include <signal.h>
#include <sys/types.h>

struct sockaddr;

/// accept4(2); declared here because the Glibc module hides it without _GNU_SOURCE.
int csystem_accept4(int fd, struct sockaddr *addr, unsigned int *addrlen, int flags);

/// sendfile(2) with an in/out offset, for serving files without a user-space copy.
long csystem_sendfile(int out_fd, int in_fd, long long *offset, unsigned long count);

/// The calling thread's kernel thread id (gettid), used for loop-confinement checks in logs.
int csystem_gettid(void);

/// mallopt(M_MMAP_THRESHOLD, bytes): <malloc.h> is not in the Glibc module.
int csystem_set_mmap_threshold(int bytes);

#endif
