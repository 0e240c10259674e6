/*
 * mock_http.c: the HTTP/1.1 server under the mock: accepting, parsing with one llhttp parser
 * per connection, and writing answers in order with back-pressure.
 *
 * Pipelining is kept in order by handling one request at a time: the parser pauses after each
 * message, and the next one is parsed only once the current answer is queued. A delayed or
 * streamed answer marks the connection busy, which stops parsing and reading until it is done.
 * A connection owns its TCP handle and one timer (delays, then the linger on close) and is
 * freed only when both close callbacks have run.
 */
#include <inttypes.h>
#include <llhttp.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

#define MOCK_READ_SIZE ((size_t)64 << 10)
#define MOCK_PIECE_SIZE ((size_t)64 << 10)
/* Past this many queued output bytes the connection stops parsing until the client reads. */
#define MOCK_HIGH_WATER ((size_t)1 << 20)
/* How long a closing connection keeps reading so our last answer is not lost to a reset. */
#define MOCK_LINGER_MS 2000

struct mock_conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_shutdown_t shutdown;
  uv_write_t stream_write;
  llhttp_t parser;
  struct mock_server *srv;
  struct mock_conn *prev;
  struct mock_conn *next;
  int open_handles;

  /* Input not yet parsed; reading only happens when in_len is 0. */
  char in[MOCK_READ_SIZE];
  size_t in_off;
  size_t in_len;
  int reading;
  int eof;

  /* The request being parsed. */
  struct mock_req req;
  struct mock_buf url;
  struct mock_buf field;
  struct mock_buf value;
  size_t header_bytes;
  int err_status; /* 413 or 431 found by a callback, answered after llhttp_execute */
  int req_ready;
  int keep_alive;
  int http_minor;
  int is_head;

  /* The answer in progress. */
  struct mock_resp resp;
  int busy;
  int want_close;
  int draining;
  int closing;

  /* A body_bytes answer, generated piece by piece; with a tail delay, the pieces stop at
   * stream_hold (before the document's closing bytes) until the delay has passed. */
  char *piece;
  uint64_t stream_pos;
  uint64_t stream_total;
  uint64_t stream_items;
  uint64_t stream_hold;
  uint64_t tail_delay_ms;
};

/* One queued write: the head and, unless streamed, the body; both freed when it completes. */
struct mock_wreq {
  uv_write_t req;
  char *head;
  char *body;
};

static void mock_conn_advance(struct mock_conn *c);
static void mock_conn_finish(struct mock_conn *c);

/* ---- closing ---- */

static void mock_conn_closed(uv_handle_t *h) {
  struct mock_conn *c = h->data;

  if (--c->open_handles > 0)
    return;
  if (c->prev)
    c->prev->next = c->next;
  else
    c->srv->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  mock_req_clear(&c->req);
  mock_resp_free(&c->resp);
  mock_buf_free(&c->url);
  mock_buf_free(&c->field);
  mock_buf_free(&c->value);
  free(c->piece);
  free(c);
}

/* Closes at once; reset sends an RST instead of a FIN (the "close" fault). */
static void mock_conn_close(struct mock_conn *c, int reset) {
  if (c->closing)
    return;
  c->closing = 1;
  if (!reset || uv_tcp_close_reset(&c->tcp, mock_conn_closed) != 0)
    uv_close((uv_handle_t *)&c->tcp, mock_conn_closed);
  uv_close((uv_handle_t *)&c->timer, mock_conn_closed);
}

/* ---- reading ---- */

static void mock_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  struct mock_conn *c = h->data;
  size_t used = c->in_off + c->in_len;

  (void)hint;
  buf->base = c->in + used;
  buf->len = sizeof(c->in) - used;
}

static void mock_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct mock_conn *c = s->data;

  (void)buf;
  if (c->draining) {
    if (nread < 0)
      mock_conn_close(c, 0);
    return;
  }
  if (nread > 0) {
    c->in_len += (size_t)nread;
    mock_conn_advance(c);
  } else if (nread == UV_EOF) {
    c->eof = 1;
    mock_conn_advance(c);
  } else if (nread < 0) {
    mock_conn_close(c, 0);
  }
}

static void mock_read_start(struct mock_conn *c) {
  if (c->reading || c->eof)
    return;
  if (uv_read_start((uv_stream_t *)&c->tcp, mock_on_alloc, mock_on_read) != 0) {
    mock_conn_close(c, 0);
    return;
  }
  c->reading = 1;
}

static void mock_read_stop(struct mock_conn *c) {
  if (!c->reading)
    return;
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = 0;
}

/* ---- writing ---- */

