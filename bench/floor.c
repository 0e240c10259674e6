/*
 * floor.c: the cost of unicrm's mandated plumbing alone, for bench/run.sh.
 *
 * A forwarder built from exactly the pieces unicrm must use (one libuv loop, llhttp in strict
 * mode, libcurl's multi socket interface on uv_poll and uv_timer, easy handles reused) and
 * nothing else: no JSON parse, no mapping, no metrics. Every client request becomes the same
 * upstream call unicrm makes for the bench's body (PATCH /v1/leads/{id} with unicrm's header
 * lines), and the upstream's body goes back in one write. Whatever unicrm costs above this
 * program is unicrm's own work; what this program costs is the floor under any design that
 * keeps these libraries.
 *
 *   floor --listen PORT --upstream http://127.0.0.1:PORT
 *
 * bench/run.sh links it with mimalloc, as the unicrm executable is. It is a measuring
 * instrument, not a proxy: no client timeouts, no limits, no error answers beyond a 502 when
 * the upstream call fails.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <llhttp.h>
#include <uv.h>

#define FL_READ_MAX 16384
#define FL_BODY_MAX 8192
#define FL_FREE_MAX 1024
#define FL_FD_MAX 65536

static const char fl_call_body[] = "{\"person_id\":123}";

struct fl_conn {
  uv_tcp_t tcp;
  llhttp_t parser;
  uv_write_t wreq;
  CURL *easy;
  size_t nbacklog; /* input that came while a request was out, parsed once it is answered */
  size_t nbody;
  int closing; /* uv_close was called */
  int closed;  /* ...and its callback ran: the memory goes when no transfer holds it */
  char rbuf[FL_READ_MAX];
  char backlog[FL_READ_MAX];
  char body[FL_BODY_MAX];
  char out[FL_BODY_MAX + 256];
};

struct fl_sock {
  uv_poll_t poll;
  curl_socket_t fd;
  int events;
  int removed; /* pooled: curl does not need it watched now */
};

static uv_loop_t *fl_loop;
static CURLM *fl_multi;
static uv_timer_t fl_timer;
static uv_idle_t fl_kick;
static struct fl_sock *fl_socks[FL_FD_MAX];
static CURL *fl_free[FL_FREE_MAX];
static size_t fl_nfree;
static char fl_url[512];
static struct curl_slist *fl_headers;
static llhttp_settings_t fl_settings;

static void fl_drain(void);
static void fl_parse(struct fl_conn *c, const char *p, size_t n);

/* ---- curl multi socket on libuv ---- */

static void fl_action(curl_socket_t fd, int flags) {
  int running;
  curl_multi_socket_action(fl_multi, fd, flags, &running);
  fl_drain();
}

static void fl_on_poll(uv_poll_t *h, int status, int events) {
  struct fl_sock *s = h->data;
  if (s->removed) {
    /* An idle pooled connection turned readable (closed by the server): stop watching it. */
    uv_poll_stop(&s->poll);
    s->events = 0;
  }
  int flags = status < 0 ? CURL_CSELECT_ERR : 0;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  fl_action(s->fd, flags);
}

static void fl_on_timer(uv_timer_t *t) {
  (void)t;
  fl_action(CURL_SOCKET_TIMEOUT, 0);
}

static void fl_on_kick(uv_idle_t *i) {
  uv_idle_stop(i);
  fl_action(CURL_SOCKET_TIMEOUT, 0);
}

/* A zero timeout runs on the next loop turn (uv_idle), as unicrm does. */
static int fl_on_timer_set(CURLM *m, long ms, void *userp) {
  (void)m;
  (void)userp;
  uv_timer_stop(&fl_timer);
  if (ms == 0)
    uv_idle_start(&fl_kick, fl_on_kick);
  else if (ms > 0)
    uv_timer_start(&fl_timer, fl_on_timer, (uint64_t)ms, 0);
  return 0;
}

