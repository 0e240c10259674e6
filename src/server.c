#include "server.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <llhttp.h>

#include "common.h"
#include "log.h"

#define SRV_URL_MAX 8192
#define SRV_CHUNK_EXT_MAX 1024
#define SRV_READ_BUF 65536
/* Input kept while a request is in flight; past this the connection stops reading. */
#define SRV_PENDING_MAX (256 * 1024)
/* Answers held for one write (pipelining) leave early past this size. */
#define SRV_BATCH_MAX (64 * 1024)
/*
 * Answers waiting for a client to read them: past this, the connection's pipelined requests
 * are left unparsed and reading stops until the socket has taken half of it. Without it, a
 * client that pipelines cheap requests and never reads makes us queue answers without bound.
 */
#define SRV_OUT_HIGH (256 * 1024)

/* IDLE: between requests; READING: a request is arriving; BUSY: a handler has it;
 * CLOSING: the last response is leaving and nothing more is parsed. */
enum srv_conn_state { SRV_IDLE, SRV_READING, SRV_BUSY, SRV_CLOSING };

struct srv_conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  llhttp_t parser;
  struct srv *srv;
  struct srv_conn *prev, *next;
  enum srv_conn_state state;

  struct ubuf in; /* received bytes not yet parsed (a request was in flight) */
  struct ubuf url;
  struct ubuf body;
  char hname[64]; /* the header being read, lower-cased; longer names are not ours */
  size_t hname_len;
  char hvalue[80];
  size_t hvalue_len;
  size_t header_bytes;
  size_t chunk_ext_bytes;
  int expect_continue;
  int keep_alive;
  int reading_stopped;
  int processing;
  int closing;
  int close_after_write;
  int err_status;    /* set by a callback that failed with HPE_USER */
  int head_request;  /* the request being answered is a HEAD */
  int refuse_status; /* a header we cannot honour: answer this once the headers are in */
  unsigned writes_pending;
  int handles_open;
  /* Answers made while the connection's input is being worked through (a batch) collect here
   * and leave in one write when it ends, so pipelined requests answered together cost one
   * system call. */
  struct ubuf out;
  int batch;
  /* A streamed answer holds a batch open until the loop's check phase, so a head, a body and
   * an end made in one loop turn (a small relayed reply) leave in one write. */
  int corked;
  struct srv_conn *cork_next;
  struct srv_req req;
};

struct srv {
  uv_loop_t *loop;
  uv_tcp_t listener;
  struct ucrm_limits limits;
  srv_request_cb on_request;
  srv_request_cb on_complete;
  void *data;
  llhttp_settings_t settings;
  struct srv_conn *conns;
  int nconns;
  int draining;
  uv_idle_t drain_check;   /* reports "drained" from a clean stack, not from inside a close */
  uv_check_t uncork;       /* after each loop turn's I/O: flushes the corked connections */
  uv_prepare_t uncork_pre; /* and before the loop blocks, for corks made outside the poll phase */
  struct srv_conn *corked;
  srv_drained_cb on_drained;
  char read_buf[SRV_READ_BUF];
  char date[64];
  time_t date_at;
  uint64_t next_id;
  uint64_t id_prefix;
};

struct srv_write {
  uv_write_t req;
  struct srv_conn *conn;
  char *data;
};

static void srv_conn_close(struct srv_conn *c);
static void srv_process(struct srv_conn *c);
static void srv_recheck_drain(struct srv *s);
static void srv_batch_begin(struct srv_conn *c);
static void srv_batch_end(struct srv_conn *c);
static void srv_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void srv_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

/* ---- small helpers ---- */

struct srv_phrase {
  int status;
  const char *text;
};

