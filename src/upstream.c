#include "upstream.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "log.h"

#define UP_FREE_EASY_MAX 256
#define UP_ORIGIN_MAX 256

/*
 * The calls to one origin ("https://host:port"): how many are in curl, and the ones waiting
 * for a connection. Lanes live as long as the engine; there is one per origin the config
 * names (a Salesforce instance URL counts as one), so they stay few.
 */
struct up_lane {
  char origin[UP_ORIGIN_MAX];
  int busy;
  struct up_call *head, *tail;
  struct up_lane *next;
};

/*
 * One poll context per socket curl asked us to watch. Contexts are found by fd in our own
 * table, because curl forgets the pointer given to curl_multi_assign after a POLL_REMOVE while
 * the same fd may come back at once.
 */
struct up_socket {
  uv_poll_t poll;
  curl_socket_t fd;
  struct up_engine *eng;
  int events;  /* what the poll handle watches now */
  int removed; /* curl does not need it watched; still watched for reading, see up_on_socket */
};

struct up_engine {
  uv_loop_t *loop;
  CURLM *multi;
  /* A copy: the engine outlives the config it started with (reloads replace that). */
  struct ucrm_upstream_cfg cfg_copy;
  const struct ucrm_upstream_cfg *cfg;
  uv_timer_t timer;
  uv_idle_t kick; /* runs curl's "timeout now" on the next loop turn, without a 1 ms timer */
  struct up_socket **by_fd;
  size_t nfd;
  CURL *free_easy[UP_FREE_EASY_MAX];
  size_t nfree;
  int active;
  struct up_call *calls; /* in flight, so that closing the engine can stop them */
  int handles_open;      /* timer, kick and expiry; freed once all three closed */
  struct up_lane *lanes;
  int pump; /* a lane has room and a queue: start its calls on the next kick */

  /*
   * Wakes up when the first queued call's timeout runs out, so a call stuck behind busy
   * connections fails on time rather than when a connection next frees up.
   */
  uv_timer_t expiry;
  uint64_t expiry_at; /* loop time it is armed for; 0 when it is not */

  /*
   * Transfers cancelled from inside one of curl's callbacks, where curl refuses multi calls;
   * they are removed as soon as the outer curl call returns.
   */
  int in_callback;
  CURL **orphans;
  size_t norphans, orphans_cap;
};

static void up_drain(struct up_engine *e);
static void up_recycle(struct up_engine *e, CURL *easy);

static void up_link(struct up_engine *e, struct up_call *c) {
  c->prev = NULL;
  c->next = e->calls;
  if (e->calls != NULL)
    e->calls->prev = c;
  e->calls = c;
}

static void up_unlink(struct up_engine *e, struct up_call *c) {
  if (c->prev != NULL)
    c->prev->next = c->next;
  else if (e->calls == c)
    e->calls = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  c->prev = c->next = NULL;
}

static void up_reap_orphans(struct up_engine *e) {
  for (size_t i = 0; i < e->norphans; i++) {
    curl_multi_remove_handle(e->multi, e->orphans[i]);
    up_recycle(e, e->orphans[i]);
    e->active--;
  }
  e->norphans = 0;
}

static void up_socket_action(struct up_engine *e, curl_socket_t fd, int flags) {
  int running;
  CURLMcode mc = curl_multi_socket_action(e->multi, fd, flags, &running);
  if (mc != CURLM_OK)
    ulog(ULOG_ERROR, "upstream", "msg=\"curl_multi_socket_action failed\" error=\"%s\"",
         curl_multi_strerror(mc));
  up_reap_orphans(e);

  /* Drain after every call, whatever running says: the last transfer may just have ended. */
  up_drain(e);
}

static void up_on_poll(uv_poll_t *h, int status, int events) {
  struct up_socket *s = h->data;
  int flags = 0;

  /* An idle pooled connection became readable (the server closed it, most likely): stop
   * watching it, and still tell curl, which ignores sockets it does not track. */
  if (s->removed) {
    uv_poll_stop(&s->poll);
    s->events = 0;
  }

  if (status < 0)
    flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  up_socket_action(s->eng, s->fd, flags);
}

