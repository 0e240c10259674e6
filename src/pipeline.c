#include "pipeline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "assoc.h"
#include "gate.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "provider.h"
#include "query.h"
#include "refresh.h"
#include "relay.h"
#include "respond.h"

#define JOB_REPLY_MAX (8 * 1024 * 1024) /* a provider body we hold whole (not streamed) */
#define JOB_VERDICT_MAX (1024 * 1024)   /* what we keep of a relayed body to judge it */
#define JOB_BACKOFF_BASE_MS 200
#define JOB_BACKOFF_MAX_MS 5000

struct job {
  struct ucrm_app *app;
  struct ucrm_config *cfg; /* the config the request started with; one ref held */
  struct srv_req *req;
  struct ucrm_account *acct;
  struct ucrm_query q;
  struct ucrm_assoc a;
  struct ucrm_plan plan;

  size_t cur;  /* the call in flight */
  int attempt; /* retries made for the current call */
  int retries; /* retries over the whole request */
  uint64_t deadline;
  struct up_call call;
  struct curl_slist rid_node; /* heads the call's header list; the rest is the account's */
  char rid_line[96];
  struct ubuf url;
  uv_timer_t timer; /* waits between retries, or for a queue slot until the deadline */
  int waiting;
  struct ucrm_gate_waiter gate;
  int has_slot; /* holds one of the account's in-flight slots */
  uint64_t call_started_ms;
  struct relay relay; /* the stream and raw formats */
  int relaying;       /* the current call's 2xx body goes to the client as it arrives */
  int relayed;        /* ...and some of it already went */
  int paused;         /* the current call waits for the client to read */
  int freed;          /* job_free has run; the memory goes in the timer's close callback */
  int refreshed;      /* this request already had its token refreshed once */
  long token_gen;     /* the account's refresh generation when the current call started */
  struct ucrm_refresh_waiter refresh;

  struct jv **replies;         /* per call: parsed reply, NULL for empty/non-JSON */
  long *statuses;              /* per call: provider status */
  struct ucrm_result *results; /* per link, over all calls in order */
  size_t nresults;
  struct ucrm_verdict verdict; /* of the current call */
  unsigned char *link_ok;
  struct ucrm_ratelimit rl;
  struct job *next_spare; /* in app->spare while unused */
};

/* Enough for the usual concurrency; a burst above it frees its extra jobs when it ends. */
#define JOB_SPARE_MAX 256

static void job_start_call(struct job *j);

/* ---- life cycle ---- */

static void job_config_unref(struct ucrm_config *cfg) {
  if (--cfg->refs == 0)
    ucrm_config_free(cfg);
}

/* A zeroed job, from the spares when there is one; its two buffers keep their memory. */
static struct job *job_get(struct ucrm_app *app) {
  struct job *j = app->spare;
  if (j == NULL)
    return calloc(1, sizeof(*j));

  app->spare = j->next_spare;
  app->nspare--;
  struct ubuf url = j->url, resp = j->call.resp;
  memset(j, 0, sizeof(*j));
  j->url = url;
  j->call.resp = resp;
  ubuf_reset(&j->url);
  ubuf_reset(&j->call.resp);
  return j;
}

static void job_put(struct ucrm_app *app, struct job *j) {
  /* Buffers that grew for a big reply go back to the allocator, not into the pool. */
  if (j->url.cap > 4096)
    ubuf_free(&j->url);
  if (j->call.resp.cap > 16384)
    ubuf_free(&j->call.resp);
  if (app->nspare >= JOB_SPARE_MAX) {
    ubuf_free(&j->url);
    ubuf_free(&j->call.resp);
    free(j);
    return;
  }
  j->next_spare = app->spare;
  app->spare = j;
  app->nspare++;
}

static void job_freed(uv_handle_t *h) {
  struct job *j = h->data;

  for (size_t i = 0; j->replies != NULL && i < j->plan.n; i++)
    jv_free(j->replies[i]);
  free(j->replies);
  free(j->statuses);
  free(j->results);
  free(j->link_ok);
  ucrm_plan_free(&j->plan);
  ucrm_assoc_free(&j->a);
  ucrm_query_free(&j->q);
  relay_free(&j->relay);
  j->app->jobs--;
  job_config_unref(j->cfg);
  job_put(j->app, j);
}

/*
 * Safe to call twice: writing the last answer can fail, close the connection and run
 * job_abort (which frees the job) before the answering code reaches its own job_free. The
 * memory lives until the close callback, so the second call only needs to see the flag.
 */
