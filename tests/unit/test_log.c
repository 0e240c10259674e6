/*
 * Unit tests for src/log.c: held lines, their flush before a loop blocks, long lines. stderr is
 * swapped for a pipe around each test, so what the module wrote is read back as it is.
 */
#include "unit_helpers.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "log.h"

static int saved_stderr = -1;
static int pipe_rd = -1;

static int stderr_to_pipe(void **state) {
  (void)state;
  int fds[2];
  if (pipe(fds) != 0)
    return -1;
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  saved_stderr = dup(STDERR_FILENO);
  dup2(fds[1], STDERR_FILENO);
  close(fds[1]);
  pipe_rd = fds[0];
  ulog_set_level(ULOG_INFO);
  return 0;
}

/* Puts stderr back and passes on what is left in the pipe (a failed assertion's message). */
static int stderr_back(void **state) {
  (void)state;
  ulog_hold(0);
  dup2(saved_stderr, STDERR_FILENO);
  close(saved_stderr);
  char rest[4096];
  ssize_t n;
  while ((n = read(pipe_rd, rest, sizeof(rest))) > 0)
    fwrite(rest, 1, (size_t)n, stderr);
  close(pipe_rd);
  return 0;
}

/* What the pipe holds now (it never blocks); NUL-terminated. */
static size_t drain(char *out, size_t size) {
  ssize_t n = read(pipe_rd, out, size - 1);
  size_t got = n > 0 ? (size_t)n : 0;
  out[got] = '\0';
  return got;
}

static void test_unheld_line_goes_out_at_once(void **state) {
  char got[4096];
  ulog(ULOG_INFO, "test", "k=v");
  assert_true(drain(got, sizeof(got)) > 0);
  assert_non_null(strstr(got, " level=info comp=test k=v\n"));
  assert_memory_equal(got, "ts=", 3);
}

static void test_held_lines_wait_for_flush_in_one_write(void **state) {
  char got[4096];
  ulog_hold(1);
  ulog(ULOG_INFO, "test", "n=1");
  ulog(ULOG_DEBUG, "test", "n=skipped");
  ulog(ULOG_INFO, "test", "n=2");
  assert_int_equal(drain(got, sizeof(got)), 0);

  ulog_flush();
  assert_true(drain(got, sizeof(got)) > 0);
  const char *one = strstr(got, "n=1\n"), *two = strstr(got, "n=2\n");
  assert_true(one != NULL && two != NULL && one < two);
  assert_null(strstr(got, "skipped"));
}

/* A warning goes out at once, behind the held lines that came before it. */
static void test_warning_is_not_held(void **state) {
  char got[4096];
  ulog_hold(1);
  ulog(ULOG_INFO, "test", "first=1");
  ulog(ULOG_WARN, "test", "second=1");
  assert_true(drain(got, sizeof(got)) > 0);
  const char *first = strstr(got, "first=1\n"), *second = strstr(got, "second=1\n");
  assert_true(first != NULL && second != NULL && first < second);
}

static void test_stopping_the_hold_flushes(void **state) {
  char got[4096];
  ulog_hold(1);
  ulog(ULOG_INFO, "test", "late=1");
  assert_int_equal(drain(got, sizeof(got)), 0);
  ulog_hold(0);
  drain(got, sizeof(got));
  assert_non_null(strstr(got, "late=1\n"));
}

/* A line longer than the line buffer is cut but keeps its newline. */
static void test_long_line_is_cut_with_its_newline(void **state) {
  static char value[3000];
  memset(value, 'x', sizeof(value) - 1);
  char got[4096];
  ulog(ULOG_INFO, "test", "v=%s", value);
  size_t n = drain(got, sizeof(got));
  assert_true(n > 1000 && n < 2048);
  assert_int_equal(got[n - 1], '\n');
  assert_ptr_equal(strchr(got, '\n'), got + n - 1);
}

/* More held lines than the buffer takes: the older ones leave first, none is lost. */
static void test_full_buffer_writes_the_older_lines(void **state) {
  static char value[1000];
  memset(value, 'y', sizeof(value) - 1);
  char got[16384];
  ulog_hold(1);
  for (int i = 0; i < 6; i++)
    ulog(ULOG_INFO, "test", "i=%d v=%s", i, value);
  size_t early = drain(got, sizeof(got));
  assert_true(early > 0);
  ulog_flush();
  size_t rest = drain(got + early, sizeof(got) - early);
  int lines = 0;
  for (size_t i = 0; i < early + rest; i++)
    lines += got[i] == '\n';
  assert_int_equal(lines, 6);
  assert_non_null(strstr(got, "i=0 "));
  assert_non_null(strstr(got, "i=5 "));
}

/*
 * Attached to a loop, a line logged in a timer callback (and nothing else to do in that turn)
 * is written before the loop blocks: the later timer finds it in the pipe already.
 */
struct timers {
  uv_timer_t log, look;
  char seen[4096];
};

static void on_log_timer(uv_timer_t *t) {
  (void)t;
  ulog(ULOG_INFO, "test", "from=timer");
}

static void on_look_timer(uv_timer_t *t) {
  struct timers *tm = t->data;
  drain(tm->seen, sizeof(tm->seen));
  ulog_detach();
  uv_close((uv_handle_t *)&tm->log, NULL);
  uv_close((uv_handle_t *)&tm->look, NULL);
}

static void test_attached_loop_flushes_before_blocking(void **state) {
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  ulog_attach(&loop);

  struct timers tm = {.seen = ""};
  uv_timer_init(&loop, &tm.log);
  uv_timer_init(&loop, &tm.look);
  tm.look.data = &tm;
  uv_timer_start(&tm.log, on_log_timer, 10, 0);
  uv_timer_start(&tm.look, on_look_timer, 300, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);

  assert_non_null(strstr(tm.seen, "from=timer\n"));
}

int main(void) {
  unit_filters_from_env();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_unheld_line_goes_out_at_once, stderr_to_pipe,
                                      stderr_back),
      cmocka_unit_test_setup_teardown(test_held_lines_wait_for_flush_in_one_write, stderr_to_pipe,
                                      stderr_back),
      cmocka_unit_test_setup_teardown(test_warning_is_not_held, stderr_to_pipe, stderr_back),
      cmocka_unit_test_setup_teardown(test_stopping_the_hold_flushes, stderr_to_pipe, stderr_back),
      cmocka_unit_test_setup_teardown(test_long_line_is_cut_with_its_newline, stderr_to_pipe,
                                      stderr_back),
      cmocka_unit_test_setup_teardown(test_full_buffer_writes_the_older_lines, stderr_to_pipe,
                                      stderr_back),
      cmocka_unit_test_setup_teardown(test_attached_loop_flushes_before_blocking, stderr_to_pipe,
                                      stderr_back),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
