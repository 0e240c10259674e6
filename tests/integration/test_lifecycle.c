/*
 * The process life cycle and connection limits: SIGTERM drains in-flight requests (new ones
 * get 503) and exits 0; SIGHUP reloads the config atomically and keeps the old one when the
 * new one is bad; a client that disconnects cancels its provider call; max_connections holds.
 * Each test starts its own processes, since each ends or reshapes them.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define LEAD "adf21080-0e10-11eb-879b-05d71fb426ec"
#define BODY                                                                                       \
  "{\"entity\":\"leads\",\"entity_id\":\"" LEAD "\",\"associations\":"                             \
  "{\"contacts\":[{\"id\":\"9\"}]}}"

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Under a tool such as valgrind everything is slower; waits stretch accordingly. */
static int slow_factor(void) {
  return getenv("UNICRM_WRAPPER") != NULL ? 10 : 1;
}

/* Waits until the mock has received n calls: the request is then surely in flight. */
static void wait_calls(size_t n) {
  for (int i = 0; i < 500 && h_mock_ncalls(g_fx.mock.port) < n; i++)
    sleep_ms(10);
  assert_true(h_mock_ncalls(g_fx.mock.port) >= n);
}

static int teardown(void **state) {
  if (g_fx.unicrm.pid > 0)
    h_stop(&g_fx.unicrm);
  h_stop(&g_fx.mock);
  return 0;
}

struct bg {
  pthread_t t;
  const char *acct;
  struct h_resp r;
};

static void *bg_run(void *p) {
  struct bg *b = p;
  h_associate(g_fx.unicrm.port, b->acct, NULL, BODY, &b->r);
  return NULL;
}

/* Starts the mock and unicrm; the mock holds every call under /v1/leads/ for delay_ms. */
static void start_with_slow_leads(int delay_ms) {
  char fault[128];
  snprintf(fault, sizeof(fault), "{\"path_prefix\":\"/v1/leads/\",\"delay_ms\":%d}", delay_ms);
  assert_int_equal(fx_start(NULL), 0);
  assert_int_equal(h_mock_post(g_fx.mock.port, "/_mock/faults", fault), 0);
}

/* A connection to unicrm on which the POST of BODY and then tail (a pipelined request, or "")
 * have been written. */
static int post_raw(const char *tail) {
  char req[512];
  snprintf(req, sizeof(req),
           "POST /unified/crm/associations?integrated_account_id=" H_PIPEDRIVE " HTTP/1.1\r\n"
           "Host: x\r\nContent-Length: %zu\r\n\r\n%s%s",
           strlen(BODY), BODY, tail);
  int fd = h_connect(g_fx.unicrm.port);
  assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
  return fd;
}

static void test_sigterm_drains_in_flight(void **state) {
  start_with_slow_leads(1000);
  /* An idle keep-alive connection opened before the signal. */
  int idle = h_connect(g_fx.unicrm.port);
  assert_true(idle >= 0);

  struct bg b = {.acct = H_PIPEDRIVE};
  pthread_create(&b.t, NULL, bg_run, &b);
  wait_calls(1);
  kill(g_fx.unicrm.pid, SIGTERM);
  h_file_wait(g_fx.unicrm.log_path, "msg=\"draining\"", 2000 * slow_factor());

  /* While draining, a new connection is still answered: 503 and Connection: close, so a load
   * balancer's health check sees the instance going away. */
  char answer[1024];
  int n = h_raw(g_fx.unicrm.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 35,
                2000 * slow_factor(), answer, sizeof(answer));
  char buf[64];
  ssize_t idle_read = read(idle, buf, sizeof(buf)); /* the idle connection was closed */
  close(idle);
  pthread_join(b.t, NULL); /* before any assertion: the thread writes into b */
  assert_true(n > 0);
  assert_memory_equal(answer, "HTTP/1.1 503 ", 13);
  assert_non_null(strstr(answer, "Connection: close"));
  assert_true(idle_read <= 0);

  assert_int_equal(b.r.status, 201);
  h_resp_free(&b.r);

  int status;
  assert_int_equal(waitpid(g_fx.unicrm.pid, &status, 0), g_fx.unicrm.pid);
  g_fx.unicrm.pid = 0;
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_true(h_file_contains(g_fx.unicrm.log_path, "msg=\"drained; exiting\""));
}

