/*
 * mock_util.c: memory, strings, the capped buffer, request/response helpers and logging.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mock.h"

void mock_log(const char *level, const char *fmt, ...) {
  va_list ap;

  fprintf(stderr, "level=%s comp=mock_crm ", level);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

static void mock_oom(size_t n) {
  mock_log("error", "msg=out_of_memory bytes=%zu", n);
  abort();
}

void *mock_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);

  if (p == NULL)
    mock_oom(n);
  return p;
}

void *mock_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);

  if (q == NULL)
    mock_oom(n);
  return q;
}

char *mock_xstrndup(const char *s, size_t n) {
  char *p = mock_xmalloc(n + 1);

  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *mock_xstrdup(const char *s) {
  return mock_xstrndup(s, strlen(s));
}

int mock_strieq(const char *a, const char *b) {
  return strcasecmp(a, b) == 0;
}

int mock_starts_with(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

void mock_base64(const unsigned char *in, size_t n, char *out) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0;

  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)in[i] << 16;
    size_t left = n - i;

    if (left > 1)
      v |= (unsigned)in[i + 1] << 8;
    if (left > 2)
      v |= in[i + 2];
    out[o++] = alphabet[(v >> 18) & 63];
    out[o++] = alphabet[(v >> 12) & 63];
    out[o++] = left > 1 ? alphabet[(v >> 6) & 63] : '=';
    out[o++] = left > 2 ? alphabet[v & 63] : '=';
  }
  out[o] = '\0';
}

static int mock_hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = tolower(c);
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

void mock_form_decode(char *s) {
  char *w = s;

  for (const char *r = s; *r != '\0'; r++) {
    int hi = r[0] == '%' ? mock_hexval((unsigned char)r[1]) : -1;
    int lo = hi >= 0 ? mock_hexval((unsigned char)r[2]) : -1;

    if (lo >= 0) {
      *w++ = (char)(hi * 16 + lo);
      r += 2;
    } else {
      *w++ = *r == '+' ? ' ' : *r;
    }
  }
  *w = '\0';
}

/* ---- capped buffer ---- */

void mock_buf_init(struct mock_buf *b, size_t max) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max;
}

int mock_buf_append(struct mock_buf *b, const void *p, size_t n) {
  if (n > b->max || b->len > b->max - n)
    return -1;

  size_t need = b->len + n + 1;
  if (need > b->cap) {
    size_t cap = b->cap ? b->cap : 256;

    while (cap < need)
      cap *= 2;
    b->data = mock_xrealloc(b->data, cap);
    b->cap = cap;
  }
  if (n > 0)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int mock_buf_puts(struct mock_buf *b, const char *s) {
  return mock_buf_append(b, s, strlen(s));
}

int mock_buf_printf(struct mock_buf *b, const char *fmt, ...) {
  char small[512];
  va_list ap;

  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof(small), fmt, ap);
  va_end(ap);
  if (n < 0)
    return -1;
  if ((size_t)n < sizeof(small))
    return mock_buf_append(b, small, (size_t)n);

  char *big = mock_xmalloc((size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);

  int rc = mock_buf_append(b, big, (size_t)n);
  free(big);
  return rc;
}

const char *mock_buf_cstr(const struct mock_buf *b) {
  return b->data ? b->data : "";
}

char *mock_buf_steal(struct mock_buf *b) {
  char *p = b->data;

  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  return p;
}

void mock_buf_reset(struct mock_buf *b) {
  b->len = 0;
  if (b->data)
    b->data[0] = '\0';
}

void mock_buf_free(struct mock_buf *b) {
  free(b->data);
  mock_buf_init(b, b->max);
}

/* ---- requests and responses ---- */

void mock_req_init(struct mock_req *req) {
  req->method = "GET";
  req->path = NULL;
  req->query = NULL;
  req->host = NULL;
  req->headers = NULL;
  req->nheaders = 0;
  mock_buf_init(&req->body, MOCK_MAX_BODY);
}

static void mock_headers_free(struct mock_header *h, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(h[i].name);
    free(h[i].value);
  }
  free(h);
}

void mock_req_clear(struct mock_req *req) {
  free(req->path);
  free(req->query);
  mock_headers_free(req->headers, req->nheaders);
  mock_buf_free(&req->body);
  mock_req_init(req);
}

const char *mock_req_header(const struct mock_req *req, const char *lname) {
  for (size_t i = 0; i < req->nheaders; i++) {
    if (strcmp(req->headers[i].name, lname) == 0)
      return req->headers[i].value;
  }
  return NULL;
}

void mock_resp_init(struct mock_resp *resp) {
  memset(resp, 0, sizeof(*resp));
  resp->status = 200;
  mock_buf_init(&resp->body, SIZE_MAX);
}

void mock_resp_free(struct mock_resp *resp) {
  mock_headers_free(resp->headers, resp->nheaders);
  mock_buf_free(&resp->body);
  mock_resp_init(resp);
}

void mock_resp_set_header(struct mock_resp *resp, const char *name, const char *value) {
  for (size_t i = 0; i < resp->nheaders; i++) {
    if (mock_strieq(resp->headers[i].name, name)) {
      free(resp->headers[i].value);
      resp->headers[i].value = mock_xstrdup(value);
      return;
    }
  }
  resp->headers = mock_xrealloc(resp->headers, (resp->nheaders + 1) * sizeof(*resp->headers));
  resp->headers[resp->nheaders].name = mock_xstrdup(name);
  resp->headers[resp->nheaders].value = mock_xstrdup(value);
  resp->nheaders++;
}

void mock_resp_json(struct mock_resp *resp, int status, const char *json) {
  resp->status = status;
  resp->no_body = 0;
  mock_buf_reset(&resp->body);
  mock_buf_puts(&resp->body, json);
}

int mock_split_path(const char *path, struct mock_segs *s) {
  size_t len = strlen(path);

  s->n = 0;
  if (len == 0 || path[0] != '/' || len >= sizeof(s->buf))
    return -1;
  memcpy(s->buf, path + 1, len);

  char *p = s->buf;
  for (;;) {
    if (s->n == MOCK_MAX_SEGS)
      return -1;
    s->seg[s->n++] = p;

    char *slash = strchr(p, '/');
    if (slash == NULL)
      return 0;
    *slash = '\0';
    p = slash + 1;
  }
}

struct mock_reason_row {
  int status;
  const char *phrase;
};

static const struct mock_reason_row mock_reasons[] = {
    {100, "Continue"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {304, "Not Modified"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {413, "Payload Too Large"},
    {415, "Unsupported Media Type"},
    {422, "Unprocessable Entity"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
};

const char *mock_reason(int status) {
  for (size_t i = 0; i < sizeof(mock_reasons) / sizeof(mock_reasons[0]); i++) {
    if (mock_reasons[i].status == status)
      return mock_reasons[i].phrase;
  }
  return "Unknown";
}