static void job_free(struct job *j) {
  if (j->freed)
    return;
  j->freed = 1;
  uv_close((uv_handle_t *)&j->timer, job_freed);
}

/* The client went away: stop the provider work at once. */
static void job_abort(void *data) {
  struct job *j = data;
  up_call_cancel(&j->call);
  uv_timer_stop(&j->timer);
  ucrm_refresh_leave(j->acct, &j->refresh);
  ucrm_gate_leave(j->acct, &j->gate);
  if (j->has_slot) {
    j->has_slot = 0;
    ucrm_gate_exit(j->acct);
  }
  ulog(ULOG_INFO, "pipeline",
       "req_id=%s msg=\"client went away; provider calls cancelled\" "
       "calls_done=%zu",
       j->req->request_id, j->cur);
  job_free(j);
}

/* ---- answering ---- */

static void job_ratelimit_headers(struct job *j, struct ubuf *h) {
  if (j->rl.limit >= 0)
    ubuf_printf(h, "ratelimit-limit: %ld\r\n", j->rl.limit);
  if (j->rl.remaining >= 0)
    ubuf_printf(h, "ratelimit-remaining: %ld\r\n", j->rl.remaining);
  if (j->rl.reset >= 0)
    ubuf_printf(h, "ratelimit-reset: %ld\r\n", j->rl.reset);
}

static void job_finish(struct job *j, int status, struct jv *body, const char *extra) {
  struct ubuf h;
  ubuf_init(&h, 1024);
  job_ratelimit_headers(j, &h);
  if (extra != NULL)
    ubuf_puts(&h, extra);

  j->req->log_calls = (int)(j->cur + (j->cur < j->plan.n));
  j->req->log_retries = j->retries;
  ucrm_respond_json(j->req, status, body, ubuf_cstr(&h));
  ubuf_free(&h);
  job_free(j);
}

static void job_answer_raw(struct job *j) {
  struct ubuf h;
  ubuf_init(&h, 1024);
  job_ratelimit_headers(j, &h);
  j->req->log_calls = (int)j->plan.n;
  j->req->log_retries = j->retries;

  if (j->plan.n == 1 && j->relayed) {
    relay_raw_end(&j->relay);
    ubuf_free(&h);
    job_free(j);
    return;
  }
  if (j->plan.n == 1) {
    /* One call: its status, Content-Type and bytes as the provider sent them. */
    const char *ct = j->call.content_type[0] ? j->call.content_type : NULL;
    srv_respond(j->req, (int)j->statuses[0], ct, ubuf_cstr(&h), ubuf_cstr(&j->call.resp),
                j->call.resp.len);
    ubuf_free(&h);
    job_free(j);
    return;
  }

  struct jv *list = jv_new(JV_ARRAY);
  for (size_t i = 0; list != NULL && i < j->plan.n; i++) {
    struct jv *o = jv_new(JV_OBJECT);
    if (o == NULL || jv_obj_set(o, "status", jv_new_int(j->statuses[i])) != 0 ||
        jv_obj_set(o, "body", j->replies[i] ? jv_copy(j->replies[i]) : jv_new(JV_NULL)) != 0 ||
        jv_arr_push(list, o) != 0) {
      jv_free(list);
      list = NULL;
    }
  }
  ucrm_respond_json(j->req, 201, list, ubuf_cstr(&h));
  ubuf_free(&h);
  job_free(j);
}

static void job_answer_success(struct job *j) {
  struct jv *body = NULL;
  switch (j->q.format) {
  case UCRM_FMT_RAW:
    job_answer_raw(j);
    return;
  case UCRM_FMT_NORMALIZED:
    body = ucrm_body_normalized(&j->a, j->results, j->nresults);
    break;
  default:
    body = ucrm_body_unified(&j->a, &j->plan, j->replies);
    break;
  }
  ucrm_respond_shape(body, &j->q);
  job_finish(j, 201, body, NULL);
}

/* ---- stream format ---- */

static void job_stream_head(struct job *j) {
  struct ubuf h;
  ubuf_init(&h, 1024);
  job_ratelimit_headers(j, &h);
  relay_stream_begin(&j->relay, ubuf_cstr(&h));
  ubuf_free(&h);
}

/* The current call's line: closes a relayed one, or writes it whole from the held reply. */
static void job_stream_line(struct job *j, const char *status) {
  job_stream_head(j);
  const char *error = strcmp(status, "applied") != 0 ? j->verdict.message : NULL;
  if (j->relay.line_open) {
    relay_line_close(&j->relay, status, error);
    return;
  }
  relay_line(&j->relay, &j->plan.calls[j->cur], status, j->statuses[j->cur], j->replies[j->cur]);
}