static int fl_on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *sockp) {
  (void)e;
  (void)userp;
  (void)sockp;
  if (fd < 0 || fd >= FL_FD_MAX)
    return -1;

  struct fl_sock *s = fl_socks[fd];
  if (what == CURL_POLL_REMOVE) {
    /* A pooled connection stays watched for reading, as in unicrm: reuse costs no epoll_ctl.
     * The handle goes when curl closes the socket (fl_close_socket). */
    if (s != NULL) {
      s->removed = 1;
      if (s->events != UV_READABLE) {
        uv_poll_start(&s->poll, UV_READABLE, fl_on_poll);
        s->events = UV_READABLE;
      }
    }
    return 0;
  }
  if (s == NULL) {
    s = calloc(1, sizeof(*s));
    if (s == NULL || uv_poll_init_socket(fl_loop, &s->poll, fd) != 0) {
      free(s);
      return -1;
    }
    s->fd = fd;
    s->poll.data = s;
    fl_socks[fd] = s;
  }
  s->removed = 0;
  int ev = (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
  if (ev != s->events) {
    uv_poll_start(&s->poll, ev, fl_on_poll);
    s->events = ev;
  }
  return 0;
}

static void fl_socket_gone(uv_handle_t *h) {
  struct fl_sock *s = h->data;
  close(s->fd);
  free(s);
}

/* curl's sockets are closed only after libuv let go of their poll handle. */
static int fl_close_socket(void *clientp, curl_socket_t fd) {
  (void)clientp;
  struct fl_sock *s = fd >= 0 && fd < FL_FD_MAX ? fl_socks[fd] : NULL;
  if (s == NULL)
    return close(fd);
  fl_socks[fd] = NULL;
  uv_close((uv_handle_t *)&s->poll, fl_socket_gone);
  return 0;
}

/* ---- the client side ---- */

static void fl_closed(uv_handle_t *h) {
  struct fl_conn *c = h->data;
  c->closed = 1;
  if (c->easy == NULL)
    free(c);
}

static void fl_close(struct fl_conn *c) {
  if (!c->closing) {
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, fl_closed);
  }
}

/*
 * The answer is out: parse what the client sent meanwhile (pipelined requests). Reading never
 * stops, so a keep-alive client costs no epoll_ctl per request.
 */
static void fl_next(struct fl_conn *c) {
  llhttp_resume(&c->parser);
  size_t n = c->nbacklog;
  c->nbacklog = 0;
  if (n > 0)
    fl_parse(c, c->backlog, n);
}

static void fl_written(uv_write_t *w, int status) {
  struct fl_conn *c = w->data;
  if (status < 0 || c->closing) {
    fl_close(c);
    return;
  }
  fl_next(c);
}

static void fl_answer(struct fl_conn *c, int status, const char *body, size_t n) {
  int head = snprintf(c->out, sizeof(c->out),
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      status, status == 200 ? "OK" : "Bad Gateway", n);
  memcpy(c->out + head, body, n);
  uv_buf_t b = uv_buf_init(c->out, (unsigned)(head + (int)n));

  int w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (w == (int)b.len) {
    fl_next(c);
    return;
  }
  if (w < 0 && w != UV_EAGAIN) {
    fl_close(c);
    return;
  }
  if (w > 0) {
    b.base += w;
    b.len -= (size_t)w;
  }
  c->wreq.data = c;
  if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, fl_written) != 0)
    fl_close(c);
}

static size_t fl_on_body(char *p, size_t size, size_t n, void *userp) {
  struct fl_conn *c = userp;
  (void)size;
  if (c->nbody + n > sizeof(c->body))
    return 0;
  memcpy(c->body + c->nbody, p, n);
  c->nbody += n;
  return n;
}

static void fl_done(CURL *easy, CURLcode rc) {
  struct fl_conn *c = NULL;
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&c);
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  curl_multi_remove_handle(fl_multi, easy);
  if (fl_nfree < FL_FREE_MAX)
    fl_free[fl_nfree++] = easy;
  else
    curl_easy_cleanup(easy);

  c->easy = NULL;
  if (c->closing) {
    if (c->closed)
      free(c);
    return;
  }
  if (rc == CURLE_OK && status == 200)
    fl_answer(c, 200, c->body, c->nbody);
  else
    fl_answer(c, 502, "{}", 2);
}

static void fl_drain(void) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(fl_multi, &left)) != NULL) {
    if (m->msg == CURLMSG_DONE)
      fl_done(m->easy_handle, m->data.result);
  }
}

static CURL *fl_easy(void) {
  if (fl_nfree > 0)
    return fl_free[--fl_nfree];

  /* The fixed options unicrm sets once per easy handle (src/upstream.c). */
  CURL *h = curl_easy_init();
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fl_on_body);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_PROXY, "");
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_MAXAGE_CONN, 60L);
  curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, fl_close_socket);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PATCH");
  curl_easy_setopt(h, CURLOPT_URL, fl_url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, fl_headers);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, fl_call_body);
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(sizeof(fl_call_body) - 1));
  return h;
}