static const struct srv_phrase srv_phrases[] = {
    {100, "Continue"},
    {200, "OK"},
    {201, "Created"},
    {204, "No Content"},
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
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {422, "Unprocessable Entity"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
    {417, "Expectation Failed"},
};

const char *srv_reason(int status) {
  for (size_t i = 0; i < UCRM_ARRAY_LEN(srv_phrases); i++) {
    if (srv_phrases[i].status == status)
      return srv_phrases[i].text;
  }
  return status < 500 ? "Bad Request" : "Internal Server Error";
}

uint64_t srv_now_ms(const struct srv *s) {
  return uv_now(s->loop);
}

/* The Date header changes once a second; format it only then. */
static const char *srv_date(struct srv *s) {
  time_t now = time(NULL);
  if (now != s->date_at) {
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(s->date, sizeof(s->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    s->date_at = now;
  }
  return s->date;
}

static struct srv_conn *srv_conn_of(llhttp_t *p) {
  return p->data;
}

/* Bytes of answers the client has not taken yet: queued in libuv, or held for one write. */
static size_t srv_out_bytes(const struct srv_conn *c) {
  return c->tcp.write_queue_size + c->out.len;
}

/* ---- writing ---- */

static void srv_after_write(struct srv_conn *c) {
  if (c->writes_pending == 0 && c->out.len == 0 && c->close_after_write)
    srv_conn_close(c);
}

static void srv_on_write(uv_write_t *req, int status) {
  struct srv_write *w = (struct srv_write *)req;
  struct srv_conn *c = w->conn;

  free(w->data);
  free(w);
  c->writes_pending--;
  if (status < 0 && !c->closing) {
    srv_conn_close(c);
    return;
  }

  /* A streaming handler paused its provider while the client caught up: wake it. */
  if (c->writes_pending == 0 && c->state == SRV_BUSY && c->req.on_drain != NULL)
    c->req.on_drain(c->req.drain_data);
  srv_after_write(c);
  if (c->closing)
    return;
  if (c->writes_pending == 0)
    srv_recheck_drain(c->srv); /* a drain waits for answers to leave, not only to be made */

  /* Pipelined requests held back while the client was not reading: go on with them. */
  if ((c->state == SRV_IDLE || c->state == SRV_READING) && (c->in.len > 0 || c->reading_stopped) &&
      srv_out_bytes(c) < SRV_OUT_HIGH / 2) {
    srv_batch_begin(c);
    srv_process(c);
    srv_batch_end(c);
  }
}

/* Writes what the socket takes now and queues the rest; takes ownership of data. */
static void srv_write_now(struct srv_conn *c, char *data, size_t len) {

  uv_buf_t buf = uv_buf_init(data, (unsigned)len);
  int n = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
  if (n == (int)len) {
    free(data);
    return;
  }
  if (n < 0 && n != UV_EAGAIN) {
    free(data);
    srv_conn_close(c);
    return;
  }

  size_t done = n > 0 ? (size_t)n : 0;
  struct srv_write *w = malloc(sizeof(*w));
  if (w == NULL) {
    free(data);
    srv_conn_close(c);
    return;
  }
  w->conn = c;
  w->data = data;
  buf = uv_buf_init(data + done, (unsigned)(len - done));
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, srv_on_write) != 0) {
    free(data);
    free(w);
    srv_conn_close(c);
    return;
  }
  c->writes_pending++;
}

/* A long burst inside a batch: let the socket have what is held so far. */
static void srv_flush_early(struct srv_conn *c) {
  size_t n;
  char *held = ubuf_steal(&c->out, &n);
  srv_write_now(c, held, n);
}

/*
 * Sends data, or holds it until the batch ends; takes ownership of data, which must have room
 * for len + 1 bytes (a ubuf's, or a string's).
 */
static void srv_send(struct srv_conn *c, char *data, size_t len) {
  if (c->closing || len == 0) {
    free(data);
    return;
  }
  if (c->batch == 0) {
    srv_write_now(c, data, len);
    return;
  }

  if (c->out.data == NULL) { /* the first answer of the batch: keep its buffer, no copy */
    c->out.data = data;
    c->out.len = len;
    c->out.cap = len + 1;
    c->out.data[len] = '\0';
    return;
  }
  int rc = ubuf_append(&c->out, data, len);
  free(data);
  if (rc != 0) {
    srv_conn_close(c);
    return;
  }
  if (c->out.len >= SRV_BATCH_MAX)
    srv_flush_early(c);
}

static void srv_batch_begin(struct srv_conn *c) {
  c->batch++;
}

/* Ends a batch: what it collected leaves in one write. */
static void srv_batch_end(struct srv_conn *c) {
  if (--c->batch > 0)
    return;
  if (c->closing) {
    ubuf_free(&c->out);
    return;
  }
  if (c->out.len == 0)
    return;

  size_t n;
  char *data = ubuf_steal(&c->out, &n);
  srv_write_now(c, data, n);
  if (!c->closing)
    srv_after_write(c);
}

static void srv_uncork_all(struct srv *s) {
  uv_check_stop(&s->uncork);
  uv_prepare_stop(&s->uncork_pre);
  while (s->corked != NULL) {
    struct srv_conn *c = s->corked;
    s->corked = c->cork_next;
    c->cork_next = NULL;
    c->corked = 0;
    srv_batch_end(c);
  }
}

static void srv_on_uncork(uv_check_t *h) {
  srv_uncork_all(h->data);
}

static void srv_on_uncork_pre(uv_prepare_t *h) {
  srv_uncork_all(h->data);
}

/* Holds what the connection sends until this loop turn's I/O is done. */
static void srv_cork(struct srv_conn *c) {
  if (c->corked || c->closing)
    return;
  struct srv *s = c->srv;
  c->corked = 1;
  srv_batch_begin(c);
  c->cork_next = s->corked;
  s->corked = c;
  uv_check_start(&s->uncork, srv_on_uncork);
  uv_prepare_start(&s->uncork_pre, srv_on_uncork_pre);
}

static void srv_uncork_forget(struct srv_conn *c) {
  struct srv_conn **pp = &c->srv->corked;
  while (*pp != NULL && *pp != c)
    pp = &(*pp)->cork_next;
  if (*pp == c)
    *pp = c->cork_next;
  c->corked = 0;
}

static int srv_head(struct ubuf *out, struct srv_conn *c, int status, const char *ctype,
                    const char *extra) {
  struct srv_req *r = &c->req;
  /* Appended piece by piece: formatting with printf was a visible share of each request. */
  const char *parts[] = {" ",
                         srv_reason(status),
                         "\r\nDate: ",
                         srv_date(c->srv),
                         "\r\nX-Request-Id: ",
                         r->request_id,
                         "\r\n"};
  int rc = ubuf_puts(out, "HTTP/1.1 ");
  rc = rc != 0 ? rc : ubuf_put_uint(out, (unsigned)status);
  for (size_t i = 0; rc == 0 && i < UCRM_ARRAY_LEN(parts); i++)
    rc = ubuf_puts(out, parts[i]);
  if (rc == 0 && ctype != NULL) {
    rc = ubuf_puts(out, "Content-Type: ");
    rc = rc != 0 ? rc : ubuf_puts(out, ctype);
    rc = rc != 0 ? rc : ubuf_puts(out, "\r\n");
  }
  if (rc == 0 && !c->keep_alive)
    rc = ubuf_puts(out, "Connection: close\r\n");
  if (rc == 0 && extra != NULL)
    rc = ubuf_puts(out, extra);
  return rc;
}

uint64_t srv_req_age_ms(const struct srv_req *r) {
  return srv_now_ms(r->conn->srv) - r->start_ms;
}

static void srv_access_log(struct srv_conn *c) {
  struct srv_req *r = &c->req;
  if (c->srv->on_complete != NULL)
    c->srv->on_complete(r, c->srv->data);
  if (!ulog_enabled(ULOG_INFO))
    return;

  char path[256];
  ulog(ULOG_INFO, "access",
       "req_id=%s method=%s path=%s status=%d format=%s provider=%s provider_calls=%d "
       "retries=%d dur_ms=%llu",
       r->request_id, r->method_name, ulog_quote(path, sizeof(path), r->path), r->status,
       r->log_format ? r->log_format : "-", r->log_provider ? r->log_provider : "-", r->log_calls,
       r->log_retries, (unsigned long long)(srv_now_ms(c->srv) - r->start_ms));
}

/*
 * Drained: no request is arriving or being handled, and every answer has reached its socket
 * (closing the connections before would cut the answers still queued). A client that never
 * reads holds the drain until drain_timeout_ms.
 */
static int srv_drained(const struct srv *s) {
  for (const struct srv_conn *c = s->conns; c != NULL; c = c->next) {
    if (c->closing)
      continue;
    if (c->state == SRV_READING || c->state == SRV_BUSY || srv_out_bytes(c) > 0)
      return 0;
  }
  return 1;
}

static void srv_on_drain_check(uv_idle_t *h) {
  struct srv *s = h->data;
  uv_idle_stop(h);
  if (s->draining && s->on_drained != NULL && srv_drained(s)) {
    srv_drained_cb cb = s->on_drained;
    s->on_drained = NULL;
    cb(s);
  }
}

/* While draining, every finished request may be the last: look again from a clean stack. */
static void srv_recheck_drain(struct srv *s) {
  if (s->draining && s->on_drained != NULL)
    uv_idle_start(&s->drain_check, srv_on_drain_check);
}

/* The response is fully queued: log it and move on to the next pipelined request. */
static void srv_req_done(struct srv_conn *c) {
  srv_access_log(c);
  srv_recheck_drain(c->srv);
  memset(&c->req, 0, sizeof(c->req));
  c->req.conn = c;
  c->head_request = 0;
  ubuf_reset(&c->url);
  ubuf_reset(&c->body);

  if (!c->keep_alive || c->srv->draining) {
    c->state = SRV_CLOSING;
    uv_timer_stop(&c->timer);
    c->close_after_write = 1;
    srv_after_write(c);
    return;
  }

  c->state = SRV_IDLE;
  llhttp_resume(&c->parser);
  srv_process(c);
}

void srv_respond(struct srv_req *r, int status, const char *content_type, const char *extra_headers,
                 const char *body, size_t len) {
  struct srv_conn *c = r->conn;
  struct ubuf out;
  ubuf_init(&out, len + 4096);
  ubuf_grow(&out, len + 512); /* one allocation for head and body in the common case */

  r->status = status;
  int rc = srv_head(&out, c, status, content_type, extra_headers);
  if (status == 204 || status == 304)
    len = 0; /* these never carry a body, nor a Content-Length for one */
  if (rc == 0 && status != 204 && status != 304) {
    rc = ubuf_puts(&out, "Content-Length: ");
    rc = rc != 0 ? rc : ubuf_put_uint(&out, len);
  }
  rc = rc != 0 ? rc : ubuf_puts(&out, status == 204 || status == 304 ? "\r\n" : "\r\n\r\n");
  /* A HEAD answer announces the body's length but never carries it (RFC 9110, 9.3.2). */
  if (rc == 0 && !c->head_request)
    rc = ubuf_append(&out, body, len);
  if (rc != 0) {
    ubuf_free(&out);
    c->keep_alive = 0;
    srv_conn_close(c);
    return;
  }

  size_t n;
  char *data = ubuf_steal(&out, &n);
  srv_batch_begin(c); /* answers of pipelined requests behind this one may join it */
  srv_send(c, data, n);
  srv_req_done(c);
  srv_batch_end(c);
}

void srv_stream_begin(struct srv_req *r, int status, const char *content_type,
                      const char *extra_headers) {
  struct srv_conn *c = r->conn;
  struct ubuf out;
  ubuf_init(&out, 8192);

  r->status = status;
  r->streaming = 1;
  srv_cork(c);
  if (srv_head(&out, c, status, content_type, extra_headers) != 0 ||
      ubuf_puts(&out, "Transfer-Encoding: chunked\r\n\r\n") != 0) {
    ubuf_free(&out);
    srv_conn_close(c);
    return;
  }
  size_t n;
  char *data = ubuf_steal(&out, &n);
  srv_send(c, data, n);
}

void srv_stream_write(struct srv_req *r, const char *data, size_t len) {
  struct srv_conn *c = r->conn;
  if (len == 0 || c->closing)
    return; /* an empty chunk would end the body */

  /* Straight into the corked output: no buffer of its own per chunk. */
  srv_cork(c);
  char head[24];
  int hn = snprintf(head, sizeof(head), "%zx\r\n", len);
  if (ubuf_append(&c->out, head, (size_t)hn) != 0 || ubuf_append(&c->out, data, len) != 0 ||
      ubuf_puts(&c->out, "\r\n") != 0) {
    srv_conn_close(c);
    return;
  }
  if (c->out.len >= SRV_BATCH_MAX)
    srv_flush_early(c);
}

void srv_stream_end(struct srv_req *r) {
  struct srv_conn *c = r->conn;
  char *end = strdup("0\r\n\r\n");
  srv_batch_begin(c);
  if (end != NULL)
    srv_send(c, end, 5);
  r->streaming = 0;
  srv_req_done(c);
  srv_batch_end(c);
}

void srv_req_abort(struct srv_req *r) {
  r->on_abort = NULL;
  r->on_drain = NULL;
  r->status = r->status ? r->status : 502;
  srv_access_log(r->conn);
  srv_conn_close(r->conn);
}

size_t srv_req_pending_bytes(const struct srv_req *r) {
  return r->conn->tcp.write_queue_size + r->conn->out.len;
}

static void srv_make_request_id(struct srv *s, char *out, size_t outlen);

/* An error found while parsing: answer it as JSON and close the connection. */
static void srv_fail(struct srv_conn *c, int status, const char *message) {
  char body[512];
  int n = snprintf(body, sizeof(body), "{\"statusCode\":%d,\"error\":\"%s\",\"message\":\"%s\"}",
                   status, srv_reason(status), message);
  c->keep_alive = 0;
  c->state = SRV_BUSY;
  c->req.method_name = "-";
  c->req.path = "-";
  if (c->req.request_id[0] == '\0')
    srv_make_request_id(c->srv, c->req.request_id, sizeof(c->req.request_id));
  srv_respond(&c->req, status, "application/json", NULL, body, (size_t)n);
}

/* ---- timers ---- */

static void srv_on_timeout(uv_timer_t *t) {
  struct srv_conn *c = t->data;
  if (c->state == SRV_READING)
    srv_fail(c, 408, "the request was not received in time");
  else if (c->state == SRV_IDLE)
    srv_conn_close(c);
}

static void srv_arm_timer(struct srv_conn *c) {
  const struct ucrm_limits *l = &c->srv->limits;
  if (c->state == SRV_BUSY || c->state == SRV_CLOSING || c->closing)
    uv_timer_stop(&c->timer);
  else if (c->state == SRV_READING)
    uv_timer_start(&c->timer, srv_on_timeout, (uint64_t)l->header_timeout_ms, 0);
  else
    uv_timer_start(&c->timer, srv_on_timeout, (uint64_t)l->idle_timeout_ms, 0);
}

/* ---- llhttp callbacks ---- */

static int srv_user_error(struct srv_conn *c, int status) {
  c->err_status = status;
  return HPE_USER;
}

static int srv_on_message_begin(llhttp_t *p) {
  struct srv_conn *c = srv_conn_of(p);
  struct srv_req *r = &c->req;

  ubuf_reset(&c->url);
  ubuf_reset(&c->body);
  c->header_bytes = 0;
  c->chunk_ext_bytes = 0;
  c->expect_continue = 0;
  c->hname_len = 0;
  c->hvalue_len = 0;
  c->err_status = 0;
  c->refuse_status = 0;
  memset(r, 0, sizeof(*r));
  r->conn = c;
  r->start_ms = srv_now_ms(c->srv);
  r->request_id[0] = '\0';
  c->state = SRV_READING;
  srv_arm_timer(c);
  return 0;
}

static int srv_on_url(llhttp_t *p, const char *at, size_t len) {
  struct srv_conn *c = srv_conn_of(p);
  return ubuf_append(&c->url, at, len) == 0 ? 0 : srv_user_error(c, 414);
}

static int srv_count_header(struct srv_conn *c, size_t len) {
  c->header_bytes += len;
  return c->header_bytes > (size_t)c->srv->limits.max_header_bytes ? srv_user_error(c, 431) : 0;
}

static int srv_on_header_field(llhttp_t *p, const char *at, size_t len) {
  struct srv_conn *c = srv_conn_of(p);
  for (size_t i = 0; i < len && c->hname_len < sizeof(c->hname) - 1; i++)
    c->hname[c->hname_len++] = (char)(at[i] >= 'A' && at[i] <= 'Z' ? at[i] + 32 : at[i]);
  c->hname[c->hname_len] = '\0';
  return srv_count_header(c, len);
}

static int srv_on_header_value(llhttp_t *p, const char *at, size_t len) {
  struct srv_conn *c = srv_conn_of(p);
  for (size_t i = 0; i < len && c->hvalue_len < sizeof(c->hvalue) - 1; i++)
    c->hvalue[c->hvalue_len++] = at[i];
  c->hvalue[c->hvalue_len] = '\0';
  return srv_count_header(c, len);
}

/* A client request id is echoed and sent upstream only if it is a plain token. */
static int srv_sane_request_id(const char *s, size_t len) {
  if (len == 0 || len > 64)
    return 0;
  return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:") == len;
}

static int srv_on_header_value_complete(llhttp_t *p) {
  struct srv_conn *c = srv_conn_of(p);

  if (strcmp(c->hname, "x-request-id") == 0 && srv_sane_request_id(c->hvalue, c->hvalue_len))
    memcpy(c->req.request_id, c->hvalue, c->hvalue_len + 1);
  else if (strcmp(c->hname, "expect") == 0 && strcasecmp(c->hvalue, "100-continue") == 0)
    c->expect_continue = 1;
  else if (strcmp(c->hname, "expect") == 0)
    c->refuse_status = 417; /* RFC 9110, 10.1.1: an expectation we cannot meet */
  else if (strcmp(c->hname, "transfer-encoding") == 0 && strcasecmp(c->hvalue, "chunked") != 0)
    c->refuse_status = 501; /* RFC 9112, 6.1: a transfer coding we do not implement */

  c->hname_len = 0;
  c->hvalue_len = 0;
  c->hname[0] = '\0';
  c->hvalue[0] = '\0';
  return 0;
}

static int srv_on_headers_complete(llhttp_t *p) {
  struct srv_conn *c = srv_conn_of(p);
  long max_body = c->srv->limits.max_body_bytes;

  /* -1 is how on_headers_complete fails; other values mean "no body" or "upgrade". */
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > (uint64_t)max_body) {
    srv_user_error(c, 413);
    return -1;
  }
  if (p->http_major != 1) {
    srv_user_error(c, 505);
    return -1;
  }
  if (c->refuse_status != 0) {
    srv_user_error(c, c->refuse_status);
    return -1;
  }

  /* Ask for the body only once we know we would accept it. */
  int has_body = p->content_length > 0 || (p->flags & F_CHUNKED);
  if (c->expect_continue && has_body && !c->srv->draining) {
    char *cont = strdup("HTTP/1.1 100 Continue\r\n\r\n");
    if (cont != NULL)
      srv_send(c, cont, strlen(cont));
  }
  return 0;
}

