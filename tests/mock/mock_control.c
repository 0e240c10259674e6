/*
 * mock_control.c: the /_mock/ control API that tests use to read the call log and the stored
 * state, inject faults, and steer the Salesforce token and failing ids. Control calls are
 * never recorded and never faulted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

/* ---- context lifetime ---- */

static void mock_fault_free(struct mock_fault *f) {
  free(f->method);
  free(f->path_prefix);
  free(f->body);
  for (size_t i = 0; i < f->nheaders; i++) {
    free(f->headers[i].name);
    free(f->headers[i].value);
  }
  free(f->headers);
  memset(f, 0, sizeof(*f));
}

static void mock_faults_clear(struct mock_ctx *ctx) {
  for (size_t i = 0; i < ctx->nfaults; i++)
    mock_fault_free(&ctx->faults[i]);
  free(ctx->faults);
  ctx->faults = NULL;
  ctx->nfaults = 0;
}

static void mock_fail_ids_clear(struct mock_ctx *ctx) {
  for (size_t i = 0; i < ctx->nfail_ids; i++)
    free(ctx->fail_ids[i]);
  free(ctx->fail_ids);
  ctx->fail_ids = NULL;
  ctx->nfail_ids = 0;
}

void mock_ctx_reset(struct mock_ctx *ctx) {
  mock_calls_clear(&ctx->calls);
  mock_store_clear(&ctx->store);
  mock_faults_clear(ctx);
  mock_fail_ids_clear(ctx);
  snprintf(ctx->sf_current, sizeof(ctx->sf_current), "%s", ctx->creds.sf_token);
  ctx->sf_expired = 0;
  ctx->sf_refreshes = 0;
  ctx->pd_calls = 0;
  ctx->close_calls = 0;
  ctx->sf_calls = 0;
}

void mock_ctx_free(struct mock_ctx *ctx) {
  struct mock_creds *c = &ctx->creds;

  mock_ctx_reset(ctx);
  free(c->pd_token);
  free(c->pd_oauth);
  free(c->close_basic);
  free(c->close_oauth);
  free(c->attio_token);
  free(c->sf_token);
  free(c->sf_refresh);
  free(c->sf_client_id);
  free(c->sf_client_secret);
  memset(c, 0, sizeof(*c));
  for (size_t i = 0; i < ctx->ntmpls; i++)
    yajl_tree_free(ctx->tmpls[i].parsed);
  ctx->ntmpls = 0;
}

int mock_sf_failing(const struct mock_ctx *ctx, const char *id) {
  for (size_t i = 0; i < ctx->nfail_ids; i++) {
    if (strcmp(ctx->fail_ids[i], id) == 0)
      return 1;
  }
  return 0;
}

/* ---- answers ---- */

static void mock_ctl_error(struct mock_resp *resp, int status, const char *msg) {
  yajl_gen g = mock_gen_new();

  yajl_gen_map_open(g);
  mock_gen_str(g, "error");
  mock_gen_str(g, msg);
  yajl_gen_map_close(g);
  resp->status = status;
  mock_buf_reset(&resp->body);
  mock_gen_finish(g, &resp->body);
}

static void mock_ctl_ok(struct mock_resp *resp, const char *count_name, size_t count) {
  resp->status = 200;
  if (count_name == NULL)
    mock_buf_puts(&resp->body, "{\"ok\":true}");
  else
    mock_buf_printf(&resp->body, "{\"ok\":true,\"%s\":%zu}", count_name, count);
}

/* ---- fault rules ---- */

static const char *mock_take_str(yajl_val v, char **dst) {
  if (!YAJL_IS_STRING(v))
    return "must be a string";
  free(*dst);
  *dst = mock_xstrdup(v->u.string);
  return NULL;
}

static const char *mock_take_int(yajl_val v, long long min, long long max, long long *dst) {
  if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < min || YAJL_GET_INTEGER(v) > max)
    return "must be an integer in range";
  *dst = YAJL_GET_INTEGER(v);
  return NULL;
}

/* Header names and values end up verbatim in the response head, so CR and LF are refused. */
static const char *mock_take_headers(yajl_val v, struct mock_fault *f) {
  if (!YAJL_IS_OBJECT(v))
    return "must be an object of strings";
  for (size_t i = 0; i < v->u.object.len; i++) {
    const char *name = v->u.object.keys[i];
    yajl_val val = v->u.object.values[i];

    if (!YAJL_IS_STRING(val) || name[0] == '\0' || strpbrk(name, "\r\n: ") != NULL ||
        strpbrk(val->u.string, "\r\n") != NULL)
      return "must map header names to single-line strings";
    f->headers = mock_xrealloc(f->headers, (f->nheaders + 1) * sizeof(*f->headers));
    f->headers[f->nheaders].name = mock_xstrdup(name);
    f->headers[f->nheaders].value = mock_xstrdup(val->u.string);
    f->nheaders++;
  }
  return NULL;
}

