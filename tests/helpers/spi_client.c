/* A minimal SPI radio client that is not kprof's: the open/flock/GPIO-reset sequence of
 * ../shared/reference/spi-radio.md §2 (Pi constants: argv[1] = /dev/spidev0.0, reset GPIO 4), then
 * GetVersion framed as §4 (one SPI_IOC_MESSAGE(1) per bit-reversed byte, 2-ioctl empty polls with a
 * 1 ms sleep, at most 50). Prints the version on stdout; the client's messages and exit statuses of
 * §10 on failure. Written for kprof's tests; compiled by the test. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct xfer {
    uint64_t tx_buf, rx_buf;
    uint32_t len, speed_hz;
    uint16_t delay_usecs;
    uint8_t bits_per_word, cs_change, tx_nbits, rx_nbits, word_delay_usecs, pad;
};

#define SPI_IOC_MESSAGE_1 0x40206B00UL
#define GPIO "/sys/class/gpio"

static int fd;
static const char *dev;

static uint8_t rev(uint8_t b)
{
    uint8_t r = 0;
    for (int i = 0; i < 8; i++)
        r |= ((b >> i) & 1) << (7 - i);
    return r;
}

static uint8_t xfer(uint8_t logical)
{
    uint8_t tx = rev(logical), rx = 0;
    struct xfer x = {.tx_buf = (uintptr_t)&tx, .rx_buf = (uintptr_t)&rx, .len = 1, .speed_hz = 62500,
                     .bits_per_word = 8};
    ioctl(fd, SPI_IOC_MESSAGE_1, &x);
    return rev(rx);
}

static int put(const char *path, const char *value)
{
    int f = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f < 0)
        return -1;
    ssize_t n = write(f, value, strlen(value));
    int e = errno;
    close(f);
    errno = e;
    return n < 0 ? -1 : 0;
}

static int fail(const char *what)
{
    fprintf(stderr, "cannot connect to CC111x radio on %s\n%s\n", dev, what);
    close(fd);
    return 1;
}

int main(int argc, char **argv)
{
    struct stat st;
    char msg[256];

    dev = argc > 1 ? argv[1] : "/dev/spidev0.0";
    fd = open(dev, O_RDWR);
    if (fd < 0) {
        fprintf(stderr, "cannot connect to CC111x radio on %s\n%s: %s\n", dev, dev, strerror(errno));
        return 1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(msg, sizeof msg, "%s: %s", dev, errno == EWOULDBLOCK ? "device is in use" : strerror(errno));
        return fail(msg);
    }
    if (stat(GPIO "/gpio4", &st) < 0) {
        if (put(GPIO "/export", "4") < 0) {
            snprintf(msg, sizeof msg, "write " GPIO "/export: %s", strerror(errno));
            return fail(msg);
        }
        usleep(100000);
        if (stat(GPIO "/gpio4", &st) < 0)
            return fail("failed to export GPIO directory " GPIO "/gpio4");
    }
    put(GPIO "/gpio4/active_low", "1");
    put(GPIO "/gpio4/direction", "high");
    put(GPIO "/gpio4/value", "1");
    usleep(100);
    put(GPIO "/gpio4/value", "0");

    /* GetVersion: 99, n = 1, 02 */
    xfer(0x99);
    xfer(1);
    xfer(2);
    char version[256];
    size_t got = 0;
    for (int i = 0; i < 50; i++) {
        xfer(0x99);
        int c = xfer(0);
        for (int k = 0; k < c; k++) {
            uint8_t b = xfer(0);
            if (got < sizeof version - 1)
                version[got++] = (char)b;
        }
        if (c > 0) {
            version[got] = 0;
            printf("%s\n", version);
            close(fd);
            return 0;
        }
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    return fail("cc111x: no response");
}
