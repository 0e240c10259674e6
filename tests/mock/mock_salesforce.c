/*
 * mock_salesforce.c: Salesforce's single-record PATCH, sObject Collections update and the
 * OAuth refresh-token endpoint (reference: providers.md section 2).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mock.h"

/* 15 or 18 alphanumerics; Salesforce answers anything else as a missing resource. */
static int mock_sf_is_id(const char *s) {
  size_t n = strlen(s);

  if (n != 15 && n != 18)
    return 0;
  for (size_t i = 0; i < n; i++) {
    if (!isalnum((unsigned char)s[i]))
      return 0;
  }
  return 1;
}

/* An API version segment such as v62.0. */
static int mock_sf_is_version(const char *s) {
  const char *p = s + 1;

  if (s[0] != 'v' || !isdigit((unsigned char)*p))
    return 0;
  while (isdigit((unsigned char)*p))
    p++;
  if (*p++ != '.' || !isdigit((unsigned char)*p))
    return 0;
  while (isdigit((unsigned char)*p))
    p++;
  return *p == '\0';
}

/* Top-level Salesforce errors: an array of {message, errorCode[, fields]}. */
static void mock_sf_error(struct mock_resp *resp, int status, const char *code, const char *msg,
                          const char *field) {
  yajl_gen g = mock_gen_new();

  yajl_gen_array_open(g);
  yajl_gen_map_open(g);
  mock_gen_str(g, "message");
  mock_gen_str(g, msg);
  mock_gen_str(g, "errorCode");
  mock_gen_str(g, code);
  if (field != NULL) {
    mock_gen_str(g, "fields");
    yajl_gen_array_open(g);
    mock_gen_str(g, field);
    yajl_gen_array_close(g);
  }
  yajl_gen_map_close(g);
  yajl_gen_array_close(g);
  resp->status = status;
  mock_buf_reset(&resp->body);
  mock_gen_finish(g, &resp->body);
}

static void mock_sf_method_not_allowed(const struct mock_req *req, struct mock_resp *resp) {
  char msg[128];

  snprintf(msg, sizeof(msg), "HTTP Method '%s' not allowed. Allowed are PATCH", req->method);
  mock_sf_error(resp, 405, "METHOD_NOT_ALLOWED", msg, NULL);
}

static yajl_val mock_sf_body(const struct mock_req *req, struct mock_resp *resp) {
  yajl_val v = mock_json_parse(req->body.data, req->body.len);

  if (v != NULL && YAJL_IS_OBJECT(v))
    return v;
  yajl_tree_free(v);
  mock_sf_error(resp, 400, "JSON_PARSER_ERROR", "The request body must be a JSON object.", NULL);
  return NULL;
}

static const char *const mock_sf_skip[] = {"attributes", "id", "Id", NULL};

/* ---- PATCH /services/data/vNN.N/sobjects/{type}/{id} ---- */

static void mock_sf_single(struct mock_ctx *ctx, const struct mock_req *req, const char *type,
                           const char *id, struct mock_resp *resp) {
  char key[600];

  if (strcmp(req->method, "PATCH") != 0) {
    mock_sf_method_not_allowed(req, resp);
    return;
  }
  if (!mock_sf_is_id(id)) {
    mock_sf_error(resp, 404, "NOT_FOUND", "The requested resource does not exist", NULL);
    return;
  }

  yajl_val body = mock_sf_body(req, resp);
  if (body == NULL)
    return;
  if (mock_sf_failing(ctx, id)) {
    mock_sf_error(resp, 400, "FIELD_INTEGRITY_EXCEPTION", "Account ID: id value of incorrect type",
                  "AccountId");
  } else {
    snprintf(key, sizeof(key), "salesforce:%s:%s", type, id);
    mock_store_set_all(&ctx->store, key, body, mock_sf_skip);
    resp->status = 204;
    resp->no_body = 1;
  }
  yajl_tree_free(body);
}

/* ---- PATCH /services/data/vNN.N/composite/sobjects ---- */

/* Why one record of a collection fails, before allOrNone is taken into account. */
struct mock_sf_outcome {
  const char *code; /* NULL: success */
  const char *msg;
  const char *field;
};

static struct mock_sf_outcome mock_sf_judge(const struct mock_ctx *ctx, yajl_val rec) {
  yajl_val type = mock_obj_get(mock_obj_get(rec, "attributes"), "type");
  yajl_val id = mock_obj_get(rec, "id");

