/*
 * doc_mock.c: the HTTP side of the independent, documentation-built provider mock. It binds
 * 127.0.0.1:0, prints "port=N", answers provider calls through doc_rules.c, records each one,
 * and serves GET /_doc/calls (an array of {method, path, body}) and POST /_doc/reset.
 * SIGTERM or SIGINT closes every handle and exits 0.
 */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>
#include <uv.h>
#include <yajl/yajl_gen.h>

#include "doc_mock.h"

#define DM_MAX_TARGET 8192
#define DM_MAX_HEADER 8192
#define DM_MAX_BODY (1024 * 1024)
#define DM_MAX_CALLS 4096

/* A byte buffer with a hard cap, always NUL-terminated once anything was added. */
struct dm_buf {
  char *p;
  size_t len, max;
};

struct dm_call {
  char *method, *target, *body;
};

struct dm_conn {
  uv_tcp_t tcp; /* first: the handle's memory is the connection's */
  llhttp_t parser;
  struct dm_buf target, hname, hval, body;
  char auth[1024], api_token[256], ctype[256];
  int closing;
};

struct dm_write {
  uv_write_t req;
  struct dm_conn *conn;
  int last;
  char data[];
};

static uv_tcp_t g_server;
static uv_signal_t g_sigterm, g_sigint;
static llhttp_settings_t g_settings;
static struct dm_call g_calls[DM_MAX_CALLS];
static size_t g_ncalls;

static int dm_buf_add(struct dm_buf *b, const char *s, size_t n) {
  if (b->len + n > b->max)
    return -1;
  char *grown = realloc(b->p, b->len + n + 1);
  if (grown == NULL)
    return -1;
  memcpy(grown + b->len, s, n);
  b->p = grown;
  b->len += n;
  b->p[b->len] = '\0';
  return 0;
}

static const char *dm_buf_str(const struct dm_buf *b) {
  return b->len > 0 ? b->p : "";
}

static void dm_calls_clear(void) {
  for (size_t i = 0; i < g_ncalls; i++) {
    free(g_calls[i].method);
    free(g_calls[i].target);
    free(g_calls[i].body);
  }
  g_ncalls = 0;
}

/* Past DM_MAX_CALLS the log stops growing; the tests reset it long before. */
static void dm_calls_add(const char *method, const char *target, const char *body) {
  if (g_ncalls == DM_MAX_CALLS)
    return;
  g_calls[g_ncalls].method = strdup(method);
  g_calls[g_ncalls].target = strdup(target);
  g_calls[g_ncalls].body = strdup(body);
  g_ncalls++;
}

static void dm_gs(yajl_gen g, const char *s) {
  yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void dm_calls_json(struct dm_reply *r) {
  const unsigned char *buf;
  yajl_gen g = yajl_gen_alloc(NULL);
  yajl_gen_array_open(g);
  for (size_t i = 0; i < g_ncalls; i++) {
    yajl_gen_map_open(g);
    dm_gs(g, "method");
    dm_gs(g, g_calls[i].method);
    dm_gs(g, "path");
    dm_gs(g, g_calls[i].target);
    dm_gs(g, "body");
    dm_gs(g, g_calls[i].body);
    yajl_gen_map_close(g);
  }
  yajl_gen_array_close(g);
  yajl_gen_get_buf(g, &buf, &r->len);
  r->status = 200;
  r->body = malloc(r->len);
  if (r->body != NULL)
    memcpy(r->body, buf, r->len);
  yajl_gen_free(g);
}

static void dm_on_closed(uv_handle_t *h) {
  struct dm_conn *c = h->data;
  free(c->target.p);
  free(c->hname.p);
  free(c->hval.p);
  free(c->body.p);
  free(c);
}

static void dm_close(struct dm_conn *c) {
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, dm_on_closed);
}

static void dm_on_written(uv_write_t *req, int status) {
  struct dm_write *w = (struct dm_write *)req;
  if (w->last || status < 0)
    dm_close(w->conn);
  free(w);
}