/* A request pipelined behind an in-flight one is not started once draining begins. */
static void test_pipelined_request_not_started_while_draining(void **state) {
  start_with_slow_leads(800);
  int fd = post_raw("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  wait_calls(1);
  kill(g_fx.unicrm.pid, SIGTERM);

  char out[8192];
  h_read_to_close(fd, -1, out, sizeof(out));
  close(fd);
  /* The in-flight write finished; the pipelined request behind it was not started. */
  assert_non_null(strstr(out, "HTTP/1.1 201 "));
  assert_non_null(strstr(out, "Connection: close"));
  assert_null(strstr(out, "HTTP/1.1 200 "));
}

/* A request still arriving when draining begins is answered 503 with Connection: close. */
static void test_request_completed_while_draining_gets_503(void **state) {
  assert_int_equal(fx_start(NULL), 0);
  char head[512];
  snprintf(head, sizeof(head),
           "POST /unified/crm/associations?integrated_account_id=" H_PIPEDRIVE " HTTP/1.1\r\n"
           "Host: x\r\nContent-Length: %zu\r\n\r\n",
           strlen(BODY));
  int fd = h_connect(g_fx.unicrm.port);
  assert_int_equal(write(fd, head, strlen(head)), (ssize_t)strlen(head));
  sleep_ms(150 * slow_factor());
  kill(g_fx.unicrm.pid, SIGTERM);
  h_file_wait(g_fx.unicrm.log_path, "msg=\"draining\"", 2000 * slow_factor());
  assert_int_equal(write(fd, BODY, strlen(BODY)), (ssize_t)strlen(BODY));

  char out[4096];
  h_read_to_close(fd, -1, out, sizeof(out));
  close(fd);
  assert_memory_equal(out, "HTTP/1.1 503 ", 13);
  assert_non_null(strstr(out, "Connection: close"));
  assert_int_equal(h_mock_ncalls(g_fx.mock.port), 0);
}

static void test_client_disconnect_cancels_call(void **state) {
  start_with_slow_leads(1500);
  int fd = post_raw("");
  wait_calls(1);
  close(fd);
  assert_true(h_file_wait(g_fx.unicrm.log_path, "client went away", 2000 * slow_factor()));

  /* The proxy carries on serving. */
  struct h_resp r;
  h_request(g_fx.unicrm.port, "GET", "/healthz", NULL, NULL, &r);
  assert_int_equal(r.status, 200);
  h_resp_free(&r);
}

static void replace_in_file(const char *path, const char *from, const char *to) {
  FILE *f = fopen(path, "rb");
  char buf[16384];
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *at = strstr(buf, from);
  assert_non_null(at);

  f = fopen(path, "wb");
  fwrite(buf, 1, (size_t)(at - buf), f);
  fputs(to, f);
  fputs(at + strlen(from), f);
  fclose(f);
}

static long associate_status(const char *acct) {
  struct h_resp r;
  h_associate(g_fx.unicrm.port, acct, NULL, BODY, &r);
  long st = r.status;
  h_resp_free(&r);
  return st;
}

/* Starts the mock (leads held for delay_ms) and unicrm with one connection per origin. */
static void start_one_connection(int delay_ms, const char *upstream_extra) {
  char cfg[256], fault[128];
  snprintf(cfg, sizeof(cfg),
           "\"upstream\":{\"max_host_connections\":1,\"max_inflight_per_account\":64%s},",
           upstream_extra);
  snprintf(fault, sizeof(fault), "{\"path_prefix\":\"/v1/leads/\",\"delay_ms\":%d,\"times\":-1}",
           delay_ms);
  assert_int_equal(fx_start(cfg), 0);
  assert_int_equal(h_mock_post(g_fx.mock.port, "/_mock/faults", fault), 0);
}

/* Calls beyond max_host_connections wait their turn and all complete. */
static void test_calls_over_host_connections_wait_in_line(void **state) {
  start_one_connection(300, "");
  struct bg b[3];
  for (int i = 0; i < 3; i++) {
    b[i] = (struct bg){.acct = H_PIPEDRIVE};
    pthread_create(&b[i].t, NULL, bg_run, &b[i]);
  }
  wait_calls(1);
  sleep_ms(150);
  size_t during = h_mock_ncalls(g_fx.mock.port); /* the others wait for the one connection */
  for (int i = 0; i < 3; i++)
    pthread_join(b[i].t, NULL);

  assert_int_equal(during, 1);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(b[i].r.status, 201);
    h_resp_free(&b[i].r);
  }
  assert_int_equal(h_mock_ncalls(g_fx.mock.port), 3);
}

