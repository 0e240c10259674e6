/*
 * Answers reach the client whole, and calls reach the provider only when they may: an answer
 * held in the connection's output (a cork) survives the client's half-close and a SIGTERM
 * handled in the same loop turn; a drain waits for an answer still queued to a slow reader; a
 * call whose timeout ran out while it waited for a provider connection is never sent; a client
 * that pipelines and never reads cannot grow unicrm's memory.
 *
 * Races are made exact rather than likely: unicrm is stopped (SIGSTOP), where the order of
 * events matters while it waits in epoll_wait, the events that must meet in one loop turn
 * arrive meanwhile, the test waits until the kernel shows each of them queued on unicrm's
 * sockets (/proc/net/tcp), and only then lets unicrm go on (SIGCONT), so that one epoll_wait
 * reports them together, in the order they came. Each test starts its own processes, since
 * each stops or signals them.
 */
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define LEAD "adf21080-0e10-11eb-879b-05d71fb426ec"
#define BODY                                                                                       \
  "{\"entity\":\"leads\",\"entity_id\":\"" LEAD "\",\"associations\":"                             \
  "{\"contacts\":[{\"id\":\"9\"}]}}"

/*
 * Built with AddressSanitizer (UNICRM_SANITIZE builds the tests and unicrm alike): it keeps
 * freed memory in a quarantine (256 MB by default), so unicrm's resident size says nothing of
 * what unicrm holds.
 */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* TCP states as /proc/net/tcp prints them (include/net/tcp_states.h). */
#define TCP_ST_ESTABLISHED 0x01
#define TCP_ST_CLOSE_WAIT 0x08

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Under a tool such as valgrind everything is slower; waits stretch accordingly. */
static int slow_factor(void) {
  return getenv("UNICRM_WRAPPER") != NULL ? 10 : 1;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A test that failed while unicrm was stopped must still be able to stop it. An exit status
 * other than 0 fails the test: under valgrind it is how a memory error shows. */
static int teardown(void **state) {
  int rc = 0;
  if (g_fx.unicrm.pid > 0) {
    kill(g_fx.unicrm.pid, SIGCONT);
    rc = h_stop(&g_fx.unicrm);
    if (rc != 0)
      fprintf(stderr, "unicrm exited with %d; log: %s\n", rc, g_fx.unicrm.log_path);
  }
  h_stop(&g_fx.mock);
  return rc == 0 ? 0 : -1;
}

/* Starts the mock with one fault rule (or none) and unicrm with extra config (or none). */
static void start(const char *extra, const char *fault) {
  assert_int_equal(fx_start(extra), 0);
  if (fault != NULL)
    assert_int_equal(h_mock_post(g_fx.mock.port, "/_mock/faults", fault), 0);
}

/* Waits until the mock has received n calls: the last request is then surely in flight. */
static void wait_calls(size_t n) {
  for (int i = 0; i < 500 && h_mock_ncalls(g_fx.mock.port) < n; i++)
    sleep_ms(10);
  assert_true(h_mock_ncalls(g_fx.mock.port) >= n);
}

/* Waits for p to exit by itself and reaps it: its exit status, -1 if a signal ended it, -2 if
 * it still runs after timeout_ms (then the teardown stops it). */
static int wait_exit(struct h_proc *p, int timeout_ms) {
  int status;
  for (int waited = 0; waited <= timeout_ms; waited += 20) {
    if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
      p->pid = 0;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    sleep_ms(20);
  }
  return -2;
}

/* Writes the association request of BODY in this format on fd. */
static void write_assoc(int fd, const char *format, const char *extra_header) {
  char req[1024];
  snprintf(req, sizeof(req),
           "POST /unified/crm/associations?integrated_account_id=" H_PIPEDRIVE
           "&truto_response_format=%s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %zu\r\n\r\n%s",
           format, extra_header, strlen(BODY), BODY);
  assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
}

static int post_assoc(const char *format, const char *extra_header) {
  int fd = h_connect(g_fx.unicrm.port);
  assert_true(fd >= 0);
  write_assoc(fd, format, extra_header);
  return fd;
}

/*
 * A client socket with a small receive buffer, so unread answers pile up on unicrm's side,
 * and, if mss is not 0, small segments, which keep the kernel's send buffer on unicrm's side
 * small too (it grows by segments in flight).
 */
static int connect_small(int rcvbuf, int mss) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  /* Before connecting: the window scale and the segment size are agreed in the handshake. */
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  if (mss != 0)
    setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss));
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_fx.unicrm.port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  return fd;
}

