/*
 * Attio: links are record-reference attributes written with PATCH, which appends to
 * multi-valued attributes; PUT would replace them and silently drop the record's existing
 * links, so it is never used. One call per record carries every attribute it needs.
 * https://docs.attio.com/rest-api/attribute-types/attribute-types-record-reference.md
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provider.h"

static int at_check_credentials(const struct ucrm_credentials *c, const char *prefix, char *err,
                                size_t errlen) {
  if (c->access_token == NULL) {
    snprintf(err, errlen, "config key '%s.credentials.access_token' is required for attio", prefix);
    return UCRM_EINVAL;
  }
  return 0;
}

static int at_auth_header(const struct ucrm_account *acct, struct ubuf *out) {
  return ucrm_auth_bearer(out, acct->cred.access_token);
}

static int at_uuid(const char *id, const char *what, struct ucrm_err *err) {
  if (!ucrm_is_uuid(id, strlen(id)))
    return ucrm_err_set(err, 400, "%s must be an Attio record id (a UUID)", what);
  return 0;
}

/* What an entity and a kind mean in Attio: the object written and the attribute set. */
struct at_target {
  const char *object;    /* the entity's object slug */
  const char *attribute; /* the record-reference attribute on it */
  const char *target;    /* the object the reference points at */
};

static int at_target(enum ucrm_entity e, enum ucrm_kind k, struct at_target *t) {
  if (e == UCRM_ENT_ACCOUNTS && k == UCRM_KIND_OPPORTUNITIES)
    *t = (struct at_target){"companies", "associated_deals", "deals"};
  else if (e == UCRM_ENT_OPPORTUNITIES && k == UCRM_KIND_ORGANIZATIONS)
    *t = (struct at_target){"deals", "associated_company", "companies"};
  else if (e == UCRM_ENT_CONTACTS && k == UCRM_KIND_OPPORTUNITIES)
    *t = (struct at_target){"people", "associated_deals", "deals"};
  else if (e == UCRM_ENT_CONTACTS && (k == UCRM_KIND_ACCOUNTS || k == UCRM_KIND_ORGANIZATIONS))
    *t = (struct at_target){"people", "company", "companies"};
  else
    return UCRM_EINVAL;
  return 0;
}

static int at_ref(struct jv *list, const char *target, const char *id) {
  struct jv *ref = jv_new(JV_OBJECT);
  if (ref == NULL)
    return UCRM_ENOMEM;

  int rc = jv_obj_set(ref, "target_object", jv_new_string(target, strlen(target)));
  rc = rc != 0 ? rc : jv_obj_set(ref, "target_record_id", jv_new_string(id, strlen(id)));
  if (rc != 0) {
    jv_free(ref);
    return rc;
  }
  return jv_arr_push(list, ref);
}

/* Checks every kind and id before anything is built. */
static int at_validate(const struct ucrm_assoc *a, struct ucrm_err *err) {
  int rc = at_uuid(a->entity_id, "entity_id", err);
  const struct ucrm_ids *acc = &a->kinds[UCRM_KIND_ACCOUNTS];
  const struct ucrm_ids *org = &a->kinds[UCRM_KIND_ORGANIZATIONS];

  for (size_t i = 0; i < a->norder && rc == 0; i++) {
    enum ucrm_kind k = a->order[i];
    struct at_target t = {0};
    if (at_target(a->entity, k, &t) != 0)
      return ucrm_unsupported("attio", a->entity, k, err);
    if (strcmp(t.attribute, "associated_deals") != 0)
      rc = ucrm_single(a, k, err);
    for (size_t j = 0; j < a->kinds[k].n && rc == 0; j++) {
      char what[64];
      snprintf(what, sizeof(what), "associations.%s[%zu].id", ucrm_kind_name(k), j);
      rc = at_uuid(a->kinds[k].ids[j], what, err);
    }
  }

  if (rc == 0 && acc->n == 1 && org->n == 1 && strcmp(acc->ids[0], org->ids[0]) != 0)
    rc = ucrm_err_set(err, 400,
                      "associations.accounts and associations.organizations both set "
                      "the person's one company: send one id");
  return rc;
}