static void up_on_timer(uv_timer_t *t) {
  up_socket_action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static void up_pump(struct up_engine *e);

static void up_on_kick(uv_idle_t *i) {
  struct up_engine *e = i->data;
  uv_idle_stop(i);
  if (e->pump)
    up_pump(e);
  up_socket_action(e, CURL_SOCKET_TIMEOUT, 0);
}

/*
 * curl asks to be woken after timeout_ms. Zero means "as soon as possible": a uv_idle runs it
 * on the next loop turn, which avoids both calling curl from inside its own callback and the
 * libuv < 1.48 zero-timer loop that can starve I/O.
 */
static int up_on_timer_set(CURLM *m, long timeout_ms, void *userp) {
  struct up_engine *e = userp;

  if (timeout_ms < 0) {
    uv_timer_stop(&e->timer);
  } else if (timeout_ms == 0) {
    uv_timer_stop(&e->timer);
    uv_idle_start(&e->kick, up_on_kick);
  } else {
    uv_timer_start(&e->timer, up_on_timer, (uint64_t)timeout_ms, 0);
  }
  return 0;
}

static struct up_socket *up_socket_get(struct up_engine *e, curl_socket_t fd) {
  if (fd < 0 || (size_t)fd >= e->nfd)
    return NULL;
  return e->by_fd[fd];
}

static int up_socket_put(struct up_engine *e, curl_socket_t fd, struct up_socket *s) {
  if ((size_t)fd >= e->nfd) {
    size_t n = e->nfd ? e->nfd : 64;
    while (n <= (size_t)fd)
      n *= 2;
    struct up_socket **grown = realloc(e->by_fd, n * sizeof(*grown));
    if (grown == NULL)
      return UCRM_ENOMEM;
    memset(grown + e->nfd, 0, (n - e->nfd) * sizeof(*grown));
    e->by_fd = grown;
    e->nfd = n;
  }
  e->by_fd[fd] = s;
  return 0;
}

static int up_on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  struct up_engine *e = userp;
  struct up_socket *s = up_socket_get(e, fd);

  if (what == CURL_POLL_REMOVE) {
    /*
     * A connection going back to the pool stays watched for reading: the next request on it
     * then costs no epoll_ctl at all. If it turns readable while idle, up_on_poll stops it.
     * Watching for writing would fire at once, so that is stopped now.
     */
    if (s != NULL) {
      s->removed = 1;
      if (s->events != UV_READABLE) {
        uv_poll_stop(&s->poll);
        s->events = 0;
      }
    }
    return 0;
  }

  if (s == NULL) {
    s = calloc(1, sizeof(*s));
    if (s == NULL || uv_poll_init_socket(e->loop, &s->poll, fd) != 0 ||
        up_socket_put(e, fd, s) != 0) {
      free(s);
      return -1;
    }
    s->fd = fd;
    s->eng = e;
    s->poll.data = s;
  }

  int events = 0;
  if (what & CURL_POLL_IN)
    events |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    events |= UV_WRITABLE;
  s->removed = 0;
  if (events != s->events) {
    uv_poll_start(&s->poll, events, up_on_poll);
    s->events = events;
  }
  return 0;
}

static curl_socket_t up_open_socket(void *clientp, curlsocktype purpose,
                                    struct curl_sockaddr *addr) {
  return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

static void up_socket_closed(uv_handle_t *h) {
  struct up_socket *s = h->data;
  close(s->fd);
  free(s);
}

/*
 * We close curl's sockets ourselves, and only after libuv has let go of the poll handle, so
 * a new socket can never reuse an fd that a closing uv_poll_t still watches.
 */
static int up_close_socket(void *clientp, curl_socket_t fd) {
  struct up_engine *e = clientp;
  struct up_socket *s = up_socket_get(e, fd);

  if (s == NULL)
    return close(fd);

  e->by_fd[fd] = NULL;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, up_socket_closed);
  return 0;
}

static void up_recycle(struct up_engine *e, CURL *easy) {
  /* No curl_easy_reset: the options every call shares stay set (see up_easy). */
  if (e->nfree < UP_FREE_EASY_MAX) {
    e->free_easy[e->nfree++] = easy;
  } else {
    curl_easy_cleanup(easy);
  }
}