static int local_port(int fd) {
  struct sockaddr_in sa;
  socklen_t len = sizeof(sa);
  getsockname(fd, (struct sockaddr *)&sa, &len);
  return ntohs(sa.sin_port);
}

/* ---- sockets as the kernel sees them ---- */

struct tcp_row {
  int lport, rport, state;
  unsigned long rxq; /* received, not yet read */
};

typedef int (*tcp_match)(const struct tcp_row *row, const void *arg);

/* Whether some IPv4 TCP socket of this network namespace satisfies match. */
static int tcp_any(tcp_match match, const void *arg) {
  FILE *f = fopen("/proc/net/tcp", "r");
  char line[512];
  int found = 0;
  while (!found && f != NULL && fgets(line, sizeof(line), f) != NULL) {
    struct tcp_row r;
    if (sscanf(line, " %*d: %*x:%x %*x:%x %x %*x:%lx", &r.lport, &r.rport, &r.state, &r.rxq) == 4)
      found = match(&r, arg);
  }
  if (f != NULL)
    fclose(f);
  return found;
}

/*
 * unicrm's provider connection holds at least p[1] unread reply bytes. The test's own calls to
 * the mock have all closed by then, so the only established connection to the mock's port p[0]
 * is unicrm's.
 */
static int provider_reply_unread(const struct tcp_row *r, const void *arg) {
  const unsigned long *p = arg;
  return r->rport == (int)p[0] && r->state == TCP_ST_ESTABLISHED && r->rxq >= p[1];
}

/* unicrm's end of the connection from client port p[1] to its port p[0]. */
static int server_end(const struct tcp_row *r, const int *p) {
  return r->lport == p[0] && r->rport == p[1];
}

static int client_fin_unread(const struct tcp_row *r, const void *arg) {
  return server_end(r, arg) && r->state == TCP_ST_CLOSE_WAIT;
}

static int request_consumed(const struct tcp_row *r, const void *arg) {
  return server_end(r, arg) && r->rxq == 0;
}

static int unread_bytes(int fd) {
  int n = 0;
  ioctl(fd, FIONREAD, &n);
  return n;
}

static int unacked_bytes(int fd) {
  int n = -1;
  ioctl(fd, SIOCOUTQ, &n);
  return n;
}

/*
 * Waits until min bytes of the provider's reply wait unread in unicrm (stopped), or, if the
 * mock's delay ran out before the stop, the answer has reached the client: then there is no
 * race to make, but nothing to fail either.
 */
static void wait_reply_or_answer(int client_fd, unsigned long min) {
  unsigned long reply[2] = {(unsigned long)g_fx.mock.port, min};
  uint64_t until = now_ms() + 5000;
  while (unread_bytes(client_fd) == 0 && !tcp_any(provider_reply_unread, reply)) {
    assert_true(now_ms() < until);
    sleep_ms(2);
  }
}

static void wait_fin_arrived(int client_fd) {
  int ports[2] = {g_fx.unicrm.port, local_port(client_fd)};
  uint64_t until = now_ms() + 5000;
  while (!tcp_any(client_fin_unread, ports)) {
    assert_true(now_ms() < until);
    sleep_ms(2);
  }
}

/*
 * Waits until unicrm has read everything written on fd: acknowledged by its kernel (without
 * that, bytes still on their way would look read too) and none of it left unread.
 */
static void wait_request_read(int fd) {
  int ports[2] = {g_fx.unicrm.port, local_port(fd)};
  uint64_t until = now_ms() + 5000 * (uint64_t)slow_factor();
  while (unacked_bytes(fd) != 0 || !tcp_any(request_consumed, ports)) {
    assert_true(now_ms() < until);
    sleep_ms(2);
  }
}

/* The system call process pid is blocked in (/proc/PID/syscall), or -1 while it runs. */
static long blocked_syscall(pid_t pid) {
  char path[64], line[64] = "";
  snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  char *got = fgets(line, sizeof(line), f);
  fclose(f);
  return got != NULL && line[0] >= '0' && line[0] <= '9' ? strtol(line, NULL, 10) : -1;
}