static void job_stream_end(struct job *j, const char *status, const char *error) {
  j->req->log_calls = (int)(j->cur + (j->cur < j->plan.n));
  j->req->log_retries = j->retries;
  relay_summary(&j->relay, j->results, j->nresults, status, error);
  job_free(j);
}

/*
 * Body bytes of a call whose answer is relayed. Error bodies are small and kept whole for the
 * verdict; a 2xx body goes to the client as it comes, unless the client is behind, in which
 * case curl holds the bytes and stops reading until the client has caught up.
 */
static size_t job_on_data(struct up_call *c, const char *p, size_t n) {
  struct job *j = c->data;
  const struct ucrm_call *call = &j->plan.calls[j->cur];
  long status = up_call_status(c);
  if (status < 200 || status >= 300)
    return ubuf_append(&c->resp, p, n) == 0 ? n : 0;

  if (relay_backpressured(&j->relay)) {
    j->paused = 1;
    return UP_DATA_PAUSE;
  }

  if (!j->relayed) {
    j->relayed = 1;
    if (j->q.format == UCRM_FMT_RAW) {
      struct ubuf h;
      ubuf_init(&h, 1024);
      job_ratelimit_headers(j, &h);
      relay_raw_begin(&j->relay, (int)status, c->content_type[0] ? c->content_type : NULL,
                      ubuf_cstr(&h));
      ubuf_free(&h);
    } else {
      job_stream_head(j);
      if (relay_line_open(&j->relay, call, status) != 0)
        return 0;
    }
  }

  /* Bodies judged by their content keep a bounded copy; past it the verdict sees none. */
  if (call->reply_checked && ubuf_append(&c->resp, p, n) != 0) {
    ubuf_free(&c->resp);
    c->resp.max = 0;
  }
  if (j->q.format == UCRM_FMT_RAW)
    relay_raw_data(&j->relay, p, n);
  else
    relay_line_data(&j->relay, p, n);
  return n;
}

static void job_on_client_drained(void *data) {
  struct job *j = data;
  if (!j->paused)
    return;
  j->paused = 0;
  up_call_resume(&j->call);
}

/* ---- call outcomes ---- */

static size_t job_first_result(const struct job *j, size_t call) {
  size_t at = 0;
  for (size_t i = 0; i < call; i++)
    at += j->plan.calls[i].nlinks;
  return at;
}

static void job_mark_call(struct job *j, int ok) {
  const struct ucrm_call *c = &j->plan.calls[j->cur];
  size_t at = job_first_result(j, j->cur);

  for (size_t i = 0; i < c->nlinks; i++) {
    struct ucrm_result *r = &j->results[at + i];
    int applied = j->verdict.per_link ? j->link_ok[i] : ok;
    r->status = applied ? UCRM_LINK_APPLIED : UCRM_LINK_FAILED;
    r->remote_status = j->statuses[j->cur];
    r->error = applied ? NULL : j->verdict.message;
  }
}

static void job_fail(struct job *j, int status, const char *message, int remote) {
  const char *extra = NULL;
  char retry[64];
  if (status == 429) {
    long ms = ucrm_retry_after_ms(j->call.retry_after, (long)time(NULL));
    snprintf(retry, sizeof(retry), "Retry-After: %ld\r\n", ms > 0 ? (ms + 999) / 1000 : 1);
    extra = retry;
  }

  if (j->relay.started && j->q.format == UCRM_FMT_STREAM) {
    job_stream_line(j, "failed");
    int any = 0;
    for (size_t i = 0; i < j->nresults; i++)
      any |= j->results[i].status == UCRM_LINK_APPLIED;
    job_stream_end(j, any ? "partial" : "failed", message);
    return;
  }

  int several = j->plan.n > 1 || j->nresults > 1;
  struct jv *body;
  if (remote) {
    struct jv *raw =
        ucrm_reply_value(j->replies[j->cur], ubuf_cstr(&j->call.resp), j->call.resp.len);
    body = ucrm_body_remote_error(status, message, raw, j->results, j->nresults, several);
    jv_free(raw);
  } else {
    body = ucrm_body_remote_error(status, message, NULL, j->results, j->nresults, several);
  }
  job_finish(j, status, body, extra);
}