/* ---- lanes: calls beyond max_host_connections per origin wait here, not in curl ---- */

/* The origin of url (up to the first '/' after "scheme://"); 0 if it has none or is long. */
static size_t up_origin(const char *url, char *out, size_t outlen) {
  const char *sep = strstr(url, "://");
  if (sep == NULL)
    return 0;
  size_t n = (size_t)(sep + 3 - url) + strcspn(sep + 3, "/?#");
  if (n >= outlen)
    return 0;
  memcpy(out, url, n);
  out[n] = '\0';
  return n;
}

static struct up_lane *up_lane_of(struct up_engine *e, const char *url) {
  char origin[UP_ORIGIN_MAX];
  if (up_origin(url, origin, sizeof(origin)) == 0)
    return NULL;

  for (struct up_lane *l = e->lanes; l != NULL; l = l->next) {
    if (strcmp(l->origin, origin) == 0)
      return l;
  }
  struct up_lane *l = calloc(1, sizeof(*l));
  if (l == NULL)
    return NULL; /* the call then goes straight to curl, which queues it itself */
  memcpy(l->origin, origin, sizeof(origin));
  l->next = e->lanes;
  e->lanes = l;
  return l;
}

static void up_lane_push(struct up_lane *l, struct up_call *c) {
  c->qnext = NULL;
  if (l->tail != NULL)
    l->tail->qnext = c;
  else
    l->head = c;
  l->tail = c;
}

static void up_lane_remove(struct up_lane *l, struct up_call *c) {
  struct up_call **pp = &l->head;
  struct up_call *prev = NULL;
  while (*pp != NULL && *pp != c) {
    prev = *pp;
    pp = &(*pp)->qnext;
  }
  if (*pp == NULL)
    return;
  *pp = c->qnext;
  if (l->tail == c)
    l->tail = prev;
  c->qnext = NULL;
}

/* A call left curl: its connection is free for the next one queued, started on the next kick
 * (never from here, which may be inside a curl callback). */
static void up_lane_release(struct up_engine *e, struct up_call *c) {
  struct up_lane *l = c->lane;
  if (l == NULL)
    return;
  c->lane = NULL;
  l->busy--;
  if (l->head != NULL) {
    e->pump = 1;
    uv_idle_start(&e->kick, up_on_kick);
  }
}

static void up_finish(struct up_engine *e, CURL *easy, CURLcode result) {
  struct up_call *c = NULL;
  curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&c);
  if (c == NULL) {
    curl_multi_remove_handle(e->multi, easy);
    up_recycle(e, easy);
    e->active--;
    return;
  }

  c->result = result;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &c->status);
  curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &c->num_connects);

  curl_multi_remove_handle(e->multi, easy);
  up_recycle(e, easy);
  c->easy = NULL;
  up_unlink(e, c);
  up_lane_release(e, c);
  e->active--;
  c->on_done(c);
}

static void up_drain(struct up_engine *e) {
  CURLMsg *msg;
  int left;

  while ((msg = curl_multi_info_read(e->multi, &left)) != NULL) {
    if (msg->msg != CURLMSG_DONE)
      continue;
    /* Copy out before removing the handle: the message does not survive it. */
    CURL *easy = msg->easy_handle;
    CURLcode result = msg->data.result;
    up_finish(e, easy, result);
  }
}

static size_t up_on_body(char *p, size_t size, size_t n, void *userp) {
  struct up_call *c = userp;
  if (c == NULL)
    return 0; /* cancelled: fail the orphaned transfer */
  if (c->on_data == NULL)
    return ubuf_append(&c->resp, p, n) == 0 ? n : 0;

  struct up_engine *e = c->eng;
  e->in_callback++;
  size_t taken = c->on_data(c, p, n);
  e->in_callback--;
  return taken;
}

long up_call_status(const struct up_call *c) {
  long status = 0;
  if (c->easy != NULL)
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
  return status;
}