static int in_epoll_wait(pid_t pid) {
  long nr = blocked_syscall(pid);
  return nr == SYS_epoll_wait || nr == SYS_epoll_pwait || nr == SYS_epoll_pwait2;
}

static int is_stopped(pid_t pid) {
  char path[64], state = '?';
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f != NULL && fscanf(f, "%*d (%*[^)]) %c", &state) != 1)
    state = '?';
  if (f != NULL)
    fclose(f);
  return state == 'T';
}

/*
 * Stops unicrm while it is blocked in epoll_wait, its last events all handled. Stopped on its
 * way there, epoll's ready list may still hold a socket it has just read (a level-triggered
 * entry is dropped only at the next wait), and epoll would report that socket ahead of
 * events that arrive during the stop, whatever their order.
 */
static void stop_while_waiting(void) {
  pid_t pid = g_fx.unicrm.pid;
  uint64_t until = now_ms() + 5000 * (uint64_t)slow_factor();
  for (;;) {
    if (in_epoll_wait(pid)) {
      kill(pid, SIGSTOP);
      while (!is_stopped(pid))
        sleep_ms(1);
      if (in_epoll_wait(pid))
        return;
      kill(pid, SIGCONT);
    }
    assert_true(now_ms() < until);
    sleep_ms(1);
  }
}

/* ---- reading answers ---- */

/*
 * Decodes a chunked body in place (the chunks' data moved to the front). Returns its length,
 * or -1 unless the last chunk and the final CRLF are there: an answer cut short.
 */
static long dechunk(char *p, size_t n) {
  size_t in = 0, out = 0;
  for (;;) {
    char *end;
    unsigned long size = strtoul(p + in, &end, 16);
    size_t line = (size_t)(end - (p + in));
    if (line == 0 || in + line + 2 > n || memcmp(end, "\r\n", 2) != 0)
      return -1;
    in += line + 2;
    if (in + size + 2 > n || memcmp(p + in + size, "\r\n", 2) != 0)
      return -1;
    memmove(p + out, p + in, size);
    out += size;
    in += size + 2;
    if (size == 0)
      return in == n ? (long)out : -1;
  }
}

/* The body of the complete chunked 200 answer in buf (n bytes and a NUL), decoded in place;
 * fails the test on anything else, a cut answer first of all. */
static char *chunked_200_body(char *buf, size_t n, long *len) {
  if (strncmp(buf, "HTTP/1.1 200 ", 13) != 0)
    fprintf(stderr, "got %zu bytes: %.300s\n", n, buf);
  assert_memory_equal(buf, "HTTP/1.1 200 ", 13);
  assert_non_null(strstr(buf, "Transfer-Encoding: chunked\r\n"));
  char *body = strstr(buf, "\r\n\r\n");
  assert_non_null(body);
  body += 4;
  *len = dechunk(body, n - (size_t)(body - buf));
  if (*len < 0)
    fprintf(stderr, "the chunked answer was cut short: %zu bytes of it arrived\n", n);
  assert_true(*len >= 0);
  body[*len] = '\0';
  return body;
}

/* The answer to the lead write of BODY in this format, complete. */
static void expect_lead_answer(char *buf, size_t n, const char *format) {
  long len;
  char *body = chunked_200_body(buf, n, &len);
  if (strcmp(format, "raw") == 0) {
    /* The mock's Pipedrive reply, unchanged. */
    yajl_val v = h_json(body);
    assert_non_null(v);
    assert_true(YAJL_IS_TRUE(h_get(v, "success")));
    yajl_tree_free(v);
    return;
  }
  /* stream: the call's line, then the summary that closes the stream. */
  char *nl = strchr(body, '\n');
  assert_non_null(nl);
  yajl_val last = h_json(nl + 1);
  assert_non_null(last);
  assert_string_equal(h_str(last, "status"), "applied");
  yajl_tree_free(last);
}

/* ---- an answer held in the output when the client's end arrives ---- */

enum ending { END_HALF_CLOSE, END_SIGTERM };