/* A call still waiting for a connection is dropped, never sent, when its client leaves, and
 * the connection it waited for serves the next request. */
static void test_queued_call_dropped_when_client_leaves(void **state) {
  /* The first call must outlast the wait below, which stretches under valgrind. */
  start_one_connection(slow_factor() > 1 ? 3000 : 600, "");
  struct bg first = {.acct = H_PIPEDRIVE};
  pthread_create(&first.t, NULL, bg_run, &first);
  wait_calls(1);
  int waiting[2] = {post_raw(""), post_raw("")};
  sleep_ms(100 * slow_factor());
  close(waiting[0]);
  close(waiting[1]);
  pthread_join(first.t, NULL);
  assert_int_equal(first.r.status, 201);
  h_resp_free(&first.r);

  sleep_ms(200 * slow_factor());
  assert_int_equal(h_mock_ncalls(g_fx.mock.port), 1);
  struct h_resp r;
  h_associate(g_fx.unicrm.port, H_PIPEDRIVE, NULL, BODY, &r);
  assert_int_equal(r.status, 201);
  h_resp_free(&r);
  assert_int_equal(h_mock_ncalls(g_fx.mock.port), 2);
}

/* Time spent waiting for a connection counts against upstream.timeout_ms, as it would if
 * curl held the call. */
static void test_wait_for_connection_counts_against_timeout(void **state) {
  start_one_connection(700, ",\"timeout_ms\":1000,\"max_retries\":0");
  struct bg b[2];
  for (int i = 0; i < 2; i++) {
    b[i] = (struct bg){.acct = H_PIPEDRIVE};
    pthread_create(&b[i].t, NULL, bg_run, &b[i]);
  }
  for (int i = 0; i < 2; i++)
    pthread_join(b[i].t, NULL);

  /* One went first and took 700 ms; the other then had 300 ms left for a 700 ms answer. */
  int ok = (b[0].r.status == 201) + (b[1].r.status == 201);
  int timed_out = (b[0].r.status == 504) + (b[1].r.status == 504);
  h_resp_free(&b[0].r);
  h_resp_free(&b[1].r);
  assert_int_equal(ok, 1);
  assert_int_equal(timed_out, 1);
}

static void test_sighup_reload(void **state) {
  const char *fresh = "11111111-2222-4333-8444-555555555555";
  assert_int_equal(fx_start(NULL), 0);
  assert_int_equal(associate_status(fresh), 404);

  /* A good config: the pipedrive account gets a new id. */
  replace_in_file(g_fx.unicrm.cfg_path, H_PIPEDRIVE, fresh);
  kill(g_fx.unicrm.pid, SIGHUP);
  assert_true(h_file_wait(g_fx.unicrm.log_path, "msg=\"config reloaded\"", 2000 * slow_factor()));
  assert_int_equal(associate_status(fresh), 201);
  assert_int_equal(associate_status(H_PIPEDRIVE), 404);

  /* A bad config: rejected, and the running one stays. */
  replace_in_file(g_fx.unicrm.cfg_path, "\"provider\":\"pipedrive\"", "\"provider\":\"nope\"");
  kill(g_fx.unicrm.pid, SIGHUP);
  assert_true(h_file_wait(g_fx.unicrm.log_path, "reload failed; keeping the running config",
                          2000 * slow_factor()));
  assert_int_equal(associate_status(fresh), 201);
}

static void test_max_connections(void **state) {
  assert_int_equal(fx_start("\"limits\":{\"max_connections\":3},"), 0);
  int fds[3];
  for (int i = 0; i < 3; i++) {
    /* Each answers once, so all three are surely accepted and counted. */
    fds[i] = h_connect(g_fx.unicrm.port);
    const char *ping = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(fds[i], ping, strlen(ping)), (ssize_t)strlen(ping));
    char buf[512];
    assert_true(read(fds[i], buf, sizeof(buf)) > 0);
  }

  /* The fourth is accepted by the kernel, then closed by unicrm without an answer. */
  char out[256];
  int n = h_raw(g_fx.unicrm.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 35, 1000, out,
                sizeof(out));
  assert_int_equal(n, 0);

  close(fds[0]);
  sleep_ms(100 * slow_factor());
  n = h_raw(g_fx.unicrm.port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 54,
            1000, out, sizeof(out));
  assert_true(n > 0);
  assert_memory_equal(out, "HTTP/1.1 200 ", 13);
  close(fds[1]);
  close(fds[2]);
}