void up_call_resume(struct up_call *c) {
  if (c->easy == NULL)
    return;
  /* Unpausing may hand held bytes to on_data right here, which may cancel the call. */
  struct up_engine *e = c->eng;
  curl_easy_pause(c->easy, CURLPAUSE_CONT);
  up_reap_orphans(e);
}

/* Copies a header value, cutting it to fit; the fields it fills hold short tokens. */
static void up_copy_value(char *dst, size_t dstlen, const char *v) {
  size_t n = strlen(v);
  if (n >= dstlen)
    n = dstlen - 1;
  memcpy(dst, v, n);
  dst[n] = '\0';
}

/*
 * Splits one raw header line into a lower-cased name and a trimmed value, both cut to fit.
 * Returns 0 for a line that is not "name: value" (or whose name is longer than ours get).
 */
static int up_split_header(const char *p, size_t n, char name[64], char value[256]) {
  const char *colon = memchr(p, ':', n);
  if (colon == NULL || colon == p || (size_t)(colon - p) >= 64)
    return 0;

  size_t nlen = (size_t)(colon - p);
  for (size_t i = 0; i < nlen; i++)
    name[i] = (char)tolower((unsigned char)p[i]);
  name[nlen] = '\0';

  const char *v = colon + 1;
  size_t vlen = n - nlen - 1;
  while (vlen > 0 && (*v == ' ' || *v == '\t')) {
    v++;
    vlen--;
  }
  while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
    vlen--;
  if (vlen >= 256)
    vlen = 255;
  memcpy(value, v, vlen);
  value[vlen] = '\0';
  return 1;
}

static size_t up_on_header(char *p, size_t size, size_t n, void *userp) {
  struct up_call *c = userp;
  if (c == NULL)
    return 0;

  /* A new status line starts a new response (after a 1xx): forget what came before. */
  if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
    c->content_type[0] = '\0';
    c->retry_after[0] = '\0';
    return n;
  }

  char name[64], value[256];
  if (!up_split_header(p, n, name, value))
    return n;

  if (strcmp(name, "content-type") == 0)
    up_copy_value(c->content_type, sizeof(c->content_type), value);
  else if (strcmp(name, "retry-after") == 0)
    up_copy_value(c->retry_after, sizeof(c->retry_after), value);
  if (c->on_header != NULL)
    c->on_header(c, name, value);
  return n;
}

/* Options that are the same for every call, set once per easy handle. */
static void up_setopts_fixed(struct up_engine *e, CURL *h) {
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, up_on_body);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, up_on_header);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, e->cfg->connect_timeout_ms);

  /* Never follow a redirect and speak only HTTP(S): a provider cannot send us elsewhere. */
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  /* No proxy from the environment (http_proxy and friends): provider credentials go only
   * where the config says, and curl is spared an environment lookup per call. */
  curl_easy_setopt(h, CURLOPT_PROXY, "");
  if (e->cfg->ca_file != NULL)
    curl_easy_setopt(h, CURLOPT_CAINFO, e->cfg->ca_file);

  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  /* Below the common 75 s upstream keep-alive, so we never reuse a connection being closed. */
  curl_easy_setopt(h, CURLOPT_MAXAGE_CONN, 60L);
  curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, up_open_socket);
  curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, e);
  curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, up_close_socket);
  curl_easy_setopt(h, CURLOPT_CLOSESOCKETDATA, e);
}

static CURL *up_easy(struct up_engine *e) {
  if (e->nfree > 0)
    return e->free_easy[--e->nfree];

  CURL *h = curl_easy_init();
  if (h != NULL)
    up_setopts_fixed(e, h);
  return h;
}

/* What changes from call to call. */
static void up_setopts(struct up_call *c, CURL *h) {
  curl_easy_setopt(h, CURLOPT_URL, c->url);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body != NULL ? c->body : "");
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
  curl_easy_setopt(h, CURLOPT_PRIVATE, (char *)c);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
}