static void mock_on_written(uv_write_t *w, int status) {
  struct mock_wreq *wr = (struct mock_wreq *)w;
  struct mock_conn *c = w->handle->data;

  free(wr->head);
  free(wr->body);
  free(wr);
  if (c->closing)
    return;
  if (status < 0)
    mock_conn_close(c, 0);
  else
    mock_conn_advance(c);
}

/* Queues head and body (taking ownership of both; body may be NULL). */
static void mock_conn_write(struct mock_conn *c, char *head, size_t head_len, char *body,
                            size_t body_len) {
  struct mock_wreq *wr = mock_xmalloc(sizeof(*wr));
  uv_buf_t bufs[2] = {uv_buf_init(head, (unsigned)head_len), uv_buf_init(body, (unsigned)body_len)};

  wr->head = head;
  wr->body = body;
  if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, bufs, body_len ? 2 : 1, mock_on_written) != 0) {
    free(head);
    free(body);
    free(wr);
    mock_conn_close(c, 0);
  }
}

static int mock_resp_has_header(const struct mock_resp *r, const char *name) {
  for (size_t i = 0; i < r->nheaders; i++) {
    if (mock_strieq(r->headers[i].name, name))
      return 1;
  }
  return 0;
}

/* Writes the status line, headers and (unless streamed or HEAD) the body of r. */
static void mock_conn_send(struct mock_conn *c, struct mock_resp *r, uint64_t body_len) {
  struct mock_buf head;

  mock_buf_init(&head, SIZE_MAX);
  mock_buf_printf(&head, "HTTP/1.1 %d %s\r\n", r->status, mock_reason(r->status));
  if (!r->no_body && !mock_resp_has_header(r, "content-type"))
    mock_buf_puts(&head, "Content-Type: application/json\r\n");
  if (!r->no_body)
    mock_buf_printf(&head, "Content-Length: %" PRIu64 "\r\n", body_len);
  if (c->want_close)
    mock_buf_puts(&head, "Connection: close\r\n");
  else if (c->http_minor == 0)
    mock_buf_puts(&head, "Connection: keep-alive\r\n");
  for (size_t i = 0; i < r->nheaders; i++)
    mock_buf_printf(&head, "%s: %s\r\n", r->headers[i].name, r->headers[i].value);
  mock_buf_puts(&head, "\r\n");

  size_t head_len = head.len;
  int with_body = !r->no_body && !c->is_head && r->stream_bytes == 0 && r->body.len > 0;
  size_t len = with_body ? r->body.len : 0;
  mock_conn_write(c, mock_buf_steal(&head), head_len, with_body ? mock_buf_steal(&r->body) : NULL,
                  len);
}

/* ---- body_bytes streaming ---- */

static const char mock_stream_prefix[] = "{\"success\":true,\"data\":{\"items\":[";
static const char mock_stream_suffix[] = "]}}";
#define MOCK_PREFIX_LEN (sizeof(mock_stream_prefix) - 1)
#define MOCK_SUFFIX_LEN (sizeof(mock_stream_suffix) - 1)
/* Each item is a 1024-byte JSON string ("x...x") followed by a comma, except the last. */
#define MOCK_ITEM_LEN 1024
#define MOCK_ITEM_STRIDE (MOCK_ITEM_LEN + 1)

/* Picks the item count so the document is as close to want bytes as whole items allow. */
static void mock_stream_plan(struct mock_conn *c, uint64_t want) {
  uint64_t frame = MOCK_PREFIX_LEN + MOCK_SUFFIX_LEN;
  uint64_t items = want > frame ? (want - frame + 1) / MOCK_ITEM_STRIDE : 0;

  if (items == 0)
    items = 1;
  c->stream_items = items;
  c->stream_total = frame + items * MOCK_ITEM_STRIDE - 1;
  c->stream_pos = 0;
}

/* The byte at pos, and how many copies of it start there (long runs of 'x' are memset). */
static size_t mock_stream_run(const struct mock_conn *c, uint64_t pos, char *byte) {
  uint64_t items_len = c->stream_items * MOCK_ITEM_STRIDE - 1;

  if (pos < MOCK_PREFIX_LEN) {
    *byte = mock_stream_prefix[pos];
    return 1;
  }
  pos -= MOCK_PREFIX_LEN;
  if (pos >= items_len) {
    *byte = mock_stream_suffix[pos - items_len];
    return 1;
  }

  uint64_t r = pos % MOCK_ITEM_STRIDE;
  if (r == MOCK_ITEM_LEN) {
    *byte = ',';
    return 1;
  }
  if (r == 0 || r == MOCK_ITEM_LEN - 1) {
    *byte = '"';
    return 1;
  }
  *byte = 'x';
  return (size_t)(MOCK_ITEM_LEN - 1 - r);
}

