/* Test corpus program for kprof's strace log parser (tests/test_strace_corpus.py), compiled at test time.

   strace_corpus DIR          threads, odd file names with ioctls, a pty, a socket, a signal, a failing execve,
                              a killed child, a child that execs this program again ("plain")
   strace_corpus det DIR      the same without threads and without the kill: the same calls on every run
   strace_corpus wait DIR     first reads one byte from stdin (a tracer attaches meanwhile), then as DIR
   strace_corpus thread-exec  a thread other than the leader calls execve
   strace_corpus plain        exits 0 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

/* a name that looks like a failed result, quotes, unbalanced brackets, a trailing '-', <>, control chars */
static const char *odd[] = {"x) = -1 ENOENT (y", "q\"uote", "un(bal[anced{", "close)]}", "trailing-",
                            "angle<b>", "tab\tnl\nname", NULL};
static volatile sig_atomic_t got;
static char *self;

static void on_usr1(int s) { got = s; }

static void *worker(void *arg) {
    char buf[16];
    int fd = open("/dev/null", O_RDONLY);
    for (int i = 0; i < 3; i++) read(fd, buf, sizeof buf);
    close(fd);
    return arg;
}

static void *exec_thread(void *arg) {
    char *argv[] = {self, "plain", NULL};
    execv(self, argv);
    _exit(127);
    return arg;
}

static int work(const char *dir, int threads) {
    if (chdir(dir) != 0) return 2;
    if (threads) {
        pthread_t t[2];
        for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, worker, NULL);
        for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    }
    for (int i = 0; odd[i]; i++) {
        int fd = open(odd[i], O_RDWR | O_CREAT, 0600);
        struct termios tio;
        ioctl(fd, TCGETS, &tio);                 /* ENOTTY on a regular file */
        ioctl(fd, 0x40206b00, NULL);             /* SPI_IOC_MESSAGE(1)'s request on a non-spi fd: ENOTTY */
        close(fd);
        open(odd[i], O_RDONLY | O_DIRECTORY);    /* ENOTDIR */
        unlink(odd[i]);
    }
    int pt = posix_openpt(O_RDWR | O_NOCTTY);
    if (pt >= 0) { int n; ioctl(pt, TIOCGPTN, &n); close(pt); }
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s >= 0) { int n; ioctl(s, FIONREAD, &n); close(s); }
    signal(SIGUSR1, on_usr1);
    raise(SIGUSR1);
    char *none[] = {"/nonexistent/prog", NULL};
    execv(none[0], none);                        /* a failing execve */
    pid_t c;
    if (threads) {
        c = fork();
        if (c == 0) { pause(); _exit(0); }
        kill(c, SIGKILL);                        /* a child killed wherever it is */
        waitpid(c, NULL, 0);
    }
    c = fork();
    if (c == 0) { char *a[] = {self, "plain", NULL}; execv(self, a); _exit(127); }
    waitpid(c, NULL, 0);
    return got == SIGUSR1 ? 0 : 1;
}

int main(int argc, char **argv) {
    self = argv[0];
    getpid();                      /* the 64-bit getpid a 32-bit parent's getpid is told apart from */
    if (argc < 2) return 2;
    if (strcmp(argv[1], "plain") == 0) return 0;
    if (strcmp(argv[1], "thread-exec") == 0) {
        pthread_t t;
        pthread_create(&t, NULL, exec_thread, NULL);
        pause();
        return 1;
    }
    if (argc > 2 && strcmp(argv[1], "det") == 0) return work(argv[2], 0);
    if (argc > 2 && strcmp(argv[1], "wait") == 0) {
        char b;
        if (read(0, &b, 1) != 1) return 3;
        return work(argv[2], 1);
    }
    return work(argv[1], 1);
}