/* "body_hex": the body as hex digits, for bytes a JSON string cannot carry (invalid UTF-8). */
static const char *mock_take_hex(yajl_val v, char **out) {
  if (!YAJL_IS_STRING(v) || strlen(v->u.string) % 2 != 0)
    return "must be a string of hex digit pairs";
  const char *h = v->u.string;
  size_t n = strlen(h) / 2;
  char *b = mock_xrealloc(NULL, n + 1);
  for (size_t i = 0; i < n; i++) {
    unsigned byte;
    if (sscanf(h + 2 * i, "%2x", &byte) != 1 || byte == 0) {
      free(b);
      return "must be hex digit pairs, none of them 00";
    }
    b[i] = (char)byte;
  }
  b[n] = '\0';
  free(*out);
  *out = b;
  return NULL;
}

static const char *mock_fault_number(const char *key, yajl_val v, struct mock_fault *f) {
  long long n = 0;
  const char *err;

  if (strcmp(key, "status") == 0) {
    err = mock_take_int(v, 200, 599, &n);
    f->status = (int)n;
  } else if (strcmp(key, "delay_ms") == 0) {
    err = mock_take_int(v, 0, 3600000, &n);
    f->delay_ms = (uint64_t)n;
  } else if (strcmp(key, "times") == 0) {
    err = mock_take_int(v, -1, 1000000000, &n);
    f->times = n;
  } else if (strcmp(key, "tail_delay_ms") == 0) {
    err = mock_take_int(v, 0, 3600000, &n);
    f->tail_delay_ms = (uint64_t)n;
  } else {
    err = mock_take_int(v, 0, (long long)1 << 40, &n);
    f->body_bytes = (uint64_t)n;
    f->has_body_bytes = 1;
  }
  return err;
}

static const char *mock_fault_member(const char *key, yajl_val v, struct mock_fault *f) {
  if (strcmp(key, "method") == 0)
    return mock_take_str(v, &f->method);
  if (strcmp(key, "path_prefix") == 0)
    return mock_take_str(v, &f->path_prefix);
  if (strcmp(key, "body") == 0)
    return mock_take_str(v, &f->body);
  if (strcmp(key, "body_hex") == 0)
    return mock_take_hex(v, &f->body);
  if (strcmp(key, "headers") == 0)
    return mock_take_headers(v, f);
  if (strcmp(key, "close") == 0) {
    if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
      return "must be a boolean";
    f->close = YAJL_IS_TRUE(v);
    return NULL;
  }
  if (strcmp(key, "status") == 0 || strcmp(key, "delay_ms") == 0 || strcmp(key, "times") == 0 ||
      strcmp(key, "body_bytes") == 0 || strcmp(key, "tail_delay_ms") == 0)
    return mock_fault_number(key, v, f);
  return "is not a known fault key";
}

/* Parses one rule into f (zeroed by the caller); on error writes a message naming the key. */
static int mock_fault_parse(yajl_val v, struct mock_fault *f, char *err, size_t errlen) {
  f->times = 1;
  if (!YAJL_IS_OBJECT(v)) {
    snprintf(err, errlen, "a fault rule must be an object");
    return -1;
  }
  for (size_t i = 0; i < v->u.object.len; i++) {
    const char *why = mock_fault_member(v->u.object.keys[i], v->u.object.values[i], f);

    if (why != NULL) {
      snprintf(err, errlen, "fault key \"%.64s\" %s", v->u.object.keys[i], why);
      return -1;
    }
  }
  return 0;
}

/* Either every rule of the request is appended or none is. */
static void mock_ctl_faults(struct mock_ctx *ctx, const struct mock_req *req,
                            struct mock_resp *resp) {
  char err[160];
  yajl_val doc = mock_json_parse(req->body.data, req->body.len);
  int is_array = doc != NULL && YAJL_IS_ARRAY(doc);
  size_t n = is_array ? doc->u.array.len : 1;
  struct mock_fault *rules = mock_xmalloc(n * sizeof(*rules));
  size_t done = 0;

  memset(rules, 0, n * sizeof(*rules));
  snprintf(err, sizeof(err), "body must be a JSON object or array of fault rules");
  for (; doc != NULL && done < n; done++) {
    if (mock_fault_parse(is_array ? doc->u.array.values[done] : doc, &rules[done], err,
                         sizeof(err)) != 0)
      break;
  }
  if (doc == NULL || done < n) {
    for (size_t i = 0; i < n; i++)
      mock_fault_free(&rules[i]);
    mock_ctl_error(resp, 400, err);
  } else {
    ctx->faults = mock_xrealloc(ctx->faults, (ctx->nfaults + n) * sizeof(*ctx->faults));
    memcpy(ctx->faults + ctx->nfaults, rules, n * sizeof(*rules));
    ctx->nfaults += n;
    mock_ctl_ok(resp, "faults", ctx->nfaults);
  }
  free(rules);
  yajl_tree_free(doc);
}