static const char *dm_reason(int status) {
  static const struct {
    int status;
    const char *text;
  } reasons[] = {{200, "OK"},
                 {204, "No Content"},
                 {400, "Bad Request"},
                 {401, "Unauthorized"},
                 {404, "Not Found"},
                 {405, "Method Not Allowed"},
                 {415, "Unsupported Media Type"}};
  for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
    if (reasons[i].status == status)
      return reasons[i].text;
  }
  return "Error";
}

/* Queues one response; last closes the connection once it is written. */
static void dm_send(struct dm_conn *c, const struct dm_reply *r, int last) {
  char head[512];
  int n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n%s%s", r->status, dm_reason(r->status),
                   r->headers != NULL ? r->headers : "", last ? "Connection: close\r\n" : "");
  if (r->status != 204)
    n += snprintf(head + n, sizeof(head) - (size_t)n,
                  "Content-Type: application/json\r\nContent-Length: %zu\r\n", r->len);
  n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");

  struct dm_write *w = malloc(sizeof(*w) + (size_t)n + r->len);
  if (w == NULL) {
    dm_close(c);
    return;
  }
  w->conn = c;
  w->last = last;
  memcpy(w->data, head, (size_t)n);
  if (r->len > 0)
    memcpy(w->data + n, r->body, r->len);
  uv_buf_t buf = uv_buf_init(w->data, (unsigned)((size_t)n + r->len));
  c->closing |= last;
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, dm_on_written) != 0) {
    free(w);
    dm_close(c);
  }
}

static int dm_on_begin(llhttp_t *p) {
  struct dm_conn *c = p->data;
  c->target.len = c->body.len = 0;
  c->auth[0] = c->api_token[0] = c->ctype[0] = '\0';
  return 0;
}

static int dm_on_url(llhttp_t *p, const char *at, size_t n) {
  return dm_buf_add(&((struct dm_conn *)p->data)->target, at, n);
}

static int dm_on_hname(llhttp_t *p, const char *at, size_t n) {
  return dm_buf_add(&((struct dm_conn *)p->data)->hname, at, n);
}

static int dm_on_hval(llhttp_t *p, const char *at, size_t n) {
  return dm_buf_add(&((struct dm_conn *)p->data)->hval, at, n);
}

static int dm_on_hval_done(llhttp_t *p) {
  struct dm_conn *c = p->data;
  const char *name = dm_buf_str(&c->hname), *value = dm_buf_str(&c->hval);
  if (strcasecmp(name, "authorization") == 0)
    snprintf(c->auth, sizeof(c->auth), "%s", value);
  else if (strcasecmp(name, "x-api-token") == 0)
    snprintf(c->api_token, sizeof(c->api_token), "%s", value);
  else if (strcasecmp(name, "content-type") == 0)
    snprintf(c->ctype, sizeof(c->ctype), "%s", value);
  c->hname.len = c->hval.len = 0;
  return 0;
}

static int dm_on_body(llhttp_t *p, const char *at, size_t n) {
  return dm_buf_add(&((struct dm_conn *)p->data)->body, at, n);
}

/* The mock's own two routes, or one recorded provider call. */
static void dm_answer(struct dm_conn *c, const char *method, struct dm_reply *r) {
  const char *target = dm_buf_str(&c->target);
  size_t plen = strcspn(target, "?");
  char *path = strndup(target, plen);
  int ours = strncmp(target, "/_doc/", 6) == 0;

  memset(r, 0, sizeof(*r));
  if (ours && strcmp(path, "/_doc/calls") == 0 && strcmp(method, "GET") == 0) {
    dm_calls_json(r);
  } else if (ours && strcmp(path, "/_doc/reset") == 0 && strcmp(method, "POST") == 0) {
    dm_calls_clear();
    r->status = 200;
    r->body = strdup("{}");
    r->len = 2;
  } else if (ours) {
    r->status = 404;
    r->body = strdup("{}");
    r->len = 2;
  } else {
    struct dm_req q = {method,     path, c->auth, c->api_token, c->ctype, dm_buf_str(&c->body),
                       c->body.len};
    dm_calls_add(method, target, q.body);
    dm_rules_answer(&q, r);
  }
  free(path);
}

