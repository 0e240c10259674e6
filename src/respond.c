#include "respond.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct jv *rs_str(const char *s) {
  return jv_new_string(s, strlen(s));
}

void ucrm_respond_json(struct srv_req *r, int status, struct jv *root, const char *extra) {
  size_t len = 0;
  char *body = root != NULL ? jv_dump(root, &len) : NULL;
  jv_free(root);

  if (body == NULL) {
    static const char oom[] = "{\"statusCode\":500,\"error\":\"Internal Server Error\","
                              "\"message\":\"could not build the response\"}";
    srv_respond(r, 500, "application/json", NULL, oom, sizeof(oom) - 1);
    return;
  }
  srv_respond(r, status, "application/json", extra, body, len);
  free(body);
}

static struct jv *rs_envelope(int status, const char *message) {
  struct jv *o = jv_new(JV_OBJECT);
  if (o == NULL)
    return NULL;

  int rc = jv_obj_set(o, "statusCode", jv_new_int(status));
  rc = rc != 0 ? rc : jv_obj_set(o, "error", rs_str(srv_reason(status)));
  rc = rc != 0 ? rc : jv_obj_set(o, "message", rs_str(message));
  if (rc != 0) {
    jv_free(o);
    return NULL;
  }
  return o;
}

void ucrm_respond_error(struct srv_req *r, int status, const char *message, const char *extra) {
  ucrm_respond_json(r, status, rs_envelope(status, message), extra);
}

void ucrm_respond_shape(struct jv *root, const struct ucrm_query *q) {
  if (root == NULL)
    return;
  if (q->ignore_remote_data)
    jv_obj_delete_path(root, "remote_data");
  for (size_t i = 0; i < q->nexclude; i++)
    jv_obj_delete_path(root, q->exclude[i]);
}

struct jv *ucrm_reply_value(const struct jv *parsed, const char *raw, size_t len) {
  if (parsed != NULL)
    return jv_copy(parsed);
  if (len == 0)
    return jv_new(JV_NULL);
  return jv_new_string_utf8(raw, len);
}

static struct jv *rs_associations(const struct ucrm_assoc *a) {
  struct jv *assoc = jv_new(JV_OBJECT);
  for (size_t i = 0; assoc != NULL && i < a->norder; i++) {
    enum ucrm_kind k = a->order[i];
    struct jv *list = jv_new(JV_ARRAY);
    for (size_t j = 0; list != NULL && j < a->kinds[k].n; j++) {
      struct jv *item = jv_new(JV_OBJECT);
      if (item == NULL || jv_obj_set(item, "id", rs_str(a->kinds[k].ids[j])) != 0 ||
          jv_arr_push(list, item) != 0) {
        jv_free(list);
        list = NULL;
      }
    }
    if (jv_obj_set(assoc, ucrm_kind_name(k), list) != 0) {
      jv_free(assoc);
      return NULL;
    }
  }
  return assoc;
}

static struct jv *rs_head(const struct ucrm_assoc *a) {
  struct jv *o = jv_new(JV_OBJECT);
  if (o == NULL)
    return NULL;
  if (jv_obj_set(o, "entity_id", rs_str(a->entity_id)) != 0 ||
      jv_obj_set(o, "entity", rs_str(ucrm_entity_name(a->entity))) != 0) {
    jv_free(o);
    return NULL;
  }
  return o;
}

static struct jv *rs_take(struct jv **slot) {
  struct jv *v = *slot != NULL ? *slot : jv_new(JV_NULL);
  *slot = NULL;
  return v;
}

struct jv *ucrm_body_unified(const struct ucrm_assoc *a, const struct ucrm_plan *plan,
                             struct jv **replies) {
  struct jv *o = rs_head(a);
  if (o == NULL || jv_obj_set(o, "associations", rs_associations(a)) != 0) {
    jv_free(o);
    return NULL;
  }

  struct jv *rd;
  if (plan->n == 1) {
    rd = rs_take(&replies[0]);
  } else {
    rd = jv_new(JV_ARRAY);
    for (size_t i = 0; rd != NULL && i < plan->n; i++) {
      if (jv_arr_push(rd, rs_take(&replies[i])) != 0) {
        jv_free(rd);
        rd = NULL;
      }
    }
  }
  if (jv_obj_set(o, "remote_data", rd) != 0) {
    jv_free(o);
    return NULL;
  }
  return o;
}

static const char *const rs_status_names[] = {"not_attempted", "applied", "failed"};

static struct jv *rs_result(const struct ucrm_result *r, int with_error) {
  struct jv *o = jv_new(JV_OBJECT);
  int rc = o != NULL ? 0 : UCRM_ENOMEM;
  rc = rc != 0 ? rc : jv_obj_set(o, "kind", rs_str(ucrm_kind_name(r->link.kind)));
  rc = rc != 0 ? rc : jv_obj_set(o, "id", rs_str(r->link.id));
  rc = rc != 0 ? rc : jv_obj_set(o, "status", rs_str(rs_status_names[r->status]));
  rc = rc != 0 ? rc
               : jv_obj_set(o, "remote_status",
                            r->remote_status > 0 ? jv_new_int(r->remote_status) : jv_new(JV_NULL));
  if (rc == 0 && with_error)
    rc = jv_obj_set(o, "error", r->error != NULL ? rs_str(r->error) : jv_new(JV_NULL));
  if (rc != 0) {
    jv_free(o);
    return NULL;
  }
  return o;
}