static void job_call_succeeded(struct job *j) {
  job_mark_call(j, 1);
  if (j->q.format == UCRM_FMT_STREAM)
    job_stream_line(j, "applied");

  j->cur++;
  j->attempt = 0;
  if (j->cur < j->plan.n) {
    job_start_call(j);
    return;
  }

  if (j->q.format == UCRM_FMT_STREAM)
    job_stream_end(j, "applied", NULL);
  else
    job_answer_success(j);
}

static void job_on_retry_timer(uv_timer_t *t) {
  struct job *j = t->data;
  j->waiting = 0;
  job_start_call(j);
}

/* Full jitter: a random wait up to base * 2^attempt, capped. */
static long job_backoff_ms(int attempt) {
  long cap = JOB_BACKOFF_BASE_MS << (attempt < 5 ? attempt : 5);
  if (cap > JOB_BACKOFF_MAX_MS)
    cap = JOB_BACKOFF_MAX_MS;
  return cap / 2 + rand() % (cap / 2 + 1);
}

/* Schedules another try of the current call if the budget and the deadline allow. */
static int job_retry(struct job *j) {
  if (j->attempt >= j->cfg->upstream.max_retries)
    return 0;

  long wait = ucrm_retry_after_ms(j->call.retry_after, (long)time(NULL));
  if (wait < 0)
    wait = job_backoff_ms(j->attempt);
  uint64_t now = uv_now(j->app->loop);
  if (now + (uint64_t)wait + 1 >= j->deadline)
    return 0;

  j->attempt++;
  j->retries++;
  j->waiting = 1;
  um_retry(j->acct->provider->name);
  ulog(ULOG_INFO, "pipeline",
       "req_id=%s provider=%s msg=\"retrying provider call\" "
       "status=%ld attempt=%d wait_ms=%ld",
       j->req->request_id, j->acct->provider->name, j->call.status, j->attempt, wait);
  uv_timer_start(&j->timer, job_on_retry_timer, (uint64_t)wait, 0);
  return 1;
}

static void job_transport_failed(struct job *j) {
  CURLcode rc = j->call.result;
  int timed_out = rc == CURLE_OPERATION_TIMEDOUT;

  /* Raw bytes already relayed cannot be taken back: cut the response so it shows. */
  if (j->relayed && j->q.format == UCRM_FMT_RAW) {
    ulog(ULOG_WARN, "pipeline",
         "req_id=%s provider=%s msg=\"relayed body broke off\" "
         "curl=%d",
         j->req->request_id, j->acct->provider->name, (int)rc);
    srv_req_abort(j->req);
    job_free(j);
    return;
  }

  /* A response over our cap will be as large next time; anything else may pass on a retry,
   * unless part of it already reached the client. */
  if (rc != CURLE_WRITE_ERROR && !j->relayed && job_retry(j))
    return;

  /* Too large to hold, but answered 2xx: the write happened and the results must say so,
   * even though the request fails for want of a reply to show. */
  long st = j->call.status;
  int applied = rc == CURLE_WRITE_ERROR && st >= 200 && st < 300 && !j->relay.line_open;

  char msg[256];
  if (rc == CURLE_WRITE_ERROR)
    snprintf(msg, sizeof(msg), "%s sent a response larger than %d bytes%s", j->acct->provider->name,
             JOB_REPLY_MAX, applied ? " after applying the write" : "");
  else
    snprintf(msg, sizeof(msg), "could not complete the call to %s: %s", j->acct->provider->name,
             curl_easy_strerror(rc));
  snprintf(j->verdict.message, sizeof(j->verdict.message), "%s", msg);
  if (applied)
    j->statuses[j->cur] = st;
  job_mark_call(j, applied);
  job_fail(j, timed_out ? 504 : 502, msg, 0);
}

static int job_is_json(const struct up_call *c) {
  return c->resp.len > 0 && (c->content_type[0] == '\0' || strstr(c->content_type, "json"));
}

static void job_release_slot(struct job *j) {
  if (!j->has_slot)
    return;
  j->has_slot = 0;
  ucrm_gate_exit(j->acct);
}

/* Metrics and the debug line for a finished call; gives the account's slot back. */
static void job_record_call(struct job *j, const struct up_call *c) {
  double secs = (double)(uv_now(j->app->loop) - j->call_started_ms) / 1000.0;
  const char *method = j->plan.calls[j->cur].method;
  um_provider_call(j->acct->provider->name, method, c->result == CURLE_OK ? c->status : 0, secs);
  job_release_slot(j);
  ulog(ULOG_DEBUG, "upstream",
       "req_id=%s provider=%s method=%s status=%ld curl=%d "
       "new_connections=%ld",
       j->req->request_id, j->acct->provider->name, method, c->status, (int)c->result,
       c->num_connects);
}