/* Hands the call to curl. */
static int up_start_now(struct up_engine *e, struct up_call *c) {
  CURL *h = up_easy(e);
  if (h == NULL)
    return UCRM_ENOMEM;

  c->easy = h;
  up_setopts(c, h);
  CURLMcode mc = curl_multi_add_handle(e->multi, h);
  if (mc != CURLM_OK) {
    up_recycle(e, h);
    c->easy = NULL;
    return UCRM_EIO;
  }
  if (c->lane != NULL)
    c->lane->busy++;
  e->active++;
  return 0;
}

static uint64_t up_queued_deadline(const struct up_call *c) {
  return c->queued_at + (uint64_t)c->timeout_ms;
}

static void up_on_expiry(uv_timer_t *t);

static void up_expiry_start(struct up_engine *e, uint64_t deadline) {
  uint64_t now = uv_now(e->loop);
  e->expiry_at = deadline;
  uv_timer_start(&e->expiry, up_on_expiry, deadline > now ? deadline - now : 0, 0);
}

/* Arms the expiry timer for deadline unless it already fires earlier. */
static void up_expiry_arm(struct up_engine *e, uint64_t deadline) {
  if (e->expiry_at == 0 || deadline < e->expiry_at)
    up_expiry_start(e, deadline);
}

/* Fails every queued call whose time is up, then waits for the next one to run out. */
static void up_on_expiry(uv_timer_t *t) {
  struct up_engine *e = t->data;
  uint64_t now = uv_now(e->loop);
  struct up_call *expired = NULL;
  uint64_t next = 0;

  e->expiry_at = 0;
  for (struct up_lane *l = e->lanes; l != NULL; l = l->next) {
    struct up_call *c = l->head;
    while (c != NULL) {
      struct up_call *after = c->qnext;
      if (up_queued_deadline(c) <= now) {
        up_lane_remove(l, c);
        c->queued = 0;
        c->qnext = expired;
        expired = c;
      } else if (next == 0 || up_queued_deadline(c) < next) {
        next = up_queued_deadline(c);
      }
      c = after;
    }
  }
  if (next != 0)
    up_expiry_start(e, next);

  /* Their callbacks run last: one may queue a new call (a retry), which re-arms the timer. */
  while (expired != NULL) {
    struct up_call *c = expired;
    expired = c->qnext;
    c->qnext = NULL;
    up_unlink(e, c);
    c->lane = NULL;
    c->result = CURLE_OPERATION_TIMEDOUT;
    c->on_done(c);
  }
}

/* Starts queued calls while their origin has room; one that cannot start fails at once. */
static void up_pump(struct up_engine *e) {
  e->pump = 0;
  for (struct up_lane *l = e->lanes; l != NULL; l = l->next) {
    while (l->head != NULL && l->busy < e->cfg->max_host_connections) {
      struct up_call *c = l->head;
      up_lane_remove(l, c);
      c->queued = 0;

      /* The wait counts against the call's own timeout, as it would inside curl. A call whose
       * time ran out in the queue fails as a timeout without ever reaching the provider. */
      uint64_t waited = uv_now(e->loop) - c->queued_at;
      CURLcode failed = CURLE_OPERATION_TIMEDOUT;
      if ((long)waited < c->timeout_ms) {
        c->timeout_ms -= (long)waited;
        int rc = up_start_now(e, c);
        if (rc == 0)
          continue;
        failed = rc == UCRM_ENOMEM ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
      }
      up_unlink(e, c);
      c->lane = NULL;
      c->result = failed;
      c->on_done(c);
    }
  }
}

int up_call_start(struct up_engine *e, struct up_call *c) {
  c->eng = e;
  c->easy = NULL;
  c->status = 0;
  c->result = CURLE_OK;
  c->num_connects = 0;
  c->content_type[0] = '\0';
  c->retry_after[0] = '\0';
  c->queued = 0;
  ubuf_reset(&c->resp);
  c->lane = up_lane_of(e, c->url);

  /* Behind others already waiting, or over the origin's connections: wait in line. */
  if (c->lane != NULL && (c->lane->head != NULL || c->lane->busy >= e->cfg->max_host_connections)) {
    c->queued = 1;
    c->queued_at = uv_now(e->loop);
    up_lane_push(c->lane, c);
    up_link(e, c);
    up_expiry_arm(e, up_queued_deadline(c));
    return 0;
  }

  int rc = up_start_now(e, c);
  if (rc != 0) {
    c->lane = NULL;
    return rc;
  }
  up_link(e, c);
  return 0;
}

