#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum ulog_level ulog_min = ULOG_INFO;

static const char *const ulog_names[] = {"debug", "info", "warn", "error"};

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

void ulog(enum ulog_level level, const char *comp, const char *fmt, ...) {
  if (!ulog_enabled(level))
    return;

  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);

  /* One buffer and one fwrite, so lines from several workers never interleave mid-line. */
  char line[2048];
  int n = snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s comp=%s ",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   ts.tv_nsec / 1000000, ulog_names[level], comp);
  if (n < 0 || (size_t)n >= sizeof(line))
    return;

  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (m < 0)
    return;

  size_t len = strlen(line);
  line[len++] = '\n';
  fwrite(line, 1, len, stderr);
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