/* Keeps the call's reply: parsed when it is JSON, else as its text rather than lost. */
static void job_keep_reply(struct job *j, const struct up_call *c) {
  struct jv **slot = &j->replies[j->cur];
  jv_free(*slot);
  *slot = NULL;
  if (job_is_json(c)) {
    char jerr[64];
    jv_parse_lenient(c->resp.data, c->resp.len, JV_MAX_DEPTH, slot, jerr, sizeof(jerr));
  }
  if (*slot == NULL && c->resp.len > 0)
    *slot = jv_new_string_utf8(c->resp.data, c->resp.len);
}

/* The token expired: retry with a newer one, or join the account's refresh. 1 if handled. */
static int job_try_refresh(struct job *j) {
  if (!j->verdict.refresh_token || j->refreshed || !ucrm_refresh_possible(j->acct))
    return 0;

  j->refreshed = 1;
  /* A refresh finished while this call was out: its 401 was for the old token. */
  if (ucrm_refresh_generation(j->acct) != j->token_gen) {
    job_start_call(j);
    return 1;
  }
  return ucrm_refresh_join(j->app->up, j->acct, &j->refresh) == 0;
}

static void job_on_done(struct up_call *c) {
  struct job *j = c->data;
  job_record_call(j, c);
  j->paused = 0;

  if (c->result != CURLE_OK) {
    job_transport_failed(j);
    return;
  }

  j->statuses[j->cur] = c->status;
  job_keep_reply(j, c);
  memset(j->link_ok, 1, j->plan.calls[j->cur].nlinks);
  j->verdict.link_ok = j->link_ok;
  j->acct->provider->verdict(&j->plan.calls[j->cur], c->status, j->replies[j->cur], &j->verdict);

  if (j->verdict.ok) {
    job_call_succeeded(j);
    return;
  }
  if (job_try_refresh(j))
    return;
  if (j->verdict.retryable && job_retry(j))
    return;

  job_mark_call(j, 0);
  job_fail(j, j->verdict.status, j->verdict.message, 1);
}

static void job_on_header(struct up_call *c, const char *name, const char *value) {
  struct job *j = c->data;
  if (j->acct->provider->ratelimit_header != NULL)
    j->acct->provider->ratelimit_header(name, value, &j->rl);
}

/*
 * The header lines an account sends on every call, built once per access token rather than
 * once per call. Lists replaced after a token refresh stay alive until the config goes away,
 * since a call still in flight may point at one.
 */
struct acct_headers {
  struct curl_slist *lists[8]; /* [0] is current; older ones follow */
  long gen;                    /* the refresh generation the current list was built for */
};

static void acct_headers_free(void *p) {
  struct acct_headers *h = p;
  for (size_t i = 0; i < UCRM_ARRAY_LEN(h->lists); i++)
    curl_slist_free_all(h->lists[i]);
  free(h);
}

static struct curl_slist *acct_headers_build(const struct ucrm_account *acct) {
  struct ubuf line;
  ubuf_init(&line, 8192);
  int rc = acct->provider->auth_header(acct, &line);
  struct curl_slist *l = rc == 0 ? curl_slist_append(NULL, ubuf_cstr(&line)) : NULL;
  ubuf_free(&line);

  const char *fixed[] = {"Content-Type: application/json", "Accept: application/json", "Expect:"};
  for (size_t i = 0; l != NULL && i < UCRM_ARRAY_LEN(fixed); i++) {
    struct curl_slist *n = curl_slist_append(l, fixed[i]);
    if (n == NULL)
      curl_slist_free_all(l);
    l = n;
  }
  return l;
}

static struct curl_slist *acct_headers_get(struct ucrm_account *acct) {
  struct acct_headers *h = acct->headers;
  if (h == NULL) {
    h = acct->headers = calloc(1, sizeof(*h));
    acct->headers_free = acct_headers_free;
    if (h == NULL)
      return NULL;
  }

  long gen = ucrm_refresh_generation(acct);
  if (h->lists[0] != NULL && h->gen == gen)
    return h->lists[0];

  struct curl_slist *fresh = acct_headers_build(acct);
  if (fresh == NULL)
    return NULL;
  size_t last = UCRM_ARRAY_LEN(h->lists) - 1;
  if (h->lists[last] != NULL) {
    /* Eight refreshes while one call stayed out: the oldest list is long unused by now. */
    curl_slist_free_all(h->lists[last]);
  }
  memmove(&h->lists[1], &h->lists[0], last * sizeof(h->lists[0]));
  h->lists[0] = fresh;
  h->gen = gen;
  return fresh;
}