static int fl_on_message(llhttp_t *p) {
  struct fl_conn *c = p->data;
  c->nbody = 0;
  c->easy = fl_easy();
  curl_easy_setopt(c->easy, CURLOPT_PRIVATE, (char *)c);
  curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
  curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, 15000L);
  curl_multi_add_handle(fl_multi, c->easy);
  return HPE_PAUSED;
}

/* Keeps bytes that arrive while a request is out; a client that floods is cut off. */
static int fl_hold(struct fl_conn *c, const char *p, size_t n) {
  if (n > sizeof(c->backlog) - c->nbacklog)
    return -1;
  memmove(c->backlog + c->nbacklog, p, n);
  c->nbacklog += n;
  return 0;
}

static void fl_parse(struct fl_conn *c, const char *p, size_t n) {
  if (c->easy != NULL || llhttp_get_errno(&c->parser) == HPE_PAUSED) {
    if (fl_hold(c, p, n) != 0)
      fl_close(c);
    return;
  }

  llhttp_errno_t err = llhttp_execute(&c->parser, p, n);
  if (err == HPE_OK)
    return;
  if (err != HPE_PAUSED) {
    fl_close(c);
    return;
  }
  const char *at = llhttp_get_error_pos(&c->parser);
  if (fl_hold(c, at, (size_t)(p + n - at)) != 0)
    fl_close(c);
}

static void fl_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  struct fl_conn *c = h->data;
  (void)hint;
  *b = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void fl_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  struct fl_conn *c = s->data;
  if (n < 0) {
    fl_close(c);
    return;
  }
  if (n > 0)
    fl_parse(c, b->base, (size_t)n);
}

static void fl_on_accept(uv_stream_t *srv, int status) {
  if (status < 0)
    return;
  struct fl_conn *c = calloc(1, sizeof(*c));
  uv_tcp_init(fl_loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(srv, (uv_stream_t *)&c->tcp) != 0) {
    fl_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  llhttp_init(&c->parser, HTTP_REQUEST, &fl_settings);
  c->parser.data = c;
  uv_read_start((uv_stream_t *)&c->tcp, fl_alloc, fl_read);
}

int main(int argc, char **argv) {
  int port = 0;
  const char *upstream = NULL;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--listen") == 0)
      port = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--upstream") == 0)
      upstream = argv[i + 1];
  }
  if (port <= 0 || upstream == NULL) {
    fprintf(stderr, "usage: floor --listen PORT --upstream http://HOST:PORT\n");
    return 2;
  }

  signal(SIGPIPE, SIG_IGN);
  snprintf(fl_url, sizeof(fl_url), "%s/v1/leads/adf21080-0e10-11eb-879b-05d71fb426ec", upstream);
  /* The header lines unicrm sends to Pipedrive (src/pipeline.c), request id included. */
  const char *lines[] = {"X-Request-Id: 5f1d0b6c2a9e4d7f8b3a6c1e0d2f4a7b",
                         "x-api-token: pd-test-token", "Content-Type: application/json",
                         "Accept: application/json", "Expect:"};
  for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
    fl_headers = curl_slist_append(fl_headers, lines[i]);

  curl_global_init(CURL_GLOBAL_DEFAULT);
  fl_loop = uv_default_loop();
  fl_multi = curl_multi_init();
  curl_multi_setopt(fl_multi, CURLMOPT_SOCKETFUNCTION, fl_on_socket);
  curl_multi_setopt(fl_multi, CURLMOPT_TIMERFUNCTION, fl_on_timer_set);
  curl_multi_setopt(fl_multi, CURLMOPT_MAX_HOST_CONNECTIONS, 64L);
  curl_multi_setopt(fl_multi, CURLMOPT_MAXCONNECTS, 256L);
  uv_timer_init(fl_loop, &fl_timer);
  uv_idle_init(fl_loop, &fl_kick);

  llhttp_settings_init(&fl_settings);
  fl_settings.on_message_complete = fl_on_message;

  uv_tcp_t srv;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", port, &addr);
  uv_tcp_init(fl_loop, &srv);
  if (uv_tcp_bind(&srv, (const struct sockaddr *)&addr, 0) != 0 ||
      uv_listen((uv_stream_t *)&srv, 4096, fl_on_accept) != 0) {
    fprintf(stderr, "floor: cannot listen on 127.0.0.1:%d\n", port);
    return 1;
  }
  return uv_run(fl_loop, UV_RUN_DEFAULT);
}