  if (type == NULL || !YAJL_IS_STRING(type) || id == NULL || !YAJL_IS_STRING(id))
    return (struct mock_sf_outcome){"MISSING_ARGUMENT", "attributes.type and id are required",
                                    NULL};
  if (!mock_sf_is_id(id->u.string))
    return (struct mock_sf_outcome){"MALFORMED_ID", "malformed id", NULL};
  if (mock_sf_failing(ctx, id->u.string))
    return (struct mock_sf_outcome){"FIELD_INTEGRITY_EXCEPTION",
                                    "Account ID: id value of incorrect type", "AccountId"};
  return (struct mock_sf_outcome){NULL, NULL, NULL};
}

static void mock_sf_gen_result(yajl_gen g, yajl_val rec, const struct mock_sf_outcome *o) {
  yajl_val id = mock_obj_get(rec, "id");

  yajl_gen_map_open(g);
  mock_gen_str(g, "id");
  mock_gen_val(g, id != NULL && YAJL_IS_STRING(id) ? id : NULL);
  mock_gen_str(g, "success");
  yajl_gen_bool(g, o->code == NULL);
  mock_gen_str(g, "errors");
  yajl_gen_array_open(g);
  if (o->code != NULL) {
    yajl_gen_map_open(g);
    mock_gen_str(g, "statusCode");
    mock_gen_str(g, o->code);
    mock_gen_str(g, "message");
    mock_gen_str(g, o->msg);
    mock_gen_str(g, "fields");
    yajl_gen_array_open(g);
    if (o->field != NULL)
      mock_gen_str(g, o->field);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
  }
  yajl_gen_array_close(g);
  yajl_gen_map_close(g);
}

static void mock_sf_store(struct mock_ctx *ctx, yajl_val rec) {
  char key[600];
  const char *type = mock_obj_get(mock_obj_get(rec, "attributes"), "type")->u.string;

  snprintf(key, sizeof(key), "salesforce:%s:%s", type, mock_obj_get(rec, "id")->u.string);
  mock_store_set_all(&ctx->store, key, rec, mock_sf_skip);
}

/*
 * With allOrNone the failing records keep their own error and every other record reports
 * ALL_OR_NONE_OPERATION_ROLLED_BACK; nothing is stored. Without it each success is stored.
 */
static void mock_sf_collection(struct mock_ctx *ctx, yajl_val records, int all_or_none,
                               struct mock_resp *resp) {
  size_t n = records->u.array.len;
  struct mock_sf_outcome out[200];
  int any_failed = 0;

  for (size_t i = 0; i < n; i++) {
    out[i] = mock_sf_judge(ctx, records->u.array.values[i]);
    any_failed |= out[i].code != NULL;
  }

  yajl_gen g = mock_gen_new();
  yajl_gen_array_open(g);
  for (size_t i = 0; i < n; i++) {
    yajl_val rec = records->u.array.values[i];

    if (all_or_none && any_failed && out[i].code == NULL)
      out[i] = (struct mock_sf_outcome){"ALL_OR_NONE_OPERATION_ROLLED_BACK",
                                        "Record rolled back because not all records were valid "
                                        "and the request was using AllOrNone header",
                                        NULL};
    else if (out[i].code == NULL)
      mock_sf_store(ctx, rec);
    mock_sf_gen_result(g, rec, &out[i]);
  }
  yajl_gen_array_close(g);
  resp->status = 200;
  mock_gen_finish(g, &resp->body);
}

static void mock_sf_composite(struct mock_ctx *ctx, const struct mock_req *req,
                              struct mock_resp *resp) {
  if (strcmp(req->method, "PATCH") != 0) {
    mock_sf_method_not_allowed(req, resp);
    return;
  }

  yajl_val body = mock_sf_body(req, resp);
  if (body == NULL)
    return;

  yajl_val records = mock_obj_get(body, "records");
  yajl_val aon = mock_obj_get(body, "allOrNone");
  if (records == NULL || !YAJL_IS_ARRAY(records) || records->u.array.len == 0 ||
      records->u.array.len > 200) {
    mock_sf_error(resp, 400, "INVALID_FIELD", "records must be an array of 1 to 200 records", NULL);
  } else if (aon != NULL && !YAJL_IS_TRUE(aon) && !YAJL_IS_FALSE(aon)) {
    mock_sf_error(resp, 400, "JSON_PARSER_ERROR", "allOrNone must be a boolean", NULL);
  } else {
    mock_sf_collection(ctx, records, aon != NULL && YAJL_IS_TRUE(aon), resp);
  }
  yajl_tree_free(body);
}

/* ---- POST /services/oauth2/token ---- */

struct mock_sf_form {
  char *grant_type;
  char *refresh_token;
  char *client_id;
  char *client_secret;
};

