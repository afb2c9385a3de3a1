/* A spidev user that is not kprof's pump client: SPI_IOC_MESSAGE(N) transfers of several shapes on the
 * device path given as argv[1], one result line per case:
 *     case=NAME ret=R errno=E rx=HEX
 * Used by tests/test_spi.py: under kprof's ptrace tracer the placeholder node must answer as spidev does
 * (../shared/reference/spi-radio.md §3.3, §8.3). Written for kprof's tests; compiled by the test. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

struct xfer {                     /* struct spi_ioc_transfer (linux/spi/spidev.h), 32 bytes */
    uint64_t tx_buf, rx_buf;
    uint32_t len, speed_hz;
    uint16_t delay_usecs;
    uint8_t bits_per_word, cs_change, tx_nbits, rx_nbits, word_delay_usecs, pad;
};

#define IOC(dir, nr, size) (((unsigned long)(dir) << 30) | ((unsigned long)(size) << 16) | ('k' << 8) | (nr))
#define MSG(n) IOC(1, 0, 32 * (n))

static int fd;

static void report(const char *name, long ret, const uint8_t *rx, size_t n)
{
    int e = ret < 0 ? errno : 0;
    printf("case=%s ret=%ld errno=%d rx=", name, ret, e);
    for (size_t i = 0; i < n; i++)
        printf("%02x", rx[i]);
    printf("\n");
}

static void one(struct xfer *x, const uint8_t *tx, uint8_t *rx, uint32_t len)
{
    memset(x, 0, sizeof *x);
    x->tx_buf = (uintptr_t)tx;
    x->rx_buf = (uintptr_t)rx;
    x->len = len;
    x->speed_hz = 62500;
    x->bits_per_word = 8;
}

int main(int argc, char **argv)
{
    static uint8_t big[8192];
    struct xfer x[3];
    uint8_t rx[16];
    long r;

    if (argc < 2)
        return 2;
    fd = open(argv[1], O_RDWR);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    /* N = 3 single bytes: a whole GetVersion command frame (wire 99 80 40 = logical 99 01 02) */
    static const uint8_t version[] = {0x99, 0x80, 0x40};
    memset(rx, 0xee, sizeof rx);
    for (int i = 0; i < 3; i++)
        one(&x[i], version + i, rx + i, 1);
    r = ioctl(fd, MSG(3), x);
    report("msg3-version", r, rx, 3);

    /* N = 2, mixed lengths 1 + 16: a poll frame fetching the 15-byte version reply and its 00 */
    static const uint8_t poll[17] = {0x99};
    memset(rx, 0xee, sizeof rx);
    static uint8_t rx2[17];
    one(&x[0], poll, rx2, 1);
    one(&x[1], poll + 1, rx2 + 1, 16);
    r = ioctl(fd, MSG(2), x);
    report("msg2-mixed", r, rx2, 17);

    /* N = 1, one byte (the client's only shape) */
    static const uint8_t marker = 0x99;
    one(&x[0], &marker, rx, 1);
    r = ioctl(fd, MSG(1), x);
    report("msg1", r, rx, 1);

    /* N = 3 with lengths 2, 0 and 1 and no rx_buf on the last */
    static const uint8_t empty_poll[3] = {0x00, 0x99, 0x00};
    one(&x[0], empty_poll, rx, 2);
    one(&x[1], empty_poll, rx + 2, 0);
    one(&x[2], empty_poll + 2, NULL, 1);
    x[2].rx_buf = 0;
    r = ioctl(fd, MSG(3), x);
    report("msg3-mixed", r, rx, 2);

    /* a bad pointer to the transfer array */
    r = ioctl(fd, MSG(1), (void *)8);
    report("bad-pointer", r, NULL, 0);

    /* a bad tx_buf inside a good array */
    one(&x[0], (const uint8_t *)16, rx, 1);
    r = ioctl(fd, MSG(1), x);
    report("bad-tx-buf", r, NULL, 0);

    /* total length above spidev's bufsiz (4096) */
    one(&x[0], big, big, 4097);
    r = ioctl(fd, MSG(1), x);
    report("oversize", r, NULL, 0);

    /* _IOC_SIZE not a multiple of 32 */
    one(&x[0], &marker, rx, 1);
    r = ioctl(fd, IOC(1, 0, 33), x);
    report("size-not-multiple", r, NULL, 0);

    /* settings: write the max speed, read it back, read the mode */
    uint32_t speed = 62500, back = 0;
    r = ioctl(fd, IOC(1, 4, 4), &speed);
    report("wr-max-speed", r, NULL, 0);
    r = ioctl(fd, IOC(2, 4, 4), &back);
    report("rd-max-speed", r, (uint8_t *)&back, 4);
    uint8_t mode = 0xee;
    r = ioctl(fd, IOC(2, 1, 1), &mode);
    report("rd-mode", r, &mode, 1);

    /* another 'k' number, and another type */
    r = ioctl(fd, IOC(1, 9, 4), &speed);
    report("other-k-nr", r, NULL, 0);
    r = ioctl(fd, 0x5401, big);          /* TCGETS */
    report("other-type", r, NULL, 0);

    /* an fd on another regular file: never served, the kernel answers */
    int other = open(argv[2] ? argv[2] : "/dev/null", O_RDONLY);
    one(&x[0], &marker, rx, 1);
    r = ioctl(other, MSG(1), x);
    report("other-file", r, NULL, 0);
    close(other);
    close(fd);
    return 0;
}