static struct jv *rs_results(const struct ucrm_result *res, size_t nres, int with_error) {
  struct jv *list = jv_new(JV_ARRAY);
  for (size_t i = 0; list != NULL && i < nres; i++) {
    if (jv_arr_push(list, rs_result(&res[i], with_error)) != 0) {
      jv_free(list);
      return NULL;
    }
  }
  return list;
}

struct jv *ucrm_body_normalized(const struct ucrm_assoc *a, const struct ucrm_result *res,
                                size_t nres) {
  struct jv *o = rs_head(a);
  if (o == NULL || jv_obj_set(o, "links", rs_results(res, nres, 0)) != 0) {
    jv_free(o);
    return NULL;
  }
  return o;
}

struct jv *ucrm_body_remote_error(int status, const char *message, const struct jv *raw,
                                  const struct ucrm_result *res, size_t nres, int several) {
  struct jv *o = rs_envelope(status, message);
  int rc = o != NULL ? 0 : UCRM_ENOMEM;
  rc = rc != 0 ? rc : jv_obj_set(o, "truto_is_remote_error", jv_new(JV_TRUE));
  rc = rc != 0 ? rc : jv_obj_set(o, "raw_response", raw != NULL ? jv_copy(raw) : jv_new(JV_NULL));
  if (rc == 0 && several)
    rc = jv_obj_set(o, "results", rs_results(res, nres, 1));
  if (rc != 0) {
    jv_free(o);
    return NULL;
  }
  return o;
}

struct jv *ucrm_body_plan(const struct ucrm_account *acct, const struct ucrm_plan *plan,
                          const char *remote_qs) {
  struct jv *o = jv_new(JV_OBJECT);
  struct jv *list = jv_new(JV_ARRAY);
  int rc = o && list ? 0 : UCRM_ENOMEM;

  for (size_t i = 0; rc == 0 && i < plan->n; i++) {
    const struct ucrm_call *c = &plan->calls[i];
    char *url = NULL;
    size_t n = strlen(acct->base_url) + strlen(c->path) + (remote_qs ? strlen(remote_qs) : 0) + 2;
    struct jv *body = NULL;
    char jerr[64];
    struct jv *call = jv_new(JV_OBJECT);
    rc = call != NULL && (url = malloc(n)) != NULL ? 0 : UCRM_ENOMEM;
    if (rc == 0)
      snprintf(url, n, "%s%s%s%s", acct->base_url, c->path, remote_qs ? "?" : "",
               remote_qs ? remote_qs : "");
    rc = rc != 0 ? rc : jv_obj_set(call, "method", rs_str(c->method));
    rc = rc != 0 ? rc : jv_obj_set(call, "url", rs_str(url));
    rc = rc != 0 ? rc : jv_parse(c->body, c->body_len, JV_MAX_DEPTH, &body, jerr, sizeof(jerr));
    rc = rc != 0 ? rc : jv_obj_set(call, "body", body);
    rc = rc != 0 ? rc : jv_arr_push(list, call);
    if (rc != 0)
      jv_free(call);
    free(url);
  }

  rc = rc != 0 ? rc : jv_obj_set(o, "plan", list);
  if (rc != 0) {
    jv_free(o);
    return NULL;
  }
  return o;
}

struct jv *ucrm_body_stream_line(const struct ucrm_call *call, const char *status,
                                 long remote_status, const struct jv *reply) {
  struct jv *o = jv_new(JV_OBJECT);
  struct jv *ids = jv_new(JV_ARRAY);
  int rc = o && ids ? 0 : UCRM_ENOMEM;

  enum ucrm_kind kind = call->nlinks > 0 ? call->links[0].kind : UCRM_KIND_ACCOUNTS;
  for (size_t i = 0; rc == 0 && i < call->nlinks; i++)
    rc = jv_arr_push(ids, rs_str(call->links[i].id));
  rc = rc != 0 ? rc : jv_obj_set(o, "kind", rs_str(ucrm_kind_name(kind)));
  rc = rc != 0 ? rc : jv_obj_set(o, "ids", ids);
  ids = NULL;
  rc = rc != 0 ? rc : jv_obj_set(o, "status", rs_str(status));
  rc = rc != 0 ? rc
               : jv_obj_set(o, "remote_status",
                            remote_status > 0 ? jv_new_int(remote_status) : jv_new(JV_NULL));
  rc = rc != 0 ? rc : jv_obj_set(o, "remote_data", reply ? jv_copy(reply) : jv_new(JV_NULL));
  jv_free(ids);
  if (rc != 0) {
    jv_free(o);
    return NULL;
  }
  return o;
}
