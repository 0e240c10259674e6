/*
 * mock_routes.c: the path from a parsed request to a filled response: control API or provider,
 * fault rules, authentication, usage headers, provider error bodies, and the call log.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mock.h"

/* The provider is known from the path alone, as each one has its own URL layout. */
static enum mock_provider mock_provider_of(const char *path) {
  if (mock_starts_with(path, "/v1/") || mock_starts_with(path, "/api/v2/"))
    return MOCK_P_PIPEDRIVE;
  if (mock_starts_with(path, "/api/v1/"))
    return MOCK_P_CLOSE;
  if (mock_starts_with(path, "/v2/"))
    return MOCK_P_ATTIO;
  if (mock_starts_with(path, "/services/"))
    return MOCK_P_SALESFORCE;
  return MOCK_P_NONE;
}

/* ---- provider error bodies ---- */

static void mock_pipedrive_error(int status, struct mock_resp *resp) {
  const char *msg = status == 401   ? "unauthorized access"
                    : status == 404 ? "Not found"
                    : status == 429 ? "Request over limit"
                                    : mock_reason(status);

  resp->status = status;
  mock_buf_printf(&resp->body,
                  "{\"success\":false,\"error\":\"%s\",\"errorCode\":%d,\"error_info\":"
                  "\"Please check developers.pipedrive.com for more information about "
                  "Pipedrive API.\",\"data\":null,\"additional_data\":null}",
                  msg, status);
}

/* Close documents only {"errors","field-errors"} for 400; other shapes follow its client. */
static void mock_close_error(int status, struct mock_resp *resp) {
  resp->status = status;
  if (status == 429) {
    mock_buf_puts(&resp->body, "{\"error\":{\"rate_reset\":2.0,"
                               "\"message\":\"API call count exceeded for this period\"}}");
  } else if (status == 400) {
    mock_buf_puts(&resp->body, "{\"errors\":[\"Bad request.\"],\"field-errors\":{}}");
  } else if (status == 401) {
    mock_buf_puts(&resp->body, "{\"error\":\"The API key or OAuth token is invalid.\"}");
  } else {
    mock_buf_printf(&resp->body, "{\"error\":\"%s\"}", mock_reason(status));
  }
}

static void mock_attio_error(int status, struct mock_resp *resp) {
  const char *type = "invalid_request_error";
  const char *code = "validation_type";

  if (status == 401 || status == 403) {
    type = "auth_error";
    code = status == 401 ? "unauthorized" : "forbidden";
  } else if (status == 404) {
    code = "not_found";
  } else if (status == 409) {
    code = "concurrent_write_conflict";
  } else if (status == 429) {
    type = "rate_limit_error";
    code = "rate_limit_exceeded";
  } else if (status >= 500) {
    type = "api_error";
    code = "internal_server_error";
  }
  resp->status = status;
  mock_buf_printf(&resp->body,
                  "{\"status_code\":%d,\"type\":\"%s\",\"code\":\"%s\",\"message\":\"%s\"}", status,
                  type, code,
                  status == 401 ? "Authentication failed: invalid or missing bearer token."
                                : mock_reason(status));
}

/* Salesforce REST errors are a JSON array of {message, errorCode}. */
static void mock_salesforce_error(int status, struct mock_resp *resp) {
  const char *code = "INVALID_FIELD";
  const char *msg = mock_reason(status);

  if (status == 401) {
    code = "INVALID_SESSION_ID";
    msg = "Session expired or invalid";
  } else if (status == 403 || status == 429) {
    code = "REQUEST_LIMIT_EXCEEDED";
    msg = "TotalRequests Limit exceeded.";
  } else if (status == 404) {
    code = "NOT_FOUND";
    msg = "The requested resource does not exist";
  } else if (status == 503) {
    code = "SERVER_UNAVAILABLE";
  } else if (status >= 500) {
    code = "UNKNOWN_EXCEPTION";
  }
  resp->status = status;
  mock_buf_printf(&resp->body, "[{\"message\":\"%s\",\"errorCode\":\"%s\"}]", msg, code);
}

