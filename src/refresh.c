#include "refresh.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "provider.h"

#define REFRESH_TIMEOUT_MS 15000
#define REFRESH_REPLY_MAX 65536

struct refresh_state {
  struct ucrm_account *acct;
  struct up_call call;
  struct ubuf url;
  struct ubuf form;
  struct curl_slist *headers;
  struct ucrm_refresh_waiter *waiters; /* in join order */
  int busy;
  long generation;
};

static void refresh_free(void *p) {
  struct refresh_state *st = p;
  up_call_cancel(&st->call);
  ubuf_free(&st->url);
  ubuf_free(&st->form);
  ubuf_free(&st->call.resp);
  curl_slist_free_all(st->headers);
  free(st);
}

static struct refresh_state *refresh_state(struct ucrm_account *acct) {
  if (acct->runtime != NULL)
    return acct->runtime;

  struct refresh_state *st = calloc(1, sizeof(*st));
  if (st == NULL)
    return NULL;
  st->acct = acct;
  ubuf_init(&st->url, 4096);
  ubuf_init(&st->form, 16384);
  ubuf_init(&st->call.resp, REFRESH_REPLY_MAX);
  acct->runtime = st;
  acct->runtime_free = refresh_free;
  return st;
}

int ucrm_refresh_possible(const struct ucrm_account *acct) {
  struct ubuf url, form;
  ubuf_init(&url, 4096);
  ubuf_init(&form, 16384);
  const struct ucrm_provider *p = acct->provider;
  int ok = p->refresh_request != NULL && p->refresh_request(acct, &url, &form) == 0;
  ubuf_free(&url);
  ubuf_free(&form);
  return ok;
}

int ucrm_refresh_busy(const struct ucrm_account *acct) {
  const struct refresh_state *st = acct->runtime;
  return st != NULL && st->busy;
}

long ucrm_refresh_generation(const struct ucrm_account *acct) {
  const struct refresh_state *st = acct->runtime;
  return st != NULL ? st->generation : 0;
}

static int refresh_outcome(struct refresh_state *st) {
  struct up_call *c = &st->call;
  if (c->result != CURLE_OK || c->status < 200 || c->status >= 300) {
    ulog(ULOG_WARN, "refresh", "provider=%s msg=\"token refresh failed\" status=%ld curl=%d",
         st->acct->provider->name, c->status, (int)c->result);
    return 0;
  }

  struct jv *body = NULL;
  char err[64];
  int ok = jv_parse(c->resp.data, c->resp.len, 8, &body, err, sizeof(err)) == 0 &&
           st->acct->provider->refresh_reply(st->acct, body) == 0;
  jv_free(body);
  ulog(ok ? ULOG_INFO : ULOG_WARN, "refresh", "provider=%s msg=\"%s\"", st->acct->provider->name,
       ok ? "token refreshed" : "token refresh answered without a usable token");
  return ok;
}

static void refresh_on_done(struct up_call *c) {
  struct refresh_state *st = c->data;
  int ok = refresh_outcome(st);
  st->generation += ok;
  um_refresh(st->acct->provider->name, ok);

  /* Detach first: a waiter's callback may start calls, or even join a new refresh. */
  struct ucrm_refresh_waiter *w = st->waiters;
  st->waiters = NULL;
  st->busy = 0;
  while (w != NULL) {
    struct ucrm_refresh_waiter *next = w->next;
    w->waiting = 0;
    w->next = NULL;
    w->cb(w->data, ok);
    w = next;
  }
}

static int refresh_start(struct up_engine *up, struct refresh_state *st) {
  ubuf_reset(&st->url);
  ubuf_reset(&st->form);
  curl_slist_free_all(st->headers);
  st->headers = NULL;

  const struct ucrm_provider *p = st->acct->provider;
  if (p->refresh_request == NULL || p->refresh_request(st->acct, &st->url, &st->form) != 0)
    return UCRM_EINVAL;

  st->headers = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
  st->headers = st->headers ? curl_slist_append(st->headers, "Accept: application/json") : NULL;
  if (st->headers == NULL)
    return UCRM_ENOMEM;

  st->call.method = "POST";
  st->call.url = ubuf_cstr(&st->url);
  st->call.headers = st->headers;
  st->call.body = ubuf_cstr(&st->form);
  st->call.body_len = st->form.len;
  st->call.timeout_ms = REFRESH_TIMEOUT_MS;
  st->call.on_done = refresh_on_done;
  st->call.on_header = NULL;
  st->call.data = st;
  int rc = up_call_start(up, &st->call);
  if (rc == 0) {
    st->busy = 1;
  }
  return rc;
}

int ucrm_refresh_join(struct up_engine *up, struct ucrm_account *acct,
                      struct ucrm_refresh_waiter *w) {
  struct refresh_state *st = refresh_state(acct);
  if (st == NULL)
    return UCRM_ENOMEM;

  if (!st->busy) {
    int rc = refresh_start(up, st);
    if (rc != 0)
      return rc;
  }

  struct ucrm_refresh_waiter **tail = &st->waiters;
  while (*tail != NULL)
    tail = &(*tail)->next;
  w->next = NULL;
  w->waiting = 1;
  *tail = w;
  return 0;
}

void ucrm_refresh_leave(struct ucrm_account *acct, struct ucrm_refresh_waiter *w) {
  struct refresh_state *st = acct->runtime;
  if (!w->waiting || st == NULL)
    return;

  for (struct ucrm_refresh_waiter **p = &st->waiters; *p != NULL; p = &(*p)->next) {
    if (*p == w) {
      *p = w->next;
      break;
    }
  }
  w->waiting = 0;
  w->next = NULL;
}