static int srv_on_body(llhttp_t *p, const char *at, size_t len) {
  struct srv_conn *c = srv_conn_of(p);
  return ubuf_append(&c->body, at, len) == 0 ? 0 : srv_user_error(c, 413);
}

static int srv_on_chunk_ext(llhttp_t *p, const char *at, size_t len) {
  struct srv_conn *c = srv_conn_of(p);
  c->chunk_ext_bytes += len;
  return c->chunk_ext_bytes > SRV_CHUNK_EXT_MAX ? srv_user_error(c, 400) : 0;
}

static int srv_on_message_complete(llhttp_t *p) {
  struct srv_conn *c = srv_conn_of(p);
  /* An Upgrade is ignored (RFC 9110 lets a server do so) and the connection closes after the
   * answer, since the client may already be sending bytes of the other protocol. */
  c->keep_alive = llhttp_should_keep_alive(p) && !p->upgrade;
  /* Stop after one message: the next pipelined one waits until this one is answered. */
  return HPE_PAUSED;
}

/* ---- request dispatch ---- */

static void srv_make_request_id(struct srv *s, char *out, size_t outlen) {
  /* A random 64-bit prefix per process and a counter: unique across workers and restarts. */
  if (s->id_prefix == 0) {
    if (getrandom(&s->id_prefix, sizeof(s->id_prefix), 0) != sizeof(s->id_prefix))
      s->id_prefix = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
    s->id_prefix |= 1;
  }
  /* Written by hand: this runs for every request, and snprintf cost more than the rest. */
  static const char hex[] = "0123456789abcdef";
  uint64_t parts[2] = {s->id_prefix, ++s->next_id};
  int digits[2] = {16, 8}; /* the counter takes at least 8 digits, more once it needs them */
  while (digits[1] < 16 && (parts[1] >> (4 * digits[1])) != 0)
    digits[1]++;
  size_t o = 0;
  for (int p = 0; p < 2; p++) {
    for (int d = digits[p] - 1; d >= 0 && o + 1 < outlen; d--)
      out[o++] = hex[(parts[p] >> (4 * d)) & 0xf];
  }
  out[o] = '\0';
}