static int dm_on_complete(llhttp_t *p) {
  struct dm_conn *c = p->data;
  struct dm_reply r;
  dm_answer(c, llhttp_method_name((llhttp_method_t)llhttp_get_method(p)), &r);
  dm_send(c, &r, !llhttp_should_keep_alive(p));
  free(r.body);
  return 0;
}

static void dm_on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  buf->base = malloc(size);
  buf->len = buf->base != NULL ? size : 0;
}

static void dm_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct dm_conn *c = s->data;
  if (n < 0) {
    dm_close(c);
  } else if (n > 0 && !c->closing) {
    llhttp_errno_t err = llhttp_execute(&c->parser, buf->base, (size_t)n);
    if (err != HPE_OK && !c->closing) {
      struct dm_reply r = {.status = 400, .body = "{\"error\":\"malformed HTTP request\"}"};
      r.len = strlen(r.body);
      dm_send(c, &r, 1);
    }
  }
  free(buf->base);
}

static void dm_on_connection(uv_stream_t *server, int status) {
  struct dm_conn *c = calloc(1, sizeof(*c));
  if (status < 0 || c == NULL) {
    free(c);
    return;
  }
  c->target.max = DM_MAX_TARGET;
  c->hname.max = c->hval.max = DM_MAX_HEADER;
  c->body.max = DM_MAX_BODY;
  uv_tcp_init(server->loop, &c->tcp);
  c->tcp.data = c;
  llhttp_init(&c->parser, HTTP_REQUEST, &g_settings);
  c->parser.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
      uv_read_start((uv_stream_t *)&c->tcp, dm_on_alloc, dm_on_read) != 0)
    dm_close(c);
}

/* Connections carry their struct in data; the listener and signal handles carry NULL. */
static void dm_close_any(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h))
    uv_close(h, h->data != NULL ? dm_on_closed : NULL);
}

static void dm_on_signal(uv_signal_t *sig, int signum) {
  uv_walk(sig->loop, dm_close_any, NULL);
}

static int dm_listen(uv_loop_t *loop) {
  struct sockaddr_in addr;
  struct sockaddr_storage bound;
  int len = sizeof(bound);
  uv_ip4_addr("127.0.0.1", 0, &addr);
  if (uv_tcp_init(loop, &g_server) != 0 ||
      uv_tcp_bind(&g_server, (const struct sockaddr *)&addr, 0) != 0 ||
      uv_listen((uv_stream_t *)&g_server, 128, dm_on_connection) != 0 ||
      uv_tcp_getsockname(&g_server, (struct sockaddr *)&bound, &len) != 0)
    return -1;
  printf("port=%d\n", ntohs(((struct sockaddr_in *)&bound)->sin_port));
  fflush(stdout);
  return 0;
}

int main(void) {
  uv_loop_t *loop = uv_default_loop();
  signal(SIGPIPE, SIG_IGN);
  llhttp_settings_init(&g_settings);
  g_settings.on_message_begin = dm_on_begin;
  g_settings.on_url = dm_on_url;
  g_settings.on_header_field = dm_on_hname;
  g_settings.on_header_value = dm_on_hval;
  g_settings.on_header_value_complete = dm_on_hval_done;
  g_settings.on_body = dm_on_body;
  g_settings.on_message_complete = dm_on_complete;

  if (dm_listen(loop) != 0) {
    fprintf(stderr, "doc_mock: cannot listen on 127.0.0.1\n");
    return 1;
  }
  uv_signal_init(loop, &g_sigterm);
  uv_signal_start(&g_sigterm, dm_on_signal, SIGTERM);
  uv_signal_init(loop, &g_sigint);
  uv_signal_start(&g_sigint, dm_on_signal, SIGINT);

  uv_run(loop, UV_RUN_DEFAULT);
  dm_calls_clear();
  return uv_loop_close(loop) == 0 ? 0 : 1;
}