static size_t mock_stream_fill(struct mock_conn *c, char *out, size_t cap) {
  size_t n = 0;

  while (n < cap && c->stream_pos < c->stream_total) {
    char byte;
    size_t run = mock_stream_run(c, c->stream_pos, &byte);

    if (run > cap - n)
      run = cap - n;
    memset(out + n, byte, run);
    n += run;
    c->stream_pos += run;
  }
  return n;
}

static void mock_stream_next(struct mock_conn *c);

static void mock_on_piece_written(uv_write_t *w, int status) {
  struct mock_conn *c = w->handle->data;

  if (c->closing)
    return;
  if (status < 0)
    mock_conn_close(c, 0);
  else
    mock_stream_next(c);
}

static void mock_on_tail_due(uv_timer_t *t) {
  mock_stream_next(t->data);
}

/* Only one piece is in flight, so a slow reader holds the mock to one piece of memory. */
static void mock_stream_next(struct mock_conn *c) {
  size_t cap = MOCK_PIECE_SIZE;

  if (c->tail_delay_ms > 0 && c->stream_pos == c->stream_hold) {
    uint64_t ms = c->tail_delay_ms;

    c->tail_delay_ms = 0; /* the tail comes once the timer has run */
    uv_timer_start(&c->timer, mock_on_tail_due, ms, 0);
    return;
  }
  if (c->tail_delay_ms > 0 && c->stream_hold - c->stream_pos < cap)
    cap = (size_t)(c->stream_hold - c->stream_pos);

  size_t n = mock_stream_fill(c, c->piece, cap);

  if (n == 0) {
    free(c->piece);
    c->piece = NULL;
    c->busy = 0;
    mock_conn_advance(c);
    return;
  }

  uv_buf_t buf = uv_buf_init(c->piece, (unsigned)n);
  if (uv_write(&c->stream_write, (uv_stream_t *)&c->tcp, &buf, 1, mock_on_piece_written) != 0)
    mock_conn_close(c, 0);
}

/* ---- answering ---- */

static void mock_conn_answer(struct mock_conn *c) {
  struct mock_resp *r = &c->resp;

  if (r->reset) {
    mock_resp_free(r);
    mock_conn_close(c, 1);
    return;
  }
  if (r->stream_bytes == 0) {
    mock_conn_send(c, r, r->no_body ? 0 : r->body.len);
    mock_resp_free(r);
    return;
  }

  mock_stream_plan(c, r->stream_bytes);
  c->stream_hold = c->stream_total - MOCK_SUFFIX_LEN;
  c->tail_delay_ms = r->tail_delay_ms;
  mock_conn_send(c, r, c->stream_total);
  mock_resp_free(r);
  if (c->is_head)
    return;
  c->busy = 1;
  c->piece = mock_xmalloc(MOCK_PIECE_SIZE);
  mock_stream_next(c);
}

static void mock_on_delay_done(uv_timer_t *t) {
  struct mock_conn *c = t->data;

  c->busy = 0;
  mock_conn_answer(c);
  mock_conn_advance(c);
}

static void mock_conn_dispatch(struct mock_conn *c) {
  if (!c->keep_alive)
    c->want_close = 1;
  mock_resp_free(&c->resp);
  mock_handle(c->srv->ctx, &c->req, &c->resp);
  mock_req_clear(&c->req);

  if (c->resp.delay_ms > 0) {
    c->busy = 1;
    uv_timer_start(&c->timer, mock_on_delay_done, c->resp.delay_ms, 0);
    return;
  }
  mock_conn_answer(c);
}

/* A request the parser refused: answer status, then close once it is written. */
static void mock_conn_fail(struct mock_conn *c, int status) {
  struct mock_resp r;

  c->want_close = 1;
  c->in_off = 0;
  c->in_len = 0;
  mock_resp_init(&r);
  mock_error_body(MOCK_P_NONE, status, &r);
  mock_conn_send(c, &r, r.body.len);
  mock_resp_free(&r);
  mock_conn_finish(c);
}

/* ---- parsing ---- */

static int mock_count_header(struct mock_conn *c, size_t n) {
  c->header_bytes += n;
  if (c->header_bytes <= MOCK_MAX_HEADER)
    return 0;
  c->err_status = 431;
  return -1;
}

