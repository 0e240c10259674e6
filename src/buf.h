/*
 * buf.h: a growable byte buffer with a hard cap.
 *
 * The buffer owns its memory; ubuf_free releases it. Every buffer is given its cap when it is
 * made, and an append that would pass the cap fails with UCRM_ETOOBIG and leaves the buffer as
 * it was, so callers can turn an oversized input into an ordinary error.
 */
#ifndef UCRM_BUF_H
#define UCRM_BUF_H

#include <stddef.h>

struct ubuf {
  char *data; /* NUL-terminated whenever len > 0 or after ubuf_cstr */
  size_t len;
  size_t cap; /* bytes allocated */
  size_t max; /* most bytes it may ever hold */
};

void ubuf_init(struct ubuf *b, size_t max);
int ubuf_append(struct ubuf *b, const void *p, size_t n);
int ubuf_puts(struct ubuf *b, const char *s);
int ubuf_printf(struct ubuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ubuf_putc(struct ubuf *b, char c);
/* Appends n in decimal (cheaper than ubuf_printf on the per-request path). */
int ubuf_put_uint(struct ubuf *b, unsigned long long n);

/* Makes room for n more bytes at once (a hint; appends grow the buffer anyway). */
int ubuf_grow(struct ubuf *b, size_t n);

/* Appends s percent-encoding every byte outside the RFC 3986 unreserved set. */
int ubuf_append_pct(struct ubuf *b, const char *s, size_t n);

/* Drops the first n bytes, keeping the rest (used for partially consumed input). */
void ubuf_consume(struct ubuf *b, size_t n);

/* Empties the buffer but keeps its memory for reuse. */
void ubuf_reset(struct ubuf *b);

/* Returns a NUL-terminated view ("" for an empty buffer); valid until the next append. */
const char *ubuf_cstr(struct ubuf *b);

/* Hands the memory to the caller (who frees it with free) and empties the buffer. */
char *ubuf_steal(struct ubuf *b, size_t *len);

void ubuf_free(struct ubuf *b);

#endif