/* The call's headers: the request id line in front of the account's shared lines. */
static int job_headers(struct job *j) {
  struct curl_slist *shared = acct_headers_get(j->acct);
  if (shared == NULL)
    return UCRM_ENOMEM;
  static const char name[] = "X-Request-Id: ";
  size_t n = strnlen(j->req->request_id, sizeof(j->rid_line) - sizeof(name));
  memcpy(j->rid_line, name, sizeof(name) - 1);
  memcpy(j->rid_line + sizeof(name) - 1, j->req->request_id, n);
  j->rid_line[sizeof(name) - 1 + n] = '\0';
  j->rid_node.data = j->rid_line;
  j->rid_node.next = shared;
  return 0;
}

/* The account's token refresh ended: try the call again with the new token, or give up. */
static void job_on_refreshed(void *data, int ok) {
  struct job *j = data;
  if (ok) {
    job_start_call(j);
    return;
  }
  if (j->statuses[j->cur] == 0) {
    /* The request was only waiting for someone else's refresh and never got an answer. */
    snprintf(j->verdict.message, sizeof(j->verdict.message), "token refresh failed");
    job_mark_call(j, 0);
    job_fail(j, 401, "the provider token expired and could not be refreshed", 0);
    return;
  }
  job_mark_call(j, 0);
  job_fail(j, 401, "the provider token expired and could not be refreshed", 1);
}

/* A slot of the account was handed to this request, which was waiting in the queue. */
static void job_on_slot(void *data) {
  struct job *j = data;
  uv_timer_stop(&j->timer);
  j->has_slot = 1;
  job_start_call(j);
}

static void job_on_queue_timeout(uv_timer_t *t) {
  struct job *j = t->data;
  ucrm_gate_leave(j->acct, &j->gate);
  snprintf(j->verdict.message, sizeof(j->verdict.message), "waited too long for a slot");
  job_fail(j, 504, "the request deadline passed while waiting for the account's turn", 0);
}

/* Takes one of the account's in-flight slots; returns 0 when the call may start now. */
static int job_take_slot(struct job *j) {
  if (j->has_slot)
    return 0;

  /* Only a request that has written nothing yet may be turned away. */
  int fresh = j->cur == 0 && j->attempt == 0 && !j->refreshed;
  int g = ucrm_gate_enter(j->acct, &j->cfg->upstream, &j->gate, fresh);
  if (g == UCRM_GATE_OPEN) {
    j->has_slot = 1;
    return 0;
  }
  if (g == UCRM_GATE_QUEUED) {
    uint64_t now = uv_now(j->app->loop);
    uv_timer_start(&j->timer, job_on_queue_timeout, j->deadline > now ? j->deadline - now : 0, 0);
    return 1;
  }

  j->req->log_calls = 0;
  ucrm_respond_error(j->req, 429,
                     "too many requests are waiting for this integrated account; "
                     "retry shortly",
                     "Retry-After: 1\r\n");
  job_free(j);
  return 1;
}

static void job_start_call(struct job *j) {
  const struct ucrm_call *call = &j->plan.calls[j->cur];
  uint64_t now = uv_now(j->app->loop);

  /* A refresh is under way for this account: a call now would only carry the old token. */
  if (ucrm_refresh_busy(j->acct) && ucrm_refresh_join(j->app->up, j->acct, &j->refresh) == 0)
    return;

  if (now >= j->deadline) {
    snprintf(j->verdict.message, sizeof(j->verdict.message), "request deadline passed");
    job_fail(j, 504, "the request deadline passed before every write was made", 0);
    return;
  }
  if (job_take_slot(j) != 0)
    return;

  ubuf_reset(&j->url);
  int rc = ubuf_puts(&j->url, j->acct->base_url);
  rc = rc != 0 ? rc : ubuf_puts(&j->url, call->path);
  if (rc == 0 && j->q.remote_qs != NULL) {
    rc = ubuf_putc(&j->url, '?');
    rc = rc != 0 ? rc : ubuf_puts(&j->url, j->q.remote_qs);
  }
  rc = rc != 0 ? rc : job_headers(j);

  j->token_gen = ucrm_refresh_generation(j->acct);
  j->relaying = j->q.format == UCRM_FMT_STREAM ||
                (j->q.format == UCRM_FMT_RAW && j->plan.n == 1 && !call->reply_checked);
  j->relayed = 0;
  j->call.on_data = j->relaying ? job_on_data : NULL;
  j->call.resp.max = j->relaying ? JOB_VERDICT_MAX : JOB_REPLY_MAX;
  long left = (long)(j->deadline - now);
  j->call.method = call->method;
  j->call.url = ubuf_cstr(&j->url);
  j->call.headers = &j->rid_node;
  j->call.body = call->body;
  j->call.body_len = call->body_len;
  j->call.timeout_ms = left < j->cfg->upstream.timeout_ms ? left : j->cfg->upstream.timeout_ms;
  j->call_started_ms = now;
  rc = rc != 0 ? rc : up_call_start(j->app->up, &j->call);
  if (rc != 0) {
    job_release_slot(j);
    job_fail(j, 500, "could not start the provider call", 0);
  }
}

