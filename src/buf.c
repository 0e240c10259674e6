#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

void ubuf_init(struct ubuf *b, size_t max) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max;
}

/* Makes room for n more bytes plus a terminating NUL. */
static int ubuf_reserve(struct ubuf *b, size_t n) {
  if (n > b->max || b->len > b->max - n)
    return UCRM_ETOOBIG;

  size_t need = b->len + n + 1;
  if (need <= b->cap)
    return 0;

  size_t cap = b->cap ? b->cap : 64;
  while (cap < need)
    cap *= 2;

  char *p = realloc(b->data, cap);
  if (p == NULL)
    return UCRM_ENOMEM;

  b->data = p;
  b->cap = cap;
  return 0;
}

int ubuf_append(struct ubuf *b, const void *p, size_t n) {
  int rc = ubuf_reserve(b, n);
  if (rc != 0)
    return rc;

  if (n > 0)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int ubuf_puts(struct ubuf *b, const char *s) {
  return ubuf_append(b, s, strlen(s));
}

int ubuf_putc(struct ubuf *b, char c) {
  return ubuf_append(b, &c, 1);
}

int ubuf_put_uint(struct ubuf *b, unsigned long long n) {
  char tmp[24];
  size_t i = sizeof(tmp);
  do {
    tmp[--i] = (char)('0' + n % 10);
    n /= 10;
  } while (n != 0);
  return ubuf_append(b, tmp + i, sizeof(tmp) - i);
}

int ubuf_printf(struct ubuf *b, const char *fmt, ...) {
  /* Format straight into the spare room; only a line that does not fit is formatted twice. */
  size_t room = b->cap > b->len ? b->cap - b->len : 0;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(room > 0 ? b->data + b->len : NULL, room, fmt, ap);
  va_end(ap);
  if (n < 0)
    return UCRM_EINVAL;

  if ((size_t)n < room) {
    if ((size_t)n > b->max || b->len > b->max - (size_t)n) {
      b->data[b->len] = '\0';
      return UCRM_ETOOBIG;
    }
    b->len += (size_t)n;
    return 0;
  }

  int rc = ubuf_reserve(b, (size_t)n);
  if (rc != 0) {
    if (b->data != NULL)
      b->data[b->len] = '\0';
    return rc;
  }

  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

int ubuf_grow(struct ubuf *b, size_t n) {
  return ubuf_reserve(b, n);
}

static int ubuf_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

int ubuf_append_pct(struct ubuf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";

  /* Measure, reserve once, then plain stores: no bounds check per byte. */
  size_t need = n;
  for (size_t i = 0; i < n; i++)
    need += ubuf_unreserved((unsigned char)s[i]) ? 0 : 2;
  int rc = ubuf_reserve(b, need);
  if (rc != 0)
    return rc;
  char *o = b->data + b->len;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (ubuf_unreserved(c)) {
      *o++ = (char)c;
    } else {
      *o++ = '%';
      *o++ = hex[c >> 4];
      *o++ = hex[c & 15];
    }
  }
  b->len = (size_t)(o - b->data);
  b->data[b->len] = '\0';
  return 0;
}

void ubuf_consume(struct ubuf *b, size_t n) {
  if (n >= b->len) {
    ubuf_reset(b);
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
  b->data[b->len] = '\0';
}

void ubuf_reset(struct ubuf *b) {
  b->len = 0;
  if (b->data != NULL)
    b->data[0] = '\0';
}

const char *ubuf_cstr(struct ubuf *b) {
  return b->data != NULL ? b->data : "";
}

char *ubuf_steal(struct ubuf *b, size_t *len) {
  char *p = b->data;
  if (len != NULL)
    *len = b->len;
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  return p;
}

void ubuf_free(struct ubuf *b) {
  free(b->data);
  ubuf_init(b, b->max);
}
