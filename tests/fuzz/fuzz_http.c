/*
 * fuzz_http.c: raw bytes from a TCP client through the HTTP server (src/server.c).
 *
 * A real server on 127.0.0.1 answers every request it dispatches with 200 "{}". Each input is
 * written on a fresh connection, the write side is shut, and the loop runs until the server
 * closes. Everything that comes back must read, the way a client reads it, as a sequence of
 * well-formed responses: a status line "HTTP/1.1 ddd ", headers, then a body of the announced
 * length, or none for 1xx and for an answer to HEAD. The last one may be cut short when the
 * server closes on bytes it has not read. After the client closes, the connection count must
 * fall back to zero: nothing accumulates from one input to the next.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "config.h"
#include "fuzz_util.h"
#include "log.h"
#include "server.h"

#define FUZZ_ITERATIONS 200
#define FUZZ_BUDGET_MS 50
#define FUZZ_REPLY_MAX (1024 * 1024)

static uv_loop_t fuzz_loop;
static struct srv *fuzz_srv;
static int fuzz_port;
/* Methods of the requests dispatched for the current input, in order: 1 for HEAD. */
#define FUZZ_MAX_TRACKED 256
static unsigned char fuzz_head[FUZZ_MAX_TRACKED];
static size_t fuzz_dispatched;

/* Small limits, so that the size checks are within reach of short inputs. */
static const struct ucrm_limits fuzz_limits = {
    .max_connections = 64,
    .max_header_bytes = 2048,
    .max_body_bytes = 4096,
    .header_timeout_ms = 10000,
    .idle_timeout_ms = 60000,
    .request_timeout_ms = 30000,
    .drain_timeout_ms = 1000,
};

static void fuzz_on_request(struct srv_req *r, void *data) {
  if (fuzz_dispatched < FUZZ_MAX_TRACKED)
    fuzz_head[fuzz_dispatched] = strcmp(r->method_name, "HEAD") == 0;
  fuzz_dispatched++;
  srv_respond(r, 200, "application/json", NULL, "{}", 2);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  signal(SIGPIPE, SIG_IGN);
  ulog_set_level(ULOG_ERROR);

  struct srv_opts opts = {.limits = &fuzz_limits, .on_request = fuzz_on_request};
  if (uv_loop_init(&fuzz_loop) != 0 || srv_new(&fuzz_loop, &opts, &fuzz_srv) != 0 ||
      srv_listen(fuzz_srv, "127.0.0.1", 0, 0) != 0 || (fuzz_port = srv_port(fuzz_srv)) <= 0) {
    fputs("fuzz_http: cannot start the server\n", stderr);
    abort();
  }
  return 0;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs what is ready in the loop, waiting at most wait_ms for something to become ready. */
static void run_loop(int client, int wait_ms) {
  uv_run(&fuzz_loop, UV_RUN_NOWAIT);
  struct pollfd fds[2] = {{uv_backend_fd(&fuzz_loop), POLLIN, 0}, {client, POLLIN, 0}};
  poll(fds, client >= 0 ? 2 : 1, wait_ms);
  uv_run(&fuzz_loop, UV_RUN_NOWAIT);
}

static int connect_client(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    abort();

  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fuzz_port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS)
    abort();
  return fd;
}

struct exchange {
  const uint8_t *in;
  size_t in_len;
  size_t sent;
  int shut;
  char *out;
  size_t out_len;
  int closed; /* the server closed or reset the connection */
};

static void client_send(int fd, struct exchange *x) {
  while (x->sent < x->in_len) {
    ssize_t n = send(fd, x->in + x->sent, x->in_len - x->sent, MSG_NOSIGNAL);
    if (n <= 0) {
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN)
        x->sent = x->in_len; /* the server is gone; what it answered is still readable */
      return;
    }
    x->sent += (size_t)n;
  }
  if (!x->shut) {
    shutdown(fd, SHUT_WR);
    x->shut = 1;
  }
}

static void client_recv(int fd, struct exchange *x) {
  for (;;) {
    char buf[16384];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN)) {
      x->closed = 1;
      return;
    }
    if (n < 0)
      return;
    if (x->out_len + (size_t)n > FUZZ_REPLY_MAX)
      fuzz_fail("the server answered more than %d bytes", FUZZ_REPLY_MAX);
    memcpy(x->out + x->out_len, buf, (size_t)n);
    x->out_len += (size_t)n;
  }
}