/* ---- request entry ---- */

static int job_alloc_results(struct job *j) {
  size_t links = 0, maxlinks = 0;
  for (size_t i = 0; i < j->plan.n; i++) {
    links += j->plan.calls[i].nlinks;
    if (j->plan.calls[i].nlinks > maxlinks)
      maxlinks = j->plan.calls[i].nlinks;
  }

  j->replies = calloc(j->plan.n, sizeof(*j->replies));
  j->statuses = calloc(j->plan.n, sizeof(*j->statuses));
  j->results = calloc(links ? links : 1, sizeof(*j->results));
  j->link_ok = calloc(maxlinks ? maxlinks : 1, 1);
  if (!j->replies || !j->statuses || !j->results || !j->link_ok)
    return UCRM_ENOMEM;

  size_t at = 0;
  for (size_t i = 0; i < j->plan.n; i++) {
    for (size_t k = 0; k < j->plan.calls[i].nlinks; k++)
      j->results[at++].link = j->plan.calls[i].links[k];
  }
  j->nresults = links;
  return 0;
}

/* Validates everything that needs no provider call; answers and returns nonzero on failure. */
static int job_prepare(struct job *j, struct srv_req *r) {
  struct ucrm_err err = {0};

  if (ucrm_query_parse(r->query, r->query_len, &j->q, &err) != 0)
    goto fail;
  r->log_format = ucrm_format_name(j->q.format);
  if (j->q.account_id == NULL) {
    ucrm_err_set(&err, 400, "integrated_account_id is required");
    goto fail;
  }
  if (!ucrm_is_uuid(j->q.account_id, strlen(j->q.account_id))) {
    ucrm_err_set(&err, 400, "integrated_account_id must be a UUID");
    goto fail;
  }
  j->acct = ucrm_config_account(j->cfg, j->q.account_id);
  if (j->acct == NULL) {
    ucrm_err_set(&err, 404, "integrated_account_id %s is not configured", j->q.account_id);
    goto fail;
  }
  r->log_provider = j->acct->provider->name;

  if (ucrm_assoc_parse(r->body, r->body_len, &j->a, &err) != 0)
    goto fail;
  if (!(j->acct->provider->entities >> j->a.entity & 1u)) {
    ucrm_err_set(&err, 400, "unsupported_association: %s does not support entity %s",
                 j->acct->provider->name, ucrm_entity_name(j->a.entity));
    goto fail;
  }
  if (j->acct->provider->plan(&j->a, j->acct, &j->plan, &err) != 0) {
    if (j->plan.refusal[0] != '\0')
      ucrm_err_set(&err, 400, "%s", j->plan.refusal);
    else if (err.status == 0)
      ucrm_err_set(&err, 500, "could not plan the provider calls");
    goto fail;
  }
  if (job_alloc_results(j) != 0) {
    ucrm_err_set(&err, 500, "out of memory");
    goto fail;
  }
  return 0;

fail:
  ucrm_respond_error(r, err.status ? err.status : 400, err.msg, NULL);
  return -1;
}