void mock_error_body(enum mock_provider p, int status, struct mock_resp *resp) {
  mock_buf_reset(&resp->body);
  resp->no_body = 0;
  switch (p) {
  case MOCK_P_PIPEDRIVE:
    mock_pipedrive_error(status, resp);
    break;
  case MOCK_P_CLOSE:
    mock_close_error(status, resp);
    break;
  case MOCK_P_ATTIO:
    mock_attio_error(status, resp);
    break;
  case MOCK_P_SALESFORCE:
    mock_salesforce_error(status, resp);
    break;
  case MOCK_P_NONE:
    resp->status = status;
    mock_buf_printf(&resp->body, "{\"error\":\"%s\"}",
                    status == 404 ? "not found" : mock_reason(status));
    break;
  }
}

/* ---- authentication ---- */

static const char *mock_bearer(const struct mock_req *req) {
  const char *auth = mock_req_header(req, "authorization");

  if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
    return NULL;
  return auth + 7;
}

static int mock_eq(const char *a, const char *b) {
  return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* Compares the auth scheme without case, as RFC 9110 asks, and the credential exactly. */
static int mock_close_authorized(const struct mock_ctx *ctx, const struct mock_req *req) {
  const char *auth = mock_req_header(req, "authorization");

  if (auth != NULL && strncasecmp(auth, "Basic ", 6) == 0)
    return strcmp(auth + 6, ctx->creds.close_basic + 6) == 0;
  return mock_eq(mock_bearer(req), ctx->creds.close_oauth);
}

static int mock_authorized(const struct mock_ctx *ctx, enum mock_provider p,
                           const struct mock_req *req) {
  switch (p) {
  case MOCK_P_PIPEDRIVE:
    return mock_eq(mock_req_header(req, "x-api-token"), ctx->creds.pd_token) ||
           mock_eq(mock_bearer(req), ctx->creds.pd_oauth);
  case MOCK_P_CLOSE:
    return mock_close_authorized(ctx, req);
  case MOCK_P_ATTIO:
    return mock_eq(mock_bearer(req), ctx->creds.attio_token);
  case MOCK_P_SALESFORCE:
    /* The token endpoint is where an expired session goes, so it takes no bearer token. */
    if (strcmp(req->path, "/services/oauth2/token") == 0)
      return 1;
    return !ctx->sf_expired && mock_eq(mock_bearer(req), ctx->sf_current);
  case MOCK_P_NONE:
    break;
  }
  return 1;
}

/* ---- usage headers ---- */

static void mock_count_call(struct mock_ctx *ctx, enum mock_provider p) {
  if (p == MOCK_P_PIPEDRIVE)
    ctx->pd_calls++;
  else if (p == MOCK_P_CLOSE)
    ctx->close_calls++;
  else if (p == MOCK_P_SALESFORCE)
    ctx->sf_calls++;
}

/*
 * Remaining counts down by one per call and wraps, so consecutive calls always see a smaller
 * number (until the wrap) without the mock ever throttling on its own; tests throttle with
 * faults instead.
 */
static void mock_usage_headers(const struct mock_ctx *ctx, enum mock_provider p,
                               struct mock_resp *resp) {
  char v[96];

  if (p == MOCK_P_PIPEDRIVE) {
    snprintf(v, sizeof(v), "%" PRIu64, 79 - (ctx->pd_calls - 1) % 80);
    mock_resp_set_header(resp, "x-ratelimit-limit", "80");
    mock_resp_set_header(resp, "x-ratelimit-remaining", v);
    mock_resp_set_header(resp, "x-ratelimit-reset", "2");
  } else if (p == MOCK_P_CLOSE) {
    snprintf(v, sizeof(v), "limit=20, remaining=%" PRIu64 ", reset=2",
             19 - (ctx->close_calls - 1) % 20);
    mock_resp_set_header(resp, "RateLimit", v);
  } else if (p == MOCK_P_SALESFORCE) {
    snprintf(v, sizeof(v), "api-usage=%" PRIu64 "/15000", ctx->sf_calls);
    mock_resp_set_header(resp, "Sforce-Limit-Info", v);
  }
}

/* ---- faults ---- */

static struct mock_fault *mock_fault_take(struct mock_ctx *ctx, const struct mock_req *req) {
  for (size_t i = 0; i < ctx->nfaults; i++) {
    struct mock_fault *f = &ctx->faults[i];

    if (f->times == 0)
      continue;
    if (f->method != NULL && !mock_strieq(f->method, req->method))
      continue;
    if (f->path_prefix != NULL && !mock_starts_with(req->path, f->path_prefix))
      continue;
    if (f->times > 0)
      f->times--;
    return f;
  }
  return NULL;
}

/* Returns 1 when the fault answers the call, 0 when the normal route must run. */
static int mock_fault_apply(enum mock_provider p, const struct mock_fault *f,
                            struct mock_resp *resp) {
  int status = f->status ? f->status : 200;

  resp->delay_ms = f->delay_ms;
  if (f->close) {
    resp->reset = 1;
    resp->status = 0;
    return 1;
  }
  if (f->has_body_bytes) {
    resp->status = status;
    /* Zero would mean "not streamed"; the smallest generated document is one item anyway. */
    resp->stream_bytes = f->body_bytes > 0 ? f->body_bytes : 1;
    resp->tail_delay_ms = f->tail_delay_ms;
    return 1;
  }
  if (f->status == 0 && f->body == NULL)
    return 0;

  if (f->body != NULL)
    mock_resp_json(resp, status, f->body);
  else if (status >= 400)
    mock_error_body(p, status, resp);
  else
    mock_resp_json(resp, status, "{}");

  /* HTTP forbids a body on these, so a fault that names one gets none. */
  if (status == 204 || status == 304 || status < 200)
    resp->no_body = 1;
  return 1;
}

/* ---- dispatch ---- */

static void mock_route(struct mock_ctx *ctx, enum mock_provider p, const struct mock_req *req,
                       struct mock_resp *resp) {
  if (p == MOCK_P_NONE) {
    mock_error_body(p, 404, resp);
    return;
  }
  if (!mock_authorized(ctx, p, req)) {
    mock_error_body(p, 401, resp);
    return;
  }
  switch (p) {
  case MOCK_P_PIPEDRIVE:
    mock_pipedrive_route(ctx, req, resp);
    break;
  case MOCK_P_CLOSE:
    mock_close_route(ctx, req, resp);
    break;
  case MOCK_P_ATTIO:
    mock_attio_route(ctx, req, resp);
    break;
  case MOCK_P_SALESFORCE:
    mock_salesforce_route(ctx, req, resp);
    break;
  case MOCK_P_NONE:
    break;
  }
}

void mock_handle(struct mock_ctx *ctx, struct mock_req *req, struct mock_resp *resp) {
  if (mock_starts_with(req->path, "/_mock/")) {
    mock_control_handle(ctx, req, resp);
    return;
  }

  enum mock_provider p = mock_provider_of(req->path);
  mock_count_call(ctx, p);

  const struct mock_fault *f = mock_fault_take(ctx, req);
  if (f == NULL || !mock_fault_apply(p, f, resp))
    mock_route(ctx, p, req, resp);

  /* Usage headers first, so a fault's own headers (say RateLimit remaining=0) replace them. */
  mock_usage_headers(ctx, p, resp);
  for (size_t i = 0; f != NULL && i < f->nheaders; i++)
    mock_resp_set_header(resp, f->headers[i].name, f->headers[i].value);

  if (ctx->verbose) {
    mock_log("info", "method=%s path=%s status=%d delay_ms=%" PRIu64, req->method, req->path,
             resp->status, resp->delay_ms);
  }
  mock_calls_record(&ctx->calls, req, resp->status);
}