/* ---- the other control calls ---- */

static void mock_ctl_fail_ids(struct mock_ctx *ctx, const struct mock_req *req,
                              struct mock_resp *resp) {
  yajl_val doc = mock_json_parse(req->body.data, req->body.len);
  int ok = doc != NULL && YAJL_IS_ARRAY(doc);

  for (size_t i = 0; ok && i < doc->u.array.len; i++)
    ok = YAJL_IS_STRING(doc->u.array.values[i]);
  if (!ok) {
    mock_ctl_error(resp, 400, "body must be a JSON array of id strings");
    yajl_tree_free(doc);
    return;
  }
  for (size_t i = 0; i < doc->u.array.len; i++) {
    const char *id = doc->u.array.values[i]->u.string;

    if (mock_sf_failing(ctx, id))
      continue;
    ctx->fail_ids = mock_xrealloc(ctx->fail_ids, (ctx->nfail_ids + 1) * sizeof(char *));
    ctx->fail_ids[ctx->nfail_ids++] = mock_xstrdup(id);
  }
  mock_ctl_ok(resp, "fail_ids", ctx->nfail_ids);
  yajl_tree_free(doc);
}

static void mock_ctl_calls(struct mock_ctx *ctx, const struct mock_req *req,
                           struct mock_resp *resp) {
  char dropped[32];
  yajl_gen g = mock_gen_new();

  (void)req;
  mock_calls_gen(&ctx->calls, g);
  mock_gen_finish(g, &resp->body);
  snprintf(dropped, sizeof(dropped), "%llu", (unsigned long long)ctx->calls.dropped);
  mock_resp_set_header(resp, "x-mock-calls-dropped", dropped);
}

static void mock_ctl_state(struct mock_ctx *ctx, const struct mock_req *req,
                           struct mock_resp *resp) {
  yajl_gen g = mock_gen_new();

  (void)req;
  mock_store_gen(&ctx->store, g);
  mock_gen_finish(g, &resp->body);
}

static void mock_ctl_reset(struct mock_ctx *ctx, const struct mock_req *req,
                           struct mock_resp *resp) {
  (void)req;
  mock_ctx_reset(ctx);
  mock_ctl_ok(resp, NULL, 0);
}

static void mock_ctl_expire(struct mock_ctx *ctx, const struct mock_req *req,
                            struct mock_resp *resp) {
  (void)req;
  ctx->sf_expired = 1;
  mock_ctl_ok(resp, NULL, 0);
}

typedef void (*mock_ctl_fn)(struct mock_ctx *, const struct mock_req *, struct mock_resp *);

struct mock_ctl_route {
  const char *path;
  const char *method;
  mock_ctl_fn fn;
};

static const struct mock_ctl_route mock_ctl_routes[] = {
    {"/_mock/calls", "GET", mock_ctl_calls},
    {"/_mock/state", "GET", mock_ctl_state},
    {"/_mock/reset", "POST", mock_ctl_reset},
    {"/_mock/faults", "POST", mock_ctl_faults},
    {"/_mock/salesforce/fail_ids", "POST", mock_ctl_fail_ids},
    {"/_mock/salesforce/expire_token", "POST", mock_ctl_expire},
};

void mock_control_handle(struct mock_ctx *ctx, const struct mock_req *req, struct mock_resp *resp) {
  for (size_t i = 0; i < sizeof(mock_ctl_routes) / sizeof(mock_ctl_routes[0]); i++) {
    const struct mock_ctl_route *r = &mock_ctl_routes[i];

    if (strcmp(req->path, r->path) != 0)
      continue;
    if (strcmp(req->method, r->method) != 0) {
      mock_ctl_error(resp, 405, "method not allowed");
      mock_resp_set_header(resp, "Allow", r->method);
      return;
    }
    resp->status = 200;
    r->fn(ctx, req, resp);
    return;
  }
  mock_ctl_error(resp, 404, "not found");
}