static void srv_dispatch(struct srv_conn *c) {
  struct srv_req *r = &c->req;
  c->state = SRV_BUSY;
  srv_arm_timer(c);

  char *url = c->url.data != NULL ? c->url.data : "";
  char *q = strchr(url, '?');
  r->query = "";
  if (q != NULL) {
    *q = '\0';
    r->query = q + 1;
    r->query_len = c->url.len - (size_t)(q + 1 - url);
  }
  r->path = url;
  r->body = c->body.data != NULL ? c->body.data : "";
  r->body_len = c->body.len;

  uint8_t m = llhttp_get_method(&c->parser);
  c->head_request = m == HTTP_HEAD;
  /* HEAD is routed as GET: its answer is the same minus the body (see srv_respond). */
  r->method = m == HTTP_GET || m == HTTP_HEAD ? SRV_GET : m == HTTP_POST ? SRV_POST : SRV_OTHER;
  r->method_name = llhttp_method_name((llhttp_method_t)m);
  if (r->request_id[0] == '\0')
    srv_make_request_id(c->srv, r->request_id, sizeof(r->request_id));

  if (c->srv->draining) {
    static const char busy[] = "{\"statusCode\":503,\"error\":\"Service Unavailable\","
                               "\"message\":\"the server is shutting down; retry elsewhere\"}";
    c->keep_alive = 0;
    srv_respond(r, 503, "application/json", NULL, busy, sizeof(busy) - 1);
    return;
  }
  c->srv->on_request(r, c->srv->data);
}

