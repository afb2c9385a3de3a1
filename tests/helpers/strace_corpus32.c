/* A 32-bit program (gcc -m32) that runs a 64-bit one: a trace with two personalities, two strace summary tables.
   strace_corpus32 PROGRAM ARGS… */
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char b[4];
    getpid();                                    /* a call both ABIs have: 20 on i386, 39 on x86_64 */
    int fd = open("/dev/null", O_RDONLY);
    read(fd, b, sizeof b);
    lseek(fd, 0, SEEK_SET);                      /* _llseek on i386 */
    close(fd);
    if (argc < 2) return 2;
    pid_t c = fork();
    if (c == 0) { execv(argv[1], argv + 1); _exit(127); }
    waitpid(c, NULL, 0);
    return 0;
}