/* Reads "Content-Length: n" from a response head; -1 when there is none. */
static long head_content_length(const char *head, size_t len) {
  static const char name[] = "\r\ncontent-length:";
  for (size_t i = 0; i + sizeof(name) - 1 <= len; i++) {
    if (strncasecmp(head + i, name, sizeof(name) - 1) == 0)
      return strtol(head + i + sizeof(name) - 1, NULL, 10);
  }
  return -1;
}

/*
 * Checks the bytes the server sent; returns how many complete final responses they hold. The
 * answer to the n-th dispatched request is the n-th final response; a response to HEAD has
 * no body whatever its Content-Length says (RFC 9110, 9.3.2), which is how a client reads it.
 */
static size_t check_replies(const char *p, size_t len) {
  size_t responses = 0;
  int after_head = 0;
  while (len > 0) {
    static const char proto[] = "HTTP/1.1 ";
    size_t plen = sizeof(proto) - 1;
    size_t have = len < plen + 4 ? len : plen + 4;
    if (memcmp(p, proto, have < plen ? have : plen) != 0)
      goto bad;
    for (size_t i = plen; i < have && i < plen + 3; i++) {
      if (p[i] < '0' || p[i] > '9')
        goto bad;
    }
    if (have == plen + 4 && p[plen + 3] != ' ')
      goto bad;

    const char *end = memmem(p, len, "\r\n\r\n", 4);
    if (end == NULL)
      return responses; /* cut short by the close */
    size_t head = (size_t)(end - p) + 4;
    long body = head_content_length(p, head);
    int interim = p[plen] == '1';
    int head_req = !interim && responses < fuzz_dispatched && responses < FUZZ_MAX_TRACKED &&
                   fuzz_head[responses];
    if (body < 0 && !interim)
      goto bad;
    if (interim || head_req)
      body = 0;
    after_head = head_req;
    size_t total = head + (body > 0 ? (size_t)body : 0);
    if (total > len)
      return responses;
    p += total;
    len -= total;
    responses += !interim;
  }
  return responses;

bad:
  fuzz_dump_hex("reply", p, len);
  fuzz_fail("response %zu is not an HTTP/1.1 response%s", responses,
            after_head ? " (the one before answered HEAD, so it must not carry a body)" : "");
}

/* Closes the client and runs the loop until the server has let go of every connection. */
static void settle(int fd) {
  close(fd);
  uint64_t deadline = now_ms() + FUZZ_BUDGET_MS * 4;
  for (int i = 0; i < FUZZ_ITERATIONS * 4 && srv_open_connections(fuzz_srv) > 0; i++) {
    if (now_ms() > deadline)
      break;
    run_loop(-1, 1);
  }
  if (srv_open_connections(fuzz_srv) != 0)
    fuzz_fail("%d connections are still open after the client closed",
              srv_open_connections(fuzz_srv));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char reply[FUZZ_REPLY_MAX];
  struct exchange x = {.in = data, .in_len = size, .out = reply};
  int fd = connect_client();
  fuzz_dispatched = 0;

  uint64_t deadline = now_ms() + FUZZ_BUDGET_MS;
  for (int i = 0; i < FUZZ_ITERATIONS && !x.closed && now_ms() <= deadline; i++) {
    client_send(fd, &x);
    run_loop(fd, 1);
    client_recv(fd, &x);
  }

  /* FUZZ_HTTP_SHOW=1 prints each reply, to see what a reproducer gets back. */
  if (getenv("FUZZ_HTTP_SHOW") != NULL)
    fprintf(stderr, "--- %zu bytes sent, %zu received:\n%.*s\n", x.sent, x.out_len, (int)x.out_len,
            x.out);
  size_t responses = check_replies(x.out, x.out_len);
  /* Only an error found while parsing is answered without a dispatch, and it closes. */
  if (responses > fuzz_dispatched + 1)
    fuzz_fail("%zu responses for %zu dispatched requests", responses, fuzz_dispatched);
  settle(fd);
  return 0;
}