/*
 * The provider's reply and the client's end (its FIN, or a SIGTERM to unicrm) are handled in
 * one loop turn: unicrm is stopped while both arrive. The reply came first, so epoll reports
 * its socket first, and libuv runs signal callbacks after all other I/O: the answer is made,
 * and held in the connection's output until the check phase, when the end is handled.
 */
static void answer_meets_end(const char *format, const char *extra_header, enum ending how) {
  start(NULL, NULL);
  /*
   * A first call leaves a pooled provider connection, so the call under test sets no connect
   * timer in curl. That timer would run out while unicrm is stopped and have curl read the
   * reply in the timer phase, ahead of the poll that reports the client's end.
   */
  struct h_resp r;
  h_associate(g_fx.unicrm.port, H_PIPEDRIVE, NULL, BODY, &r);
  assert_int_equal(r.status, 201);
  h_resp_free(&r);
  const char *slow = "{\"path_prefix\":\"/v1/leads/\",\"delay_ms\":500}";
  assert_int_equal(h_mock_post(g_fx.mock.port, "/_mock/faults", slow), 0);

  int fd = post_assoc(format, extra_header);
  wait_calls(2);
  stop_while_waiting();
  wait_reply_or_answer(fd, 1); /* head and body leave the mock in one write */
  if (how == END_HALF_CLOSE) {
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    wait_fin_arrived(fd);
  } else {
    kill(g_fx.unicrm.pid, SIGTERM); /* pending until SIGCONT */
  }
  kill(g_fx.unicrm.pid, SIGCONT);
  /* The answer is small enough to wait in the kernel for the client, so the drain does not
   * wait for it to be read. */
  if (how == END_SIGTERM)
    assert_int_equal(wait_exit(&g_fx.unicrm, 30000), 0);

  char out[16384];
  size_t n = h_read_to_close(fd, 5000 * slow_factor(), out, sizeof(out));
  close(fd);
  expect_lead_answer(out, n, format);
  assert_int_equal(h_mock_ncalls(g_fx.mock.port), 2);
}

/* The answer asked to close the connection, so the FIN finds it closing. */
static void test_half_close_keeps_held_raw_answer(void **state) {
  answer_meets_end("raw", "Connection: close\r\n", END_HALF_CLOSE);
}

/* A keep-alive connection is idle once the answer is made, so the FIN finds it idle. */
static void test_half_close_keeps_held_stream_answer(void **state) {
  answer_meets_end("stream", "", END_HALF_CLOSE);
}

static void test_sigterm_keeps_held_raw_answer(void **state) {
  answer_meets_end("raw", "", END_SIGTERM);
}

static void test_sigterm_keeps_held_stream_answer(void **state) {
  answer_meets_end("stream", "", END_SIGTERM);
}

/*
 * Relayed bytes made in the timer phase must leave before the loop blocks, not when it next
 * wakes. On a new provider connection curl (7.88) keeps its happy-eyeballs timer, 200 ms,
 * running; unicrm is stopped until that has run out and the reply's first part is in its
 * socket, so that when it goes on, curl's timer callback reads that part and unicrm relays
 * it there, ahead of the poll. The provider holds its last bytes back, so nothing else is
 * due: bytes held until the check phase after that poll would leave only with those.
 */
static void test_relay_from_timer_phase_leaves_at_once(void **state) {
  int tail_delay = 500 * slow_factor();
  char fault[160];
  snprintf(fault, sizeof(fault),
           "{\"path_prefix\":\"/v1/leads/\",\"delay_ms\":300,\"body_bytes\":4096,"
           "\"tail_delay_ms\":%d}",
           tail_delay);
  start(NULL, fault);
  int fd = post_assoc("raw", "Connection: close\r\n");
  wait_calls(1);
  kill(g_fx.unicrm.pid, SIGSTOP);
  /* The head, and body pieces making a document of about 3 KiB less its last bytes. */
  wait_reply_or_answer(fd, 2048);
  kill(g_fx.unicrm.pid, SIGCONT);

  /* What arrives before a pause, well before the provider's last bytes: the answer so far. */
  char out[16384];
  struct pollfd p = {.fd = fd, .events = POLLIN};
  assert_int_equal(poll(&p, 1, tail_delay), 1);
  size_t n = h_read_to_close(fd, tail_delay / 5, out, sizeof(out));
  if (strncmp(out, "HTTP/1.1 200 ", 13) != 0 || strstr(out, "]}}") != NULL)
    fprintf(stderr, "before the provider's last bytes: %.300s\n", out);
  assert_memory_equal(out, "HTTP/1.1 200 ", 13);
  assert_null(strstr(out, "]}}"));

  n += h_read_to_close(fd, 5000 * slow_factor(), out + n, sizeof(out) - n);
  close(fd);
  expect_lead_answer(out, n, "raw");
}