static const char *srv_refusal(int status) {
  switch (status) {
  case 413:
    return "request body is over the size limit";
  case 414:
    return "request URL is too long";
  case 417:
    return "only Expect: 100-continue is supported";
  case 431:
    return "request headers are over the size limit";
  case 501:
    return "only the chunked transfer coding is supported";
  case 505:
    return "only HTTP/1.x is supported";
  }
  return "malformed request";
}

static void srv_parse_error(struct srv_conn *c, llhttp_errno_t err) {
  if (c->err_status != 0) {
    /* One of our callbacks refused the request; llhttp reports it under several codes. */
    int st = c->err_status;
    srv_fail(c, st, srv_refusal(st));
  } else if (err == HPE_PAUSED_UPGRADE) {
    srv_fail(c, 400, "protocol upgrades are not supported");
  } else {
    ulog(ULOG_DEBUG, "server", "msg=\"malformed request\" reason=%s", llhttp_errno_name(err));
    srv_fail(c, 400, "malformed HTTP request");
  }
}

/* Runs the parser over data; returns how many bytes it consumed. */
static size_t srv_execute(struct srv_conn *c, const char *data, size_t len) {
  llhttp_errno_t err = llhttp_execute(&c->parser, data, len);
  if (err == HPE_OK)
    return len;

  if (err == HPE_PAUSED) {
    size_t used = (size_t)(llhttp_get_error_pos(&c->parser) - data);
    srv_dispatch(c);
    return used;
  }

  srv_parse_error(c, err);
  return len;
}