/* Splits the form in place (text is a private copy); later duplicates win. */
static void mock_sf_parse_form(char *text, struct mock_sf_form *f) {
  memset(f, 0, sizeof(*f));
  for (char *pair = strtok(text, "&"); pair != NULL; pair = strtok(NULL, "&")) {
    char *eq = strchr(pair, '=');

    if (eq == NULL)
      continue;
    *eq = '\0';
    mock_form_decode(pair);
    mock_form_decode(eq + 1);
    if (strcmp(pair, "grant_type") == 0)
      f->grant_type = eq + 1;
    else if (strcmp(pair, "refresh_token") == 0)
      f->refresh_token = eq + 1;
    else if (strcmp(pair, "client_id") == 0)
      f->client_id = eq + 1;
    else if (strcmp(pair, "client_secret") == 0)
      f->client_secret = eq + 1;
  }
}

static int mock_sf_same(const char *a, const char *b) {
  return a != NULL && strcmp(a, b) == 0;
}

static void mock_sf_gen_token(const struct mock_ctx *ctx, const struct mock_req *req,
                              struct mock_resp *resp) {
  char text[600];
  yajl_gen g = mock_gen_new();

  yajl_gen_map_open(g);
  mock_gen_str(g, "access_token");
  mock_gen_str(g, ctx->sf_current);
  snprintf(text, sizeof(text), "http://%s", req->host ? req->host : "127.0.0.1");
  mock_gen_str(g, "instance_url");
  mock_gen_str(g, text);
  snprintf(text, sizeof(text), "http://%s/id/00D000000000001AAA/005000000000001AAA",
           req->host ? req->host : "127.0.0.1");
  mock_gen_str(g, "id");
  mock_gen_str(g, text);
  mock_gen_str(g, "token_type");
  mock_gen_str(g, "Bearer");
  snprintf(text, sizeof(text), "%lld", (long long)time(NULL) * 1000);
  mock_gen_str(g, "issued_at");
  mock_gen_str(g, text);
  mock_gen_str(g, "signature");
  mock_gen_str(g, "bW9jay1zaWduYXR1cmUtbm90LWNoZWNrZWQ=");
  mock_gen_str(g, "scope");
  mock_gen_str(g, "api refresh_token");
  yajl_gen_map_close(g);
  resp->status = 200;
  mock_gen_finish(g, &resp->body);
}

/* A refresh issues sf-refreshed-token-N; the previous token stops working at once. */
static void mock_sf_token(struct mock_ctx *ctx, const struct mock_req *req,
                          struct mock_resp *resp) {
  struct mock_sf_form f;

  if (strcmp(req->method, "POST") != 0) {
    mock_resp_json(resp, 405,
                   "{\"error\":\"invalid_request\","
                   "\"error_description\":\"must use HTTP POST\"}");
    return;
  }

  char *text = mock_xstrndup(mock_buf_cstr(&req->body), req->body.len);
  mock_sf_parse_form(text, &f);
  if (!mock_sf_same(f.grant_type, "refresh_token")) {
    mock_resp_json(resp, 400,
                   "{\"error\":\"unsupported_grant_type\","
                   "\"error_description\":\"grant type not supported\"}");
  } else if (!mock_sf_same(f.refresh_token, ctx->creds.sf_refresh) ||
             !mock_sf_same(f.client_id, ctx->creds.sf_client_id) ||
             !mock_sf_same(f.client_secret, ctx->creds.sf_client_secret)) {
    mock_resp_json(resp, 400,
                   "{\"error\":\"invalid_grant\","
                   "\"error_description\":\"authentication failure\"}");
  } else {
    ctx->sf_refreshes++;
    snprintf(ctx->sf_current, sizeof(ctx->sf_current), "sf-refreshed-token-%u", ctx->sf_refreshes);
    ctx->sf_expired = 0;
    mock_sf_gen_token(ctx, req, resp);
  }
  free(text);
}

void mock_salesforce_route(struct mock_ctx *ctx, const struct mock_req *req,
                           struct mock_resp *resp) {
  struct mock_segs s;

  if (mock_split_path(req->path, &s) != 0) {
    s.n = 0;
  } else if (s.n == 3 && strcmp(s.seg[1], "oauth2") == 0 && strcmp(s.seg[2], "token") == 0) {
    mock_sf_token(ctx, req, resp);
    return;
  }
  if (s.n >= 5 && strcmp(s.seg[1], "data") == 0 && mock_sf_is_version(s.seg[2])) {
    if (s.n == 6 && strcmp(s.seg[3], "sobjects") == 0 && s.seg[4][0] != '\0') {
      mock_sf_single(ctx, req, s.seg[4], s.seg[5], resp);
      return;
    }
    if (s.n == 5 && strcmp(s.seg[3], "composite") == 0 && strcmp(s.seg[4], "sobjects") == 0) {
      mock_sf_composite(ctx, req, resp);
      return;
    }
  }
  mock_sf_error(resp, 404, "NOT_FOUND", "The requested resource does not exist", NULL);
}