/* ---- the per-origin lane ---- */

/*
 * Two calls wait in the lane while its only connection is held by a call that will time out.
 * unicrm is stopped for longer than the call timeout, so when it goes on, both have used up
 * their time in the queue whatever the scheduling was before, and must fail as timeouts
 * without reaching the provider. (Without the stop, a call queued a millisecond after the
 * first one would still have a millisecond left when the first times out.)
 */
static void test_call_timed_out_in_lane_is_not_sent(void **state) {
  start("\"upstream\":{\"max_host_connections\":1,\"max_inflight_per_account\":64,"
        "\"timeout_ms\":1000,\"max_retries\":0},",
        "{\"path_prefix\":\"/v1/leads/\",\"delay_ms\":5000,\"times\":-1}");
  int fds[3];
  fds[0] = post_assoc("unified", "Connection: close\r\n");
  wait_calls(1);
  for (int i = 1; i < 3; i++)
    fds[i] = post_assoc("unified", "Connection: close\r\n");
  for (int i = 1; i < 3; i++)
    wait_request_read(fds[i]);

  kill(g_fx.unicrm.pid, SIGSTOP);
  sleep_ms(1300);
  kill(g_fx.unicrm.pid, SIGCONT);

  for (int i = 0; i < 3; i++) {
    char out[4096];
    h_read_to_close(fds[i], 5000 * slow_factor(), out, sizeof(out));
    close(fds[i]);
    if (strncmp(out, "HTTP/1.1 504 ", 13) != 0)
      fprintf(stderr, "request %d got: %.200s\n", i, out);
    assert_memory_equal(out, "HTTP/1.1 504 ", 13);
  }
  assert_int_equal(h_mock_ncalls(g_fx.mock.port), 1);
}

/* ---- clients that read slowly or not at all ---- */

/*
 * A call queued behind a busy connection fails when its own time runs out, not when the
 * connection frees up: a two-call request (B) started first has its second call queued
 * behind a later request's slow call (A), whose own deadline comes almost 2 s later.
 */
static void test_call_queued_in_lane_fails_at_its_deadline(void **state) {
  start("\"upstream\":{\"max_host_connections\":1,\"max_inflight_per_account\":64,"
        "\"timeout_ms\":10000,\"max_retries\":0},\"limits\":{\"request_timeout_ms\":3000},",
        "[{\"path_prefix\":\"/api/v2/deals/1\",\"delay_ms\":2000,\"times\":-1},"
        "{\"path_prefix\":\"/v1/leads/\",\"delay_ms\":10000,\"times\":-1}]");
  static const char two_deals[] = "{\"entity\":\"contacts\",\"entity_id\":\"42\","
                                  "\"associations\":{\"opportunities\":[{\"id\":\"1\"},"
                                  "{\"id\":\"2\"}]}}";
  char req[1024];
  snprintf(req, sizeof(req),
           "POST /unified/crm/associations?integrated_account_id=" H_PIPEDRIVE " HTTP/1.1\r\n"
           "Host: x\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
           strlen(two_deals), two_deals);
  int b = h_connect(g_fx.unicrm.port);
  assert_true(b >= 0);
  uint64_t t0 = now_ms();
  assert_int_equal(write(b, req, strlen(req)), (ssize_t)strlen(req));
  wait_calls(1); /* B's first deal holds the only connection for 2 s */

  sleep_ms(1000);
  int a = post_assoc("unified", "Connection: close\r\n"); /* waits in the lane, then 3 s */

  char out[8192];
  h_read_to_close(b, 8000, out, sizeof(out));
  uint64_t took = now_ms() - t0;
  close(b);
  close(a);
  if (strncmp(out, "HTTP/1.1 504 ", 13) != 0 || took > 4000)
    fprintf(stderr, "B after %llu ms: %.300s\n", (unsigned long long)took, out);
  assert_memory_equal(out, "HTTP/1.1 504 ", 13);
  /* B's deadline is at 3.0 s; A's call would free the connection only at about 4.9 s. */
  assert_true(took >= 2500);
  assert_true(took < 4000);
  const char *json = strstr(out, "\r\n\r\n");
  assert_non_null(json);
  yajl_val v = h_json(json + 4);
  assert_string_equal(h_str(v, "results/0/status"), "applied");
  assert_string_equal(h_str(v, "results/1/status"), "failed");
  yajl_tree_free(v);

  /* B's second deal never reached the provider: only B's first call and A's were made. */
  yajl_val calls = h_mock_calls(g_fx.mock.port);
  size_t deal2 = 0;
  for (size_t i = 0; i < calls->u.array.len; i++) {
    const char *path = h_str(calls->u.array.values[i], "path");
    deal2 += path != NULL && strcmp(path, "/api/v2/deals/2") == 0;
  }
  yajl_tree_free(calls);
  assert_int_equal(deal2, 0);
}