/* Parses buffered input until a request is in flight or the input runs out. */
static void srv_process(struct srv_conn *c) {
  if (c->processing)
    return; /* the loop below, further up the stack, carries on */

  c->processing = 1;
  while ((c->state == SRV_IDLE || c->state == SRV_READING) && !c->closing && c->in.len > 0 &&
         srv_out_bytes(c) < SRV_OUT_HIGH) {
    size_t used = srv_execute(c, c->in.data, c->in.len);
    if (!c->closing)
      ubuf_consume(&c->in, used);
  }
  c->processing = 0;

  if (c->closing)
    return;
  /* The header timer runs from a request's first byte, whatever trickles in after it; only
   * an idle connection's timer restarts here. */
  if (c->state == SRV_IDLE)
    srv_arm_timer(c);
  if (c->in.len == 0 && c->in.cap > 16384)
    ubuf_free(&c->in); /* give back what a large pipelined burst needed */
  int out_full = srv_out_bytes(c) >= SRV_OUT_HIGH;
  if (out_full && !c->reading_stopped) {
    /* The client is not reading its answers: let TCP push back on its requests too. */
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading_stopped = 1;
  } else if (c->reading_stopped && !out_full && c->in.len < SRV_PENDING_MAX / 2 &&
             srv_out_bytes(c) < SRV_OUT_HIGH / 2) {
    c->reading_stopped = 0;
    uv_read_start((uv_stream_t *)&c->tcp, srv_alloc, srv_on_read);
  }
}

