/* kprof's ptrace backend test: 16 threads busy in syscalls (half getppid, half 1 us nanosleeps) for 200 ms,
   then exit_group. They start together (a barrier), so every thread should make a share of the calls like its
   siblings' (each stopped tracee is handled once per round), not a few while the newest threads make
   thousands. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define THREADS 16

static pthread_barrier_t start;

static void *spin(void *arg)
{
    pthread_barrier_wait(&start);
    for (;;)
        syscall(SYS_getppid);
    return arg;
}

static void *nap(void *arg)
{
    struct timespec t = {0, 1000};
    pthread_barrier_wait(&start);
    for (;;)
        nanosleep(&t, NULL);
    return arg;
}

int main(void)
{
    pthread_t t;
    pthread_barrier_init(&start, NULL, THREADS + 1);
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t, NULL, (i & 1) ? spin : nap, NULL);
    pthread_barrier_wait(&start);
    usleep(200000);
    exit(0);
}