static int at_values(const struct ucrm_assoc *a, struct jv *values, const char **object) {
  for (size_t i = 0; i < a->norder; i++) {
    enum ucrm_kind k = a->order[i];
    struct at_target t = {0};
    at_target(a->entity, k, &t);
    *object = t.object;

    struct jv *list = jv_obj_get(values, t.attribute);
    if (list == NULL) {
      list = jv_new(JV_ARRAY);
      if (jv_obj_set(values, t.attribute, list) != 0)
        return UCRM_ENOMEM;
    } else if (strcmp(t.attribute, "company") == 0) {
      continue; /* accounts and organizations named the same company */
    }
    for (size_t j = 0; j < a->kinds[k].n; j++) {
      if (at_ref(list, t.target, a->kinds[k].ids[j]) != 0)
        return UCRM_ENOMEM;
    }
  }
  return 0;
}

static int at_plan(const struct ucrm_assoc *a, const struct ucrm_account *acct,
                   struct ucrm_plan *plan, struct ucrm_err *err) {
  if (!(ucrm_provider_attio.entities >> a->entity & 1u))
    return ucrm_err_set(err, 400, "unsupported_association: attio does not support entity %s",
                        ucrm_entity_name(a->entity));
  int rc = at_validate(a, err);
  if (rc != 0)
    return rc;

  const char *object = NULL;
  struct jv *values = jv_new(JV_OBJECT);
  struct jv *data = jv_new(JV_OBJECT);
  struct jv *body = jv_new(JV_OBJECT);
  rc = values && data && body ? at_values(a, values, &object) : UCRM_ENOMEM;
  rc = rc != 0 ? rc : jv_obj_set(data, "values", values);
  values = NULL;
  rc = rc != 0 ? rc : jv_obj_set(body, "data", data);
  data = NULL;
  jv_free(values);
  jv_free(data);

  struct ubuf path;
  ubuf_init(&path, 1024);
  ubuf_printf(&path, "/v2/objects/%s/records/", object != NULL ? object : "");
  rc = rc != 0 ? rc : ucrm_path_id(&path, a->entity_id, err, "entity_id");
  if (rc == 0)
    rc = ucrm_plan_add(plan, "PATCH", ubuf_cstr(&path), body, a->remote_data);
  else
    jv_free(body);
  ubuf_free(&path);

  for (size_t i = 0; i < a->norder && rc == 0; i++) {
    enum ucrm_kind k = a->order[i];
    for (size_t j = 0; j < a->kinds[k].n && rc == 0; j++)
      rc = ucrm_plan_link(plan, k, a->kinds[k].ids[j]);
  }
  return rc;
}

static void at_verdict(const struct ucrm_call *call, long status, const struct jv *body,
                       struct ucrm_verdict *v) {
  ucrm_verdict_from_status(status, v);
  if (v->ok)
    return;

  const struct jv *code = jv_obj_get(body, "code");
  /* Attio says a concurrent write conflict is safe to try again. */
  if (status == 409 && code != NULL && code->type == JV_STRING &&
      strcmp(code->u.str.s, "concurrent_write_conflict") == 0)
    v->retryable = 1;

  const struct jv *msg = jv_obj_get(body, "message");
  ucrm_verdict_message(v, "attio", status,
                       msg != NULL && msg->type == JV_STRING ? msg->u.str.s : NULL);
}

const struct ucrm_provider ucrm_provider_attio = {
    .name = "attio",
    .default_base_url = "https://api.attio.com",
    .entities = 1u << UCRM_ENT_ACCOUNTS | 1u << UCRM_ENT_OPPORTUNITIES | 1u << UCRM_ENT_CONTACTS,
    .check_credentials = at_check_credentials,
    .plan = at_plan,
    .auth_header = at_auth_header,
    .verdict = at_verdict,
};