static void srv_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  struct srv_conn *c = h->data;
  struct srv *s = c->srv;

  /* One shared buffer: every read is parsed or copied before the callback returns. */
  buf->base = s->read_buf;
  buf->len = sizeof(s->read_buf);
}

static void srv_on_input(struct srv_conn *c, uv_stream_t *stream, ssize_t nread,
                         const uv_buf_t *buf) {
  if (nread < 0) {
    /* EOF or a reset: the client is gone, so stop whatever work it started. */
    /* Answers still held in out (a batch or a cork) count as leaving, as queued writes do. */
    if (nread == UV_EOF && (c->state == SRV_IDLE || c->state == SRV_CLOSING) && c->in.len == 0 &&
        (c->writes_pending > 0 || c->out.len > 0)) {
      c->close_after_write = 1;
      return;
    }
    srv_conn_close(c);
    return;
  }
  if (nread == 0)
    return;

  if ((c->state == SRV_IDLE || c->state == SRV_READING) && c->in.len == 0) {
    size_t used = srv_execute(c, buf->base, (size_t)nread);
    if (!c->closing && used < (size_t)nread &&
        ubuf_append(&c->in, buf->base + used, (size_t)nread - used) != 0)
      srv_conn_close(c);
    if (!c->closing)
      srv_process(c);
    return;
  }

  if (ubuf_append(&c->in, buf->base, (size_t)nread) != 0) {
    srv_conn_close(c);
    return;
  }
  if (c->in.len >= SRV_PENDING_MAX) {
    /* A client pipelining faster than we answer: let TCP push back instead of buffering. */
    uv_read_stop(stream);
    c->reading_stopped = 1;
  }
  srv_process(c);
}

static void srv_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  struct srv_conn *c = stream->data;

  /* Every answer made while this input is worked through leaves in one write at the end. */
  srv_batch_begin(c);
  srv_on_input(c, stream, nread, buf);
  srv_batch_end(c);
}

/* ---- connection life cycle ---- */

static void srv_conn_freed(uv_handle_t *h) {
  struct srv_conn *c = h->data;
  if (--c->handles_open > 0)
    return;

  ubuf_free(&c->in);
  ubuf_free(&c->url);
  ubuf_free(&c->body);
  ubuf_free(&c->out);
  if (c->corked)
    srv_uncork_forget(c);
  free(c);
}

static void srv_conn_close(struct srv_conn *c) {
  if (c->closing)
    return;
  c->closing = 1;

  /* The handler's calls must stop before the request they belong to goes away. The access
   * log records it as 499, the usual code for "client closed the connection first". */
  if (c->state == SRV_BUSY && c->req.on_abort != NULL) {
    c->req.status = 499;
    srv_access_log(c);
    srv_abort_cb cb = c->req.on_abort;
    c->req.on_abort = NULL;
    cb(c->req.abort_data);
  }

  struct srv *s = c->srv;
  srv_recheck_drain(s);
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  s->nconns--;

  uv_close((uv_handle_t *)&c->timer, srv_conn_freed);
  uv_close((uv_handle_t *)&c->tcp, srv_conn_freed);
}

void srv_req_on_drain(struct srv_req *r, srv_drain_cb cb, void *data) {
  r->on_drain = cb;
  r->drain_data = data;
}

void srv_req_on_abort(struct srv_req *r, srv_abort_cb cb, void *data) {
  r->on_abort = cb;
  r->abort_data = data;
}

/* The handle is the first member of its srv_conn, so free() on it frees the connection. */
static void srv_reject(struct srv *s, uv_tcp_t *tmp) {
  uv_close((uv_handle_t *)tmp, (uv_close_cb)free);
}

static void srv_on_connection(uv_stream_t *listener, int status) {
  struct srv *s = listener->data;
  if (status < 0) {
    /* libuv already dropped the pending connection it could not take (EMFILE trick). */
    ulog(ULOG_WARN, "server", "msg=\"accept failed\" error=%s", uv_err_name(status));
    return;
  }

  struct srv_conn *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return;
  uv_tcp_init(s->loop, &c->tcp);
  if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
    return;
  }
  if (s->nconns >= s->limits.max_connections) {
    srv_reject(s, &c->tcp);
    return;
  }

  c->srv = s;
  c->tcp.data = c;
  c->timer.data = c;
  c->handles_open = 2;
  c->keep_alive = 1;
  ubuf_init(&c->in, SRV_PENDING_MAX + SRV_READ_BUF);
  ubuf_init(&c->url, SRV_URL_MAX);
  ubuf_init(&c->body, (size_t)s->limits.max_body_bytes);
  ubuf_init(&c->out, SIZE_MAX / 2);
  uv_timer_init(s->loop, &c->timer);
  llhttp_init(&c->parser, HTTP_REQUEST, &s->settings);
  c->parser.data = c;

  c->next = s->conns;
  if (s->conns != NULL)
    s->conns->prev = c;
  s->conns = c;
  s->nconns++;

  uv_tcp_nodelay(&c->tcp, 1);
  srv_arm_timer(c);
  uv_read_start((uv_stream_t *)&c->tcp, srv_alloc, srv_on_read);
}