static int mock_on_message_begin(llhttp_t *p) {
  struct mock_conn *c = p->data;

  mock_req_clear(&c->req);
  mock_buf_reset(&c->url);
  mock_buf_reset(&c->field);
  mock_buf_reset(&c->value);
  c->header_bytes = 0;
  c->is_head = 0;
  return 0;
}

static int mock_on_url(llhttp_t *p, const char *at, size_t n) {
  struct mock_conn *c = p->data;

  if (mock_count_header(c, n) != 0)
    return -1;
  mock_buf_append(&c->url, at, n);
  return 0;
}

static int mock_on_header_field(llhttp_t *p, const char *at, size_t n) {
  struct mock_conn *c = p->data;

  if (mock_count_header(c, n) != 0)
    return -1;
  mock_buf_append(&c->field, at, n);
  return 0;
}

static int mock_on_header_value(llhttp_t *p, const char *at, size_t n) {
  struct mock_conn *c = p->data;

  if (mock_count_header(c, n) != 0)
    return -1;
  mock_buf_append(&c->value, at, n);
  return 0;
}

/* Each header costs a few bytes of framing too, so many empty headers still meet the cap. */
static int mock_on_header_value_complete(llhttp_t *p) {
  struct mock_conn *c = p->data;
  struct mock_req *req = &c->req;

  if (mock_count_header(c, 4) != 0)
    return -1;

  char *name = mock_xstrndup(mock_buf_cstr(&c->field), c->field.len);
  for (char *s = name; *s != '\0'; s++) {
    if (*s >= 'A' && *s <= 'Z')
      *s = (char)(*s - 'A' + 'a');
  }
  req->headers = mock_xrealloc(req->headers, (req->nheaders + 1) * sizeof(*req->headers));
  req->headers[req->nheaders].name = name;
  req->headers[req->nheaders].value = mock_xstrndup(mock_buf_cstr(&c->value), c->value.len);
  req->nheaders++;
  mock_buf_reset(&c->field);
  mock_buf_reset(&c->value);
  return 0;
}

static void mock_req_take_url(struct mock_conn *c) {
  const char *url = mock_buf_cstr(&c->url);
  const char *q = strchr(url, '?');

  if (q == NULL) {
    c->req.path = mock_xstrdup(url);
    c->req.query = mock_xstrdup("");
  } else {
    c->req.path = mock_xstrndup(url, (size_t)(q - url));
    c->req.query = mock_xstrdup(q + 1);
  }
}

static void mock_conn_continue(struct mock_conn *c) {
  static const char interim[] = "HTTP/1.1 100 Continue\r\n\r\n";

  mock_conn_write(c, mock_xstrdup(interim), sizeof(interim) - 1, NULL, 0);
}

static int mock_on_headers_complete(llhttp_t *p) {
  struct mock_conn *c = p->data;
  const char *expect;

  mock_req_take_url(c);
  c->req.method = llhttp_method_name((llhttp_method_t)llhttp_get_method(p));
  c->req.host = mock_req_header(&c->req, "host");
  c->keep_alive = llhttp_should_keep_alive(p);
  c->http_minor = llhttp_get_http_minor(p);
  c->is_head = llhttp_get_method(p) == HTTP_HEAD;

  /* A declared body over the cap is refused before any of it is read. */
  if (p->content_length > MOCK_MAX_BODY) {
    c->err_status = 413;
    return -1;
  }
  expect = mock_req_header(&c->req, "expect");
  if (expect != NULL && mock_strieq(expect, "100-continue"))
    mock_conn_continue(c);
  return 0;
}

static int mock_on_body(llhttp_t *p, const char *at, size_t n) {
  struct mock_conn *c = p->data;

  if (mock_buf_append(&c->req.body, at, n) == 0)
    return 0;
  c->err_status = 413;
  return -1;
}

/* Pausing here hands one complete request to mock_conn_parse; llhttp keeps the rest. */
static int mock_on_message_complete(llhttp_t *p) {
  struct mock_conn *c = p->data;

  c->req_ready = 1;
  return HPE_PAUSED;
}

static const llhttp_settings_t mock_parser_settings = {
    .on_message_begin = mock_on_message_begin,
    .on_url = mock_on_url,
    .on_header_field = mock_on_header_field,
    .on_header_value = mock_on_header_value,
    .on_header_value_complete = mock_on_header_value_complete,
    .on_headers_complete = mock_on_headers_complete,
    .on_body = mock_on_body,
    .on_message_complete = mock_on_message_complete,
};