static void app_associations(struct ucrm_app *app, struct srv_req *r) {
  struct job *j = job_get(app);
  if (j == NULL) {
    ucrm_respond_error(r, 500, "out of memory", NULL);
    return;
  }
  j->app = app;
  j->cfg = app->cfg;
  j->cfg->refs++;
  j->req = r;
  j->rl = (struct ucrm_ratelimit){-1, -1, -1};
  j->deadline = r->start_ms + (uint64_t)j->cfg->limits.request_timeout_ms;
  j->url.max = 16384; /* a spare job's buffers keep their memory (job_get) */
  j->call.resp.max = JOB_REPLY_MAX;
  j->call.on_done = job_on_done;
  j->call.on_header = job_on_header;
  j->call.data = j;
  j->refresh.cb = job_on_refreshed;
  j->refresh.data = j;
  j->gate.cb = job_on_slot;
  j->gate.data = j;
  uv_timer_init(app->loop, &j->timer);
  j->timer.data = j;
  app->jobs++;

  if (job_prepare(j, r) != 0) {
    job_free(j);
    return;
  }

  if (j->q.dry_run) {
    struct jv *plan = ucrm_body_plan(j->acct, &j->plan, j->q.remote_qs);
    j->req->log_calls = 0;
    ucrm_respond_json(r, 200, plan, NULL);
    job_free(j);
    return;
  }

  srv_req_on_abort(r, job_abort, j);
  srv_req_on_drain(r, job_on_client_drained, j);
  relay_init(&j->relay, r, &j->q, &j->a);
  job_start_call(j);
}

static void app_health(struct ucrm_app *app, struct srv_req *r) {
  if (srv_draining(app->srv)) {
    ucrm_respond_error(r, 503, "draining", "Connection: close\r\n");
    return;
  }
  static const char ok[] = "{\"status\":\"ok\"}";
  srv_respond(r, 200, "application/json", NULL, ok, sizeof(ok) - 1);
}

static void app_metrics(struct ucrm_app *app, struct srv_req *r) {
  struct ubuf out;
  ubuf_init(&out, 1024 * 1024);
  if (um_render(&out, srv_open_connections(app->srv)) != 0) {
    ubuf_free(&out);
    ucrm_respond_error(r, 500, "could not render the metrics", NULL);
    return;
  }
  srv_respond(r, 200, "text/plain; version=0.0.4", NULL, ubuf_cstr(&out), out.len);
  ubuf_free(&out);
}

static const char *app_route(const char *path) {
  if (strcmp(path, "/unified/crm/associations") == 0)
    return "associations";
  if (strcmp(path, "/healthz") == 0)
    return "healthz";
  if (strcmp(path, "/metrics") == 0)
    return "metrics";
  return "other";
}

void ucrm_app_on_complete(struct srv_req *r, void *data) {
  um_request(app_route(r->path), r->log_format != NULL ? r->log_format : "none", r->status,
             (double)srv_req_age_ms(r) / 1000.0);
}

void ucrm_app_on_request(struct srv_req *r, void *data) {
  struct ucrm_app *app = data;

  if (strcmp(r->path, "/unified/crm/associations") == 0) {
    if (r->method == SRV_POST)
      app_associations(app, r);
    else
      ucrm_respond_error(r, 405, "use POST", "Allow: POST\r\n");
  } else if (strcmp(r->path, "/healthz") == 0) {
    if (r->method == SRV_GET)
      app_health(app, r);
    else
      ucrm_respond_error(r, 405, "use GET", "Allow: GET\r\n");
  } else if (strcmp(r->path, "/metrics") == 0) {
    if (r->method == SRV_GET)
      app_metrics(app, r);
    else
      ucrm_respond_error(r, 405, "use GET", "Allow: GET\r\n");
  } else {
    ucrm_respond_error(r, 404, "no such route", NULL);
  }
}

void ucrm_app_set_config(struct ucrm_app *app, struct ucrm_config *cfg) {
  struct ucrm_config *old = app->cfg;
  cfg->refs++;
  app->cfg = cfg;
  if (old != NULL)
    job_config_unref(old);
}

void ucrm_app_release(struct ucrm_app *app) {
  while (app->spare != NULL) {
    struct job *j = app->spare;
    app->spare = j->next_spare;
    ubuf_free(&j->url);
    ubuf_free(&j->call.resp);
    free(j);
  }
  app->nspare = 0;
  if (app->cfg != NULL)
    job_config_unref(app->cfg);
  app->cfg = NULL;
}

long ucrm_retry_after_ms(const char *value, long now_s) {
  if (value == NULL || value[0] == '\0')
    return -1;

  /* Seconds; a wait beyond a day (or beyond a long) means "not within this request". */
  char *end;
  errno = 0;
  long secs = strtol(value, &end, 10);
  if (end != value && *end == '\0' && secs >= 0)
    return errno == ERANGE || secs >= 86400 ? 86400L * 1000 : secs * 1000;

  /* An HTTP date, as Attio sends: "Tue, 23 May 2023 14:42:01 GMT". */
  struct tm tm = {0};
  const char *rest = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (rest == NULL || *rest != '\0')
    return -1;
  long at = (long)timegm(&tm);
  return at <= now_s ? 0 : (at - now_s < 86400 ? (at - now_s) * 1000 : -1);
}
