/*
 * idle_conns: opens N keep-alive connections to HOST:PORT, sends one "GET /healthz" on each,
 * reads each answer, then holds every connection open and idle.
 *
 *   idle_conns HOST PORT N HOLD_SECONDS
 *
 * Prints "ready open=A failed=F" on stdout once all N were tried, then holds them for
 * HOLD_SECONDS (or until SIGTERM/SIGINT) and exits 0. Exits 1 when nothing could be opened.
 * bench/run.sh builds it with cc; it is not part of the product.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define IDLE_ANSWER_MAX 4096

static volatile sig_atomic_t idle_stop;

static void idle_on_signal(int sig) {
  (void)sig;
  idle_stop = 1;
}

/* The fd table of this process must hold N client sockets plus a few. */
static void idle_raise_nofile(long n) {
  struct rlimit rl;

  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return;
  if (rl.rlim_cur < (rlim_t)n + 64) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* Reads until the head and Content-Length bytes of body arrived; 0 on a 2xx answer. */
static int idle_read_answer(int fd) {
  char buf[IDLE_ANSWER_MAX + 1];
  size_t have = 0;

  while (have < IDLE_ANSWER_MAX) {
    ssize_t n = read(fd, buf + have, IDLE_ANSWER_MAX - have);

    if (n <= 0)
      return -1;
    have += (size_t)n;
    buf[have] = '\0';

    char *end = strstr(buf, "\r\n\r\n");
    if (end == NULL)
      continue;

    char *cl = strcasestr(buf, "\r\ncontent-length:");
    size_t body = cl != NULL && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
    if (have >= (size_t)(end + 4 - buf) + body)
      return strncmp(buf, "HTTP/1.1 2", 10) == 0 ? 0 : -1;
  }
  return -1;
}

/* One connection: connect, one keep-alive request, its answer. Returns the fd or -1. */
static int idle_open_one(const struct sockaddr_in *addr) {
  static const char req[] = "GET /healthz HTTP/1.1\r\nHost: bench\r\n"
                            "Connection: keep-alive\r\n\r\n";
  struct timeval tv = {.tv_sec = 5};
  int fd = socket(AF_INET, SOCK_STREAM, 0);

  if (fd < 0)
    return -1;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) != 0)
    goto fail;
  if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1))
    goto fail;
  if (idle_read_answer(fd) != 0)
    goto fail;
  return fd;

fail:
  close(fd);
  return -1;
}

int main(int argc, char **argv) {
  struct sockaddr_in addr = {.sin_family = AF_INET};

  if (argc != 5) {
    fprintf(stderr, "usage: idle_conns HOST PORT N HOLD_SECONDS\n");
    return 2;
  }
  long n = strtol(argv[3], NULL, 10);
  long hold = strtol(argv[4], NULL, 10);
  addr.sin_port = htons((unsigned short)atoi(argv[2]));
  if (n <= 0 || inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
    fprintf(stderr, "idle_conns: bad HOST or N\n");
    return 2;
  }

  signal(SIGTERM, idle_on_signal);
  signal(SIGINT, idle_on_signal);
  signal(SIGPIPE, SIG_IGN);
  idle_raise_nofile(n);

  int *fds = calloc((size_t)n, sizeof(*fds));
  long nopen = 0, failed = 0;
  if (fds == NULL)
    return 1;
  for (long i = 0; i < n && !idle_stop; i++) {
    int fd = idle_open_one(&addr);

    if (fd < 0)
      failed++;
    else
      fds[nopen++] = fd;
  }
  printf("ready open=%ld failed=%ld\n", nopen, failed);
  fflush(stdout);

  for (long s = 0; s < hold && !idle_stop; s++)
    sleep(1);
  for (long i = 0; i < nopen; i++)
    close(fds[i]);
  free(fds);
  return nopen > 0 ? 0 : 1;
}