int srv_new(uv_loop_t *loop, const struct srv_opts *opts, struct srv **out) {
  struct srv *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return UCRM_ENOMEM;

  s->loop = loop;
  s->limits = *opts->limits;
  s->on_request = opts->on_request;
  s->on_complete = opts->on_complete;
  s->data = opts->data;

  llhttp_settings_init(&s->settings);
  s->settings.on_message_begin = srv_on_message_begin;
  s->settings.on_url = srv_on_url;
  s->settings.on_header_field = srv_on_header_field;
  s->settings.on_header_value = srv_on_header_value;
  s->settings.on_header_value_complete = srv_on_header_value_complete;
  s->settings.on_headers_complete = srv_on_headers_complete;
  s->settings.on_body = srv_on_body;
  s->settings.on_chunk_extension_name = srv_on_chunk_ext;
  s->settings.on_chunk_extension_value = srv_on_chunk_ext;
  s->settings.on_message_complete = srv_on_message_complete;

  uv_tcp_init(loop, &s->listener);
  s->listener.data = s;
  uv_idle_init(loop, &s->drain_check);
  s->drain_check.data = s;
  uv_check_init(loop, &s->uncork);
  s->uncork.data = s;
  uv_prepare_init(loop, &s->uncork_pre);
  s->uncork_pre.data = s;
  *out = s;
  return 0;
}

/*
 * libuv 1.44 has no flag for SO_REUSEPORT, so the socket is made, configured and bound here
 * and handed to libuv with uv_tcp_open.
 */
static int srv_bind(struct srv *s, const struct sockaddr *sa, socklen_t salen, int reuseport) {
  int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -errno;

  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  if (bind(fd, sa, salen) != 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  int rc = uv_tcp_open(&s->listener, fd);
  if (rc != 0)
    close(fd);
  return rc;
}

int srv_listen(struct srv *s, const char *host, int port, int reuseport) {
  struct sockaddr_storage ss;
  socklen_t len;
  if (strchr(host, ':') != NULL) {
    len = sizeof(struct sockaddr_in6);
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
      return UV_EINVAL;
  } else {
    len = sizeof(struct sockaddr_in);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0)
      return UV_EINVAL;
  }

  int rc = srv_bind(s, (struct sockaddr *)&ss, len, reuseport);
  return rc != 0 ? rc : uv_listen((uv_stream_t *)&s->listener, 1024, srv_on_connection);
}

int srv_port(const struct srv *s) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len) != 0)
    return -1;
  if (ss.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

void srv_set_limits(struct srv *s, const struct ucrm_limits *limits) {
  s->limits = *limits;
}

int srv_draining(const struct srv *s) {
  return s->draining;
}

int srv_open_connections(const struct srv *s) {
  return s->nconns;
}

/*
 * The listener stays open while draining, so a load balancer's health check and any new
 * request get a clear 503 with Connection: close instead of a refused connection.
 */
void srv_drain(struct srv *s, srv_drained_cb cb) {
  s->draining = 1;
  s->on_drained = cb;

  /* Idle keep-alive connections have nothing to finish; busy ones close after their answer. */
  struct srv_conn *next;
  for (struct srv_conn *c = s->conns; c != NULL; c = next) {
    next = c->next;
    c->keep_alive = 0;
    if (c->state != SRV_IDLE || c->in.len != 0)
      continue;
    if (c->out.len == 0 && c->writes_pending == 0) {
      srv_conn_close(c);
    } else { /* an answer is still held or leaving: close once it is out */
      c->state = SRV_CLOSING;
      uv_timer_stop(&c->timer);
      c->close_after_write = 1;
    }
  }
  srv_recheck_drain(s);
}

void srv_close(struct srv *s) {
  s->on_drained = NULL;
  while (s->conns != NULL)
    srv_conn_close(s->conns);

  if (!uv_is_closing((uv_handle_t *)&s->listener))
    uv_close((uv_handle_t *)&s->listener, NULL);
  if (!uv_is_closing((uv_handle_t *)&s->drain_check))
    uv_close((uv_handle_t *)&s->drain_check, NULL);
  if (!uv_is_closing((uv_handle_t *)&s->uncork))
    uv_close((uv_handle_t *)&s->uncork, NULL);
  if (!uv_is_closing((uv_handle_t *)&s->uncork_pre))
    uv_close((uv_handle_t *)&s->uncork_pre, NULL);
}

void srv_free(struct srv *s) {
  free(s);
}