static double cpu_seconds(pid_t pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  unsigned long utime = 0, stime = 0;
  if (f != NULL) {
    /* Fields 14 and 15 (utime, stime), after the command name in parentheses. */
    fscanf(f, "%*d (%*[^)]) %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime);
    fclose(f);
  }
  return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* Out of file descriptors: the loop must not spin, and service resumes when fds free up. */
static void test_emfile_does_not_spin(void **state) {
  /* A tool like valgrind keeps descriptors and burns CPU of its own: the measure means nothing. */
  if (getenv("UNICRM_WRAPPER") != NULL)
    skip();
  const char *outer = getenv("UNICRM_WRAPPER");
  char wrapper[512];
  snprintf(wrapper, sizeof(wrapper), "prlimit --nofile=48:48 -- %s", outer ? outer : "");
  setenv("UNICRM_WRAPPER", wrapper, 1);
  int rc = fx_start(NULL);
  if (outer != NULL)
    setenv("UNICRM_WRAPPER", outer, 1);
  else
    unsetenv("UNICRM_WRAPPER");
  assert_int_equal(rc, 0);

  enum { N = 80 };
  int fds[N];
  for (int i = 0; i < N; i++)
    fds[i] = h_connect(g_fx.unicrm.port);
  sleep_ms(200);

  /* The limit was really reached: unicrm holds (nearly) every descriptor it may have. */
  char fddir[64];
  snprintf(fddir, sizeof(fddir), "/proc/%d/fd", (int)g_fx.unicrm.pid);
  int open_fds = 0;
  DIR *d = opendir(fddir);
  for (struct dirent *de; d != NULL && (de = readdir(d)) != NULL;)
    open_fds += de->d_name[0] != '.';
  if (d != NULL)
    closedir(d);
  assert_true(open_fds >= 44);

  double before = cpu_seconds(g_fx.unicrm.pid);
  sleep_ms(1000);
  double used = cpu_seconds(g_fx.unicrm.pid) - before;
  if (used >= 0.3)
    fprintf(stderr, "unicrm used %.2f s of CPU in 1 s while out of fds\n", used);
  assert_true(used < 0.3);

  for (int i = 0; i < N; i++) {
    if (fds[i] >= 0)
      close(fds[i]);
  }
  sleep_ms(200);
  struct h_resp r;
  h_request(g_fx.unicrm.port, "GET", "/healthz", NULL, NULL, &r);
  assert_int_equal(r.status, 200);
  h_resp_free(&r);
}

static int healthz_status(int port) {
  struct h_resp r;
  h_request(port, "GET", "/healthz", NULL, "Connection: close", &r);
  int st = (int)r.status;
  h_resp_free(&r);
  return st;
}

/* Several workers share one port; one that dies is replaced; SIGTERM stops them all. */
static void test_workers_restart_and_stop(void **state) {
  if (getenv("UNICRM_WRAPPER") != NULL)
    skip(); /* the wrapper would watch the parent only */
  assert_int_equal(h_mock_start(&g_fx.mock), 0);
  int port = h_free_port();
  char args[64];
  snprintf(args, sizeof(args), "--workers 2 --listen 127.0.0.1:%d", port);
  assert_int_equal(h_unicrm_start_args(&g_fx.unicrm, g_fx.mock.port, NULL, args), 0);
  assert_int_equal(healthz_status(port), 200);

  /* Kill one worker: the parent starts another and the port keeps answering. */
  char cmd[128], line[64];
  snprintf(cmd, sizeof(cmd), "pgrep -P %d | head -1", (int)g_fx.unicrm.pid);
  FILE *p = popen(cmd, "r");
  assert_non_null(fgets(line, sizeof(line), p));
  pclose(p);
  kill((pid_t)atoi(line), SIGKILL);
  assert_true(h_file_wait(g_fx.unicrm.log_path, "worker died; restarting", 3000));
  for (int i = 0; i < 20; i++)
    assert_int_equal(healthz_status(port), 200);

  assert_int_equal(h_stop(&g_fx.unicrm), 0);
  snprintf(cmd, sizeof(cmd), "pgrep -f '[u]nicrm.*listen 127.0.0.1:%d' | wc -l", port);
  p = popen(cmd, "r");
  assert_non_null(fgets(line, sizeof(line), p));
  pclose(p);
  assert_int_equal(atoi(line), 0);
}

/*
 * Found in review: started with stdin, stdout and stderr closed, unicrm's epoll instance took
 * fd 2, log lines were written into it and the exit aborted. It must serve, keep log lines
 * out of every socket, and exit 0.
 */
static void test_closed_std_fds_serve_and_exit_cleanly(void **state) {
  if (getenv("UNICRM_WRAPPER") != NULL)
    skip(); /* the wrapper reports on the stderr this test closes */
  assert_int_equal(h_mock_start(&g_fx.mock), 0);
  assert_int_equal(h_unicrm_start_closed_std(&g_fx.unicrm, g_fx.mock.port), 0);

  for (int i = 0; i < 3; i++) {
    struct h_resp r;
    h_associate(g_fx.unicrm.port, H_PIPEDRIVE, NULL, BODY, &r);
    assert_int_equal(r.status, 201);
    assert_null(strstr(r.body, "level="));
    h_resp_free(&r);
    assert_int_equal(healthz_status(g_fx.unicrm.port), 200);
  }
  assert_int_equal(h_mock_ncalls(g_fx.mock.port), 3);
  assert_int_equal(h_stop(&g_fx.unicrm), 0);
  g_fx.unicrm.pid = 0;
}

/* Workers that cannot start (the port is taken) make the parent give up, not spin. */
static void test_workers_give_up_when_port_taken(void **state) {
  if (getenv("UNICRM_WRAPPER") != NULL)
    skip();
  assert_int_equal(h_mock_start(&g_fx.mock), 0);
  int blocker = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  socklen_t len = sizeof(sa);
  assert_int_equal(bind(blocker, (struct sockaddr *)&sa, sizeof(sa)), 0);
  listen(blocker, 1);
  getsockname(blocker, (struct sockaddr *)&sa, &len);

  char args[64];
  snprintf(args, sizeof(args), "--workers 2 --listen 127.0.0.1:%d", ntohs(sa.sin_port));
  h_unicrm_start_args(&g_fx.unicrm, g_fx.mock.port, NULL, args); /* never reports listening */
  int status = 0;
  pid_t done = 0;
  for (int i = 0; i < 200 && done == 0; i++) {
    done = waitpid(g_fx.unicrm.pid, &status, WNOHANG);
    sleep_ms(50);
  }
  close(blocker);
  assert_int_equal(done, g_fx.unicrm.pid);
  g_fx.unicrm.pid = 0;
  assert_true(WIFEXITED(status));
  assert_int_not_equal(WEXITSTATUS(status), 0);
  assert_true(h_file_contains(g_fx.unicrm.log_path, "giving up"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_sigterm_drains_in_flight, teardown),
      cmocka_unit_test_teardown(test_pipelined_request_not_started_while_draining, teardown),
      cmocka_unit_test_teardown(test_request_completed_while_draining_gets_503, teardown),
      cmocka_unit_test_teardown(test_client_disconnect_cancels_call, teardown),
      cmocka_unit_test_teardown(test_calls_over_host_connections_wait_in_line, teardown),
      cmocka_unit_test_teardown(test_queued_call_dropped_when_client_leaves, teardown),
      cmocka_unit_test_teardown(test_wait_for_connection_counts_against_timeout, teardown),
      cmocka_unit_test_teardown(test_sighup_reload, teardown),
      cmocka_unit_test_teardown(test_max_connections, teardown),
      cmocka_unit_test_teardown(test_emfile_does_not_spin, teardown),
      cmocka_unit_test_teardown(test_workers_restart_and_stop, teardown),
      cmocka_unit_test_teardown(test_workers_give_up_when_port_taken, teardown),
      cmocka_unit_test_teardown(test_closed_std_fds_serve_and_exit_cleanly, teardown),
  };
  return cmocka_run_group_tests_name("lifecycle", tests, NULL, NULL);
}