void up_call_cancel(struct up_call *c) {
  if (c->queued) {
    c->queued = 0;
    up_lane_remove(c->lane, c);
    c->lane = NULL;
    up_unlink(c->eng, c);
    return;
  }
  if (c->easy == NULL)
    return;

  struct up_engine *e = c->eng;
  CURL *easy = c->easy;
  c->easy = NULL;
  up_unlink(e, c);
  up_lane_release(e, c);
  if (e->in_callback == 0) {
    curl_multi_remove_handle(e->multi, easy);
    up_recycle(e, easy);
    e->active--;
    return;
  }

  /* Inside a curl callback: detach the call now, remove the transfer once curl returns. */
  curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, NULL);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, NULL);
  if (e->norphans == e->orphans_cap) {
    size_t cap = e->orphans_cap ? e->orphans_cap * 2 : 8;
    CURL **grown = realloc(e->orphans, cap * sizeof(*grown));
    if (grown == NULL) {
      /* Without room to remember it, the transfer fails at its next callback and its
       * completion is ignored by up_finish. */
      return;
    }
    e->orphans = grown;
    e->orphans_cap = cap;
  }
  e->orphans[e->norphans++] = easy;
}

int up_engine_new(uv_loop_t *loop, const struct ucrm_upstream_cfg *cfg, struct up_engine **out) {
  struct up_engine *e = calloc(1, sizeof(*e));
  if (e == NULL)
    return UCRM_ENOMEM;

  e->loop = loop;
  e->cfg_copy = *cfg;
  e->cfg_copy.ca_file = cfg->ca_file != NULL ? strdup(cfg->ca_file) : NULL;
  e->cfg = &e->cfg_copy;
  e->multi = curl_multi_init();
  if (e->multi == NULL) {
    free(e);
    return UCRM_ENOMEM;
  }

  uv_timer_init(loop, &e->timer);
  uv_idle_init(loop, &e->kick);
  uv_timer_init(loop, &e->expiry);
  e->timer.data = e;
  e->kick.data = e;
  e->expiry.data = e;
  e->handles_open = 3;

  curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, up_on_socket);
  curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
  curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, up_on_timer_set);
  curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
  curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS, e->cfg->max_host_connections);
  /* Cache as many idle connections as may be busy at once, so bursts do not churn TLS. */
  curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, e->cfg->max_host_connections * 4);
  *out = e;
  return 0;
}

static void up_engine_handle_closed(uv_handle_t *h) {
  struct up_engine *e = h->data;
  if (--e->handles_open == 0)
    free(e);
}

void up_engine_close(struct up_engine *e) {
  while (e->calls != NULL)
    up_call_cancel(e->calls);
  up_reap_orphans(e);

  /* Cleanup closes cached connections through up_close_socket, so the loop must still run. */
  curl_multi_cleanup(e->multi);
  for (size_t i = 0; i < e->nfree; i++)
    curl_easy_cleanup(e->free_easy[i]);
  e->nfree = 0;

  /* Sockets curl only stopped watching but never closed (none expected) are closed here. */
  for (size_t fd = 0; fd < e->nfd; fd++) {
    struct up_socket *s = e->by_fd[fd];
    if (s != NULL) {
      e->by_fd[fd] = NULL;
      uv_close((uv_handle_t *)&s->poll, up_socket_closed);
    }
  }
  free(e->by_fd);
  e->by_fd = NULL;
  free(e->orphans);
  e->orphans = NULL;
  free(e->cfg_copy.ca_file);
  e->cfg_copy.ca_file = NULL;
  while (e->lanes != NULL) {
    struct up_lane *l = e->lanes;
    e->lanes = l->next;
    free(l);
  }

  uv_close((uv_handle_t *)&e->timer, up_engine_handle_closed);
  uv_close((uv_handle_t *)&e->kick, up_engine_handle_closed);
  uv_close((uv_handle_t *)&e->expiry, up_engine_handle_closed);
}