static void mock_conn_parse(struct mock_conn *c) {
  const char *data = c->in + c->in_off;
  enum llhttp_errno err = llhttp_execute(&c->parser, data, c->in_len);
  size_t used = c->in_len;

  if (err == HPE_PAUSED) {
    used = (size_t)(llhttp_get_error_pos(&c->parser) - data);
    llhttp_resume(&c->parser);
  } else if (err != HPE_OK) {
    c->req_ready = 0;
    mock_conn_fail(c, c->err_status ? c->err_status : 400);
    return;
  }
  c->in_off += used;
  c->in_len -= used;
  if (c->in_len == 0)
    c->in_off = 0;
  if (c->req_ready) {
    c->req_ready = 0;
    mock_conn_dispatch(c);
  }
}

/*
 * Moves the connection forward after any event: parses and answers buffered requests while
 * nothing holds it, then either reads more, waits, or starts closing.
 */
static void mock_conn_advance(struct mock_conn *c) {
  while (!c->closing && !c->draining && !c->busy && !c->want_close && c->in_len > 0) {
    if (c->tcp.write_queue_size > MOCK_HIGH_WATER) {
      mock_read_stop(c);
      return;
    }
    mock_conn_parse(c);
  }
  if (c->closing || c->draining)
    return;
  if (c->busy) {
    mock_read_stop(c);
    return;
  }
  if (c->want_close || c->eof) {
    mock_conn_finish(c);
    return;
  }
  mock_read_start(c);
}

/* ---- graceful close ---- */

static void mock_on_linger_done(uv_timer_t *t) {
  mock_conn_close(t->data, 0);
}

static void mock_on_shutdown(uv_shutdown_t *s, int status) {
  struct mock_conn *c = s->handle->data;

  if (c->closing)
    return;
  if (status < 0 || c->eof) {
    mock_conn_close(c, 0);
    return;
  }
  uv_timer_start(&c->timer, mock_on_linger_done, MOCK_LINGER_MS, 0);
  mock_read_start(c);
}

/*
 * Sends FIN after the queued answers, then reads and drops input until the client closes (or
 * the linger ends): closing with unread input would send an RST that can destroy our answer
 * before the client reads it.
 */
static void mock_conn_finish(struct mock_conn *c) {
  if (c->closing || c->draining)
    return;
  c->draining = 1;
  c->in_off = 0;
  c->in_len = 0;
  mock_read_stop(c);
  if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, mock_on_shutdown) != 0)
    mock_conn_close(c, 0);
}

/* ---- accepting ---- */

static struct mock_conn *mock_conn_new(struct mock_server *srv) {
  struct mock_conn *c = mock_xmalloc(sizeof(*c));

  memset(c, 0, sizeof(*c));
  c->srv = srv;
  uv_tcp_init(srv->loop, &c->tcp);
  uv_timer_init(srv->loop, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  c->open_handles = 2;
  llhttp_init(&c->parser, HTTP_REQUEST, &mock_parser_settings);
  c->parser.data = c;
  mock_req_init(&c->req);
  mock_resp_init(&c->resp);
  mock_buf_init(&c->url, MOCK_MAX_HEADER);
  mock_buf_init(&c->field, MOCK_MAX_HEADER);
  mock_buf_init(&c->value, MOCK_MAX_HEADER);

  c->next = srv->conns;
  if (srv->conns)
    srv->conns->prev = c;
  srv->conns = c;
  return c;
}

static void mock_on_connection(uv_stream_t *listener, int status) {
  struct mock_server *srv = listener->data;

  if (status < 0 || srv->stopping)
    return;

  struct mock_conn *c = mock_conn_new(srv);
  if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
    mock_conn_close(c, 0);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  mock_read_start(c);
}

int mock_server_start(struct mock_server *srv, uv_loop_t *loop, struct mock_ctx *ctx,
                      const struct sockaddr *addr, int *port) {
  struct sockaddr_storage bound;
  int len = sizeof(bound);
  int rc;

  memset(srv, 0, sizeof(*srv));
  srv->loop = loop;
  srv->ctx = ctx;
  uv_tcp_init(loop, &srv->listener);
  srv->listener.data = srv;

  rc = uv_tcp_bind(&srv->listener, addr, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&srv->listener, 1024, mock_on_connection);
  if (rc == 0)
    rc = uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &len);
  if (rc != 0) {
    uv_close((uv_handle_t *)&srv->listener, NULL);
    return rc;
  }
  *port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                            : ((struct sockaddr_in *)&bound)->sin_port);
  return 0;
}

void mock_server_stop(struct mock_server *srv) {
  if (srv->stopping)
    return;
  srv->stopping = 1;
  uv_close((uv_handle_t *)&srv->listener, NULL);
  for (struct mock_conn *c = srv->conns; c != NULL; c = c->next)
    mock_conn_close(c, 0);
}