struct flood {
  size_t sent;
  int blocked; /* nothing could be sent for 300 ms: unicrm stopped taking requests */
};

/*
 * Pipelines GET requests of an unknown path (each a 404, answered at once) on fd, never
 * reading, until it is blocked, ms milliseconds have passed or max bytes were sent.
 */
static struct flood flood(int fd, int ms, size_t max) {
  static char blob[256 * 1024];
  static const char one[] = "GET /nope-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                            " HTTP/1.1\r\nHost: x\r\n\r\n";
  size_t len = 0;
  while (len + sizeof(one) - 1 <= sizeof(blob)) {
    memcpy(blob + len, one, sizeof(one) - 1);
    len += sizeof(one) - 1;
  }

  fcntl(fd, F_SETFL, O_NONBLOCK);
  struct flood f = {0};
  size_t off = 0;
  uint64_t until = now_ms() + (uint64_t)ms, last = now_ms();
  while (!f.blocked && now_ms() < until && f.sent < max) {
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    ssize_t n = poll(&p, 1, 20) > 0 ? send(fd, blob + off, len - off, MSG_NOSIGNAL) : 0;
    if (n > 0) {
      f.sent += (size_t)n;
      off = (off + (size_t)n) % len; /* whole requests only: len is a multiple of one */
      last = now_ms();
    }
    f.blocked = now_ms() - last > 300;
  }
  return f;
}

/*
 * A client that pipelines cheap requests and never reads: past a bound of unread answers
 * unicrm must stop parsing and reading, so that TCP pushes back on the client instead of
 * unicrm queueing answers without end, and its other connections are still served.
 */
static void test_pipelining_client_that_never_reads_is_bounded(void **state) {
  start(NULL, NULL);
  /*
   * A first, smaller flood on a connection that then closes, so that what a tool takes once
   * is not counted as growth: valgrind's memcheck keeps up to 20 MB of freed blocks from
   * reuse (--freelist-vol), and answers are allocated and freed by the thousand.
   */
  int fd = connect_small(4096, 0);
  flood(fd, 2500, 8 << 20);
  close(fd);
  sleep_ms(100 * slow_factor());
  long before = h_rss_kib(g_fx.unicrm.pid);

  fd = connect_small(4096, 0);
  struct flood f = flood(fd, 2500, SIZE_MAX);
  long after = h_rss_kib(g_fx.unicrm.pid);
  if (!f.blocked || (!UNDER_ASAN && after - before >= 32 * 1024))
    fprintf(stderr, "sent %zu KiB of requests, blocked: %d; unicrm VmRSS %ld -> %ld KiB\n",
            f.sent / 1024, f.blocked, before, after);
  assert_true(UNDER_ASAN || after - before < 32 * 1024);
  assert_true(f.blocked);

  struct h_resp r;
  h_request(g_fx.unicrm.port, "GET", "/healthz", NULL, NULL, &r);
  assert_int_equal(r.status, 200);
  h_resp_free(&r);
  close(fd);
}

