#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

static enum ulog_level ulog_min = ULOG_INFO;

static const char *const ulog_names[] = {"debug", "info", "warn", "error"};

/*
 * Held lines wait here for ulog_flush. 4096 bytes is PIPE_BUF: one write of whole lines reaches
 * a pipe that several workers share in one piece, so their lines never interleave mid-line (a
 * file opened with O_APPEND takes each write whole too). Known limit: a crash loses them.
 */
static char ulog_pending[4096];
static size_t ulog_pending_len;
static int ulog_held;

static uv_prepare_t ulog_flusher;
static int ulog_attached;

/* The second the cached "YYYY-MM-DDTHH:MM:SS" stands for; -1 before the first line. */
static time_t ulog_ts_sec = -1;
static char ulog_ts[64];

void ulog_set_level(enum ulog_level level) {
  ulog_min = level;
}

int ulog_parse_level(const char *name, enum ulog_level *out) {
  for (size_t i = 0; i < sizeof(ulog_names) / sizeof(ulog_names[0]); i++) {
    if (strcmp(name, ulog_names[i]) == 0) {
      *out = (enum ulog_level)i;
      return 0;
    }
  }
  return -1;
}

int ulog_enabled(enum ulog_level level) {
  return level >= ulog_min;
}

/* Lines that cannot be written (a full non-blocking pipe, /dev/full) are dropped, all the
 * held ones of that write at once: the log never stops the loop. */
static void ulog_write(const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(STDERR_FILENO, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return;
    p += w;
    n -= (size_t)w;
  }
}

void ulog_flush(void) {
  if (ulog_pending_len == 0)
    return;
  size_t n = ulog_pending_len;
  ulog_pending_len = 0;
  ulog_write(ulog_pending, n);
}

void ulog_hold(int on) {
  ulog_held = on;
  if (!on)
    ulog_flush();
}

static void ulog_on_prepare(uv_prepare_t *h) {
  (void)h;
  ulog_flush();
}

void ulog_attach(uv_loop_t *loop) {
  uv_prepare_init(loop, &ulog_flusher);
  uv_prepare_start(&ulog_flusher, ulog_on_prepare);
  ulog_attached = 1;
  ulog_hold(1);
}

void ulog_detach(void) {
  ulog_hold(0);
  if (!ulog_attached)
    return;
  ulog_attached = 0;
  uv_close((uv_handle_t *)&ulog_flusher, NULL);
}

/* Writes "ts=... level=... comp=... " into line; the date is formatted once a second. */
static size_t ulog_prefix(char *line, size_t size, enum ulog_level level, const char *comp) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (ts.tv_sec != ulog_ts_sec) {
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(ulog_ts, sizeof(ulog_ts), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    ulog_ts_sec = ts.tv_sec;
  }

  int n = snprintf(line, size, "ts=%s.%03ldZ level=%s comp=%s ", ulog_ts, ts.tv_nsec / 1000000,
                   ulog_names[level], comp);
  return n < 0 || (size_t)n >= size ? 0 : (size_t)n;
}

void ulog(enum ulog_level level, const char *comp, const char *fmt, ...) {
  if (!ulog_enabled(level))
    return;

  char line[2048];
  size_t n = ulog_prefix(line, sizeof(line), level, comp);
  if (n == 0)
    return;

  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
  va_end(ap);
  if (m < 0)
    return;
  size_t len = n + strlen(line + n);
  line[len++] = '\n';

  /* The line joins the held ones, so the order on stderr is the order of the calls. */
  if (ulog_pending_len + len > sizeof(ulog_pending))
    ulog_flush();
  memcpy(ulog_pending + ulog_pending_len, line, len);
  ulog_pending_len += len;

  /* A warning or an error goes out at once: it may be the last line before a crash. */
  if (!ulog_held || level >= ULOG_WARN)
    ulog_flush();
}

const char *ulog_quote(char *out, size_t outlen, const char *s) {
  int plain = s[0] != '\0';
  for (const char *p = s; *p != '\0' && plain; p++)
    plain = (unsigned char)*p > ' ' && *p != '"' && *p != '=' && *p != '\\' && *p != 0x7f;

  if (plain) {
    snprintf(out, outlen, "%s", s);
    return out;
  }

  size_t o = 0;
  out[o++] = '"';
  for (const char *p = s; *p != '\0' && o + 6 < outlen; p++) {
    unsigned char c = (unsigned char)*p;
    if (c == '"' || c == '\\') {
      out[o++] = '\\';
      out[o++] = (char)c;
    } else if (c < ' ' || c == 0x7f) {
      o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
    } else {
      out[o++] = (char)c;
    }
  }
  out[o++] = '"';
  out[o] = '\0';
  return out;
}
