/* kprof's ptrace backend test: 16 threads busy in syscalls (half getppid, half 1 us nanosleeps) for 200 ms,
   then exit_group. Every thread should make a share of the calls like its siblings' (each stopped tracee is
   handled once per round), not a few while the newest threads make thousands. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void *spin(void *arg)
{
    for (;;)
        syscall(SYS_getppid);
    return arg;
}

static void *nap(void *arg)
{
    struct timespec t = {0, 1000};
    for (;;)
        nanosleep(&t, NULL);
    return arg;
}

int main(void)
{
    pthread_t t;
    for (int i = 0; i < 16; i++)
        pthread_create(&t, NULL, (i & 1) ? spin : nap, NULL);
    usleep(200000);
    exit(0);
}