/* Reads at most 16 KiB once fd has some, then pauses 1 ms: a reader slower than unicrm.
 * Returns the bytes read, 0 if nothing came for timeout_ms, -1 at the end of the stream. */
static ssize_t read_slowly(int fd, char *buf, size_t room, int timeout_ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  if (poll(&p, 1, timeout_ms) <= 0)
    return 0;
  ssize_t n = read(fd, buf, room < 16384 ? room : 16384);
  sleep_ms(1);
  return n > 0 ? n : -1;
}

/*
 * The request is over (the access log has it) but much of its answer still waits in unicrm
 * for a client that reads slowly when SIGTERM comes: the drain must wait for those bytes
 * instead of closing the connection on them, and unicrm then exits 0.
 *
 * Only bytes in unicrm's own queue can be lost; what the kernel holds is delivered after a
 * close. The client's small segments (TCP_MAXSEG) and small receive buffer keep the kernel's
 * share at about 85 KiB here, where a MiB-sized answer would meet a send buffer autotuned to
 * several MiB and leave a chance share in the queue. The answer, under RELAY_HIGH_WATER
 * (256 KiB), is then made whole without the client reading, and about half of it is queued.
 */
static void drain_meets_slow_reader(const char *format) {
  enum { BODY_BYTES = 192 << 10 };
  char fault[128], logged[32];
  snprintf(fault, sizeof(fault), "{\"path_prefix\":\"/v1/leads/\",\"body_bytes\":%d}", BODY_BYTES);
  snprintf(logged, sizeof(logged), "format=%s", format);
  start(NULL, fault);
  int fd = connect_small(4096, 1024);
  write_assoc(fd, format, "");
  assert_true(h_file_wait(g_fx.unicrm.log_path, logged, 5000 * slow_factor()));

  size_t cap = 2 * BODY_BYTES, got = 0;
  char *buf = malloc(cap + 1);
  assert_non_null(buf);
  ssize_t n = read_slowly(fd, buf, cap, 5000 * slow_factor()); /* a little: the head */
  assert_true(n > 0);
  got += (size_t)n;

  kill(g_fx.unicrm.pid, SIGTERM);
  assert_true(h_file_wait(g_fx.unicrm.log_path, "msg=\"draining\"", 2000 * slow_factor()));
  while ((n = read_slowly(fd, buf + got, cap - got, 5000 * slow_factor())) > 0)
    got += (size_t)n;
  assert_true(n < 0); /* the end of the stream, not a pause */
  buf[got] = '\0';
  close(fd);
  expect_lead_answer(buf, got, format); /* every byte: the end is there, the body parses */
  assert_true(got > BODY_BYTES - 2048); /* the mock makes whole items of 1 KiB */
  free(buf);

  assert_int_equal(wait_exit(&g_fx.unicrm, 30000), 0);
  assert_true(h_file_contains(g_fx.unicrm.log_path, "msg=\"drained; exiting\""));
}

static void test_drain_waits_for_raw_answer_queued_to_slow_reader(void **state) {
  drain_meets_slow_reader("raw");
}

static void test_drain_waits_for_stream_answer_queued_to_slow_reader(void **state) {
  drain_meets_slow_reader("stream");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_half_close_keeps_held_raw_answer, teardown),
      cmocka_unit_test_teardown(test_half_close_keeps_held_stream_answer, teardown),
      cmocka_unit_test_teardown(test_sigterm_keeps_held_raw_answer, teardown),
      cmocka_unit_test_teardown(test_sigterm_keeps_held_stream_answer, teardown),
      cmocka_unit_test_teardown(test_relay_from_timer_phase_leaves_at_once, teardown),
      cmocka_unit_test_teardown(test_call_timed_out_in_lane_is_not_sent, teardown),
      cmocka_unit_test_teardown(test_call_queued_in_lane_fails_at_its_deadline, teardown),
      cmocka_unit_test_teardown(test_pipelining_client_that_never_reads_is_bounded, teardown),
      cmocka_unit_test_teardown(test_drain_waits_for_raw_answer_queued_to_slow_reader, teardown),
      cmocka_unit_test_teardown(test_drain_waits_for_stream_answer_queued_to_slow_reader, teardown),
  };
  return cmocka_run_group_tests_name("delivery", tests, NULL, NULL);
}
