/*
 * fuzz_util.h: checks the fuzz targets share.
 *
 * A target that finds a broken invariant calls fuzz_fail, which prints what was wrong and
 * aborts, so libFuzzer saves the input as a crash artifact like any sanitizer report.
 */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static inline void fuzz_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("invariant violated: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  abort();
}

static inline int fuzz_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

static inline int fuzz_hex(unsigned char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/*
 * Whether s[0..len) holds only unreserved bytes, complete %XX escapes and bytes listed in
 * extra. Returns the offset of the first offending byte, or len when all is well.
 */
static inline size_t fuzz_encoded_upto(const char *s, size_t len, const char *extra) {
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (fuzz_unreserved(c) || (c != '\0' && strchr(extra, c) != NULL))
      continue;
    if (c == '%' && i + 2 < len && fuzz_hex((unsigned char)s[i + 1]) >= 0 &&
        fuzz_hex((unsigned char)s[i + 2]) >= 0) {
      i += 2;
      continue;
    }
    return i;
  }
  return len;
}

/* Prints len bytes as hex on stderr, for invariant reports. */
static inline void fuzz_dump_hex(const char *label, const void *p, size_t len) {
  const unsigned char *b = p;
  fprintf(stderr, "%s (%zu bytes): ", label, len);
  for (size_t i = 0; i < len && i < 512; i++)
    fprintf(stderr, "%02x", b[i]);
  fputs(len > 512 ? "...\n" : "\n", stderr);
}

#endif
