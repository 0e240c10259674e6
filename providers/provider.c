#include "provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct ucrm_provider *const provider_all[] = {
    &ucrm_provider_attio,
    &ucrm_provider_close,
    &ucrm_provider_pipedrive,
    &ucrm_provider_salesforce,
};

const struct ucrm_provider *ucrm_provider_find(const char *name) {
  for (size_t i = 0; i < UCRM_ARRAY_LEN(provider_all); i++) {
    if (strcmp(provider_all[i]->name, name) == 0)
      return provider_all[i];
  }
  return NULL;
}

/* The dotted path of the first value src would replace in dst; 0 when there is none. */
static int plan_conflict(const struct jv *dst, const struct jv *src, char *path, size_t len) {
  for (size_t i = 0; i < src->u.obj.n; i++) {
    const struct jv_member *m = &src->u.obj.m[i];
    const struct jv *cur = jv_obj_get(dst, m->key);
    if (cur == NULL)
      continue;
    size_t at = strlen(path);
    snprintf(path + at, len - at, "%s%s", at > 0 ? "." : "", m->key);
    if (cur->type != JV_OBJECT || m->val->type != JV_OBJECT)
      return 1;
    if (plan_conflict(cur, m->val, path, len))
      return 1;
    path[at] = '\0';
  }
  return 0;
}

int ucrm_merge_remote(struct ucrm_plan *plan, struct jv *body, const struct jv *remote_data) {
  if (remote_data == NULL)
    return 0;

  char path[128] = "";
  if (plan_conflict(body, remote_data, path, sizeof(path))) {
    snprintf(plan->refusal, sizeof(plan->refusal),
             "remote_data may add fields but not change %.100s, which carries the link", path);
    return UCRM_EINVAL;
  }
  return jv_merge(body, remote_data);
}

int ucrm_plan_add(struct ucrm_plan *plan, const char *method, const char *path, struct jv *body,
                  const struct jv *remote_data) {
  if (body == NULL)
    return UCRM_ENOMEM;

  int rc = ucrm_merge_remote(plan, body, remote_data);
  struct ucrm_call call = {.method = method};
  if (rc == 0) {
    call.path = strdup(path);
    call.body = jv_dump(body, &call.body_len);
  }
  jv_free(body);

  struct ucrm_call *grown = realloc(plan->calls, (plan->n + 1) * sizeof(*grown));
  if (rc != 0 || call.path == NULL || call.body == NULL || grown == NULL) {
    free(call.path);
    free(call.body);
    if (grown != NULL)
      plan->calls = grown;
    return rc != 0 ? rc : UCRM_ENOMEM;
  }

  plan->calls = grown;
  plan->calls[plan->n++] = call;
  return 0;
}

int ucrm_plan_link(struct ucrm_plan *plan, enum ucrm_kind kind, const char *id) {
  struct ucrm_call *c = &plan->calls[plan->n - 1];
  struct ucrm_link *grown = realloc(c->links, (c->nlinks + 1) * sizeof(*grown));
  if (grown == NULL)
    return UCRM_ENOMEM;

  c->links = grown;
  c->links[c->nlinks++] = (struct ucrm_link){kind, id};
  return 0;
}

void ucrm_plan_free(struct ucrm_plan *plan) {
  for (size_t i = 0; i < plan->n; i++) {
    free(plan->calls[i].path);
    free(plan->calls[i].body);
    free(plan->calls[i].links);
  }
  free(plan->calls);
  plan->calls = NULL;
  plan->n = 0;
}

int ucrm_path_id(struct ubuf *out, const char *id, struct ucrm_err *err, const char *what) {
  if (id[0] == '\0' || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
    return ucrm_err_set(err, 400, "%s is not a valid record id", what);

  for (const char *p = id; *p != '\0'; p++) {
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      return ucrm_err_set(err, 400, "%s holds a control character", what);
  }

  /* Encoding every byte outside the unreserved set keeps '/', '?', '#' and '%' inert. */
  if (ubuf_append_pct(out, id, strlen(id)) != 0)
    return ucrm_err_set(err, 500, "out of memory");
  return 0;
}

void ucrm_verdict_from_status(long status, struct ucrm_verdict *v) {
  unsigned char *link_ok = v->link_ok;
  memset(v, 0, sizeof(*v));
  v->link_ok = link_ok;
  if (status >= 200 && status < 300) {
    v->ok = 1;
    return;
  }

  if (status == 429) {
    v->status = 429;
    v->retryable = 1;
  } else if (status >= 500) {
    v->status = 502;
    v->retryable = 1;
  } else if (status >= 400) {
    v->status = (int)status;
  } else {
    v->status = 502; /* 1xx/3xx: we follow no redirects, so the write did not happen */
  }
}

void ucrm_verdict_message(struct ucrm_verdict *v, const char *provider, long status,
                          const char *text) {
  if (text != NULL && text[0] != '\0')
    snprintf(v->message, sizeof(v->message), "%s answered %ld: %.180s", provider, status, text);
  else
    snprintf(v->message, sizeof(v->message), "%s answered %ld", provider, status);
}

int ucrm_unsupported(const char *provider, enum ucrm_entity e, enum ucrm_kind k,
                     struct ucrm_err *err) {
  return ucrm_err_set(err, 400, "unsupported_association: %s cannot link %s to %s", provider,
                      ucrm_entity_name(e), ucrm_kind_name(k));
}

int ucrm_single(const struct ucrm_assoc *a, enum ucrm_kind k, struct ucrm_err *err) {
  if (a->kinds[k].n <= 1)
    return 0;
  return ucrm_err_set(err, 400,
                      "associations.%s holds %zu ids, but this link is single-valued "
                      "for %s: send one id",
                      ucrm_kind_name(k), a->kinds[k].n, ucrm_entity_name(a->entity));
}

int ucrm_is_positive_int(const char *s) {
  size_t n = strspn(s, "0123456789");
  if (n == 0 || s[n] != '\0' || s[0] == '0' || n > 19)
    return 0;
  return n < 19 || strcmp(s, "9223372036854775807") <= 0;
}

int ucrm_auth_bearer(struct ubuf *out, const char *token) {
  return ubuf_printf(out, "Authorization: Bearer %s", token);
}
