/*
 * Close: a Close "lead" is the company record, so both leads and accounts name one. PUT
 * behaves as a patch (only the fields sent change), endpoints are written with a trailing
 * slash, and API keys go in HTTP Basic as the user name with an empty password.
 * https://developer.close.com/api/overview/api-key-authentication.md
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provider.h"

static int cl_check_credentials(const struct ucrm_credentials *c, const char *prefix, char *err,
                                size_t errlen) {
  if (c->api_key == NULL && c->access_token == NULL) {
    snprintf(err, errlen,
             "config key '%s.credentials.api_key' (or access_token) is required "
             "for close",
             prefix);
    return UCRM_EINVAL;
  }
  return 0;
}

static int cl_base64(struct ubuf *out, const unsigned char *s, size_t n) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  int rc = 0;

  for (size_t i = 0; i < n && rc == 0; i += 3) {
    unsigned v = (unsigned)s[i] << 16;
    if (i + 1 < n)
      v |= (unsigned)s[i + 1] << 8;
    if (i + 2 < n)
      v |= s[i + 2];
    char q[4] = {tab[(v >> 18) & 63], tab[(v >> 12) & 63], i + 1 < n ? tab[(v >> 6) & 63] : '=',
                 i + 2 < n ? tab[v & 63] : '='};
    rc = ubuf_append(out, q, 4);
  }
  return rc;
}

static int cl_auth_header(const struct ucrm_account *acct, struct ubuf *out) {
  if (acct->cred.api_key == NULL)
    return ucrm_auth_bearer(out, acct->cred.access_token);

  struct ubuf user;
  ubuf_init(&user, 4096);
  int rc = ubuf_printf(&user, "%s:", acct->cred.api_key);
  rc = rc != 0 ? rc : ubuf_puts(out, "Authorization: Basic ");
  rc = rc != 0 ? rc : cl_base64(out, (const unsigned char *)user.data, user.len);
  ubuf_free(&user);
  return rc;
}

/* Close ids carry their object type as a prefix (lead_, cont_, oppo_). */
static int cl_id(const char *id, const char *prefix, const char *what, struct ucrm_err *err) {
  /* Close ids are the prefix and letters and digits; nothing else can name a record. */
  size_t n = strlen(prefix);
  size_t rest = strspn(id + (strncmp(id, prefix, n) == 0 ? n : 0),
                       "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
  if (strncmp(id, prefix, n) != 0 || rest == 0 || id[n + rest] != '\0')
    return ucrm_err_set(err, 400,
                        "%s must be a Close id starting with %s, then letters and "
                        "digits",
                        what, prefix);
  return 0;
}

static int cl_put(struct ucrm_plan *plan, const char *object, const char *id, const char *field,
                  const char *value, const struct jv *remote_data, struct ucrm_err *err) {
  struct jv *body = jv_new(JV_OBJECT);
  if (body != NULL && jv_obj_set(body, field, jv_new_string(value, strlen(value))) != 0) {
    jv_free(body);
    body = NULL;
  }

  struct ubuf path;
  ubuf_init(&path, 1024);
  ubuf_printf(&path, "/api/v1/%s/", object);
  int rc = ucrm_path_id(&path, id, err, "id");
  rc = rc != 0 ? rc : ubuf_putc(&path, '/');
  if (rc == 0)
    rc = ucrm_plan_add(plan, "PUT", ubuf_cstr(&path), body, remote_data);
  else
    jv_free(body);
  ubuf_free(&path);
  return rc;
}

/* leads and accounts both set the contact's one lead: together they must name one id. */
static int cl_plan_contact_lead(const struct ucrm_assoc *a, struct ucrm_plan *plan,
                                struct ucrm_err *err) {
  const struct ucrm_ids *leads = &a->kinds[UCRM_KIND_LEADS];
  const struct ucrm_ids *accs = &a->kinds[UCRM_KIND_ACCOUNTS];
  int rc = ucrm_single(a, UCRM_KIND_LEADS, err);
  rc = rc != 0 ? rc : ucrm_single(a, UCRM_KIND_ACCOUNTS, err);
  if (rc != 0)
    return rc;
  if (leads->n == 1 && accs->n == 1 && strcmp(leads->ids[0], accs->ids[0]) != 0)
    return ucrm_err_set(err, 400,
                        "associations.leads and associations.accounts both set the "
                        "contact's one lead: send one id");

  const char *lead = leads->n == 1 ? leads->ids[0] : accs->ids[0];
  rc = cl_id(lead, "lead_",
             leads->n == 1 ? "associations.leads[0].id" : "associations.accounts[0].id", err);
  rc = rc != 0 ? rc : cl_put(plan, "contact", a->entity_id, "lead_id", lead, a->remote_data, err);

  for (size_t i = 0; i < a->norder && rc == 0; i++) {
    enum ucrm_kind k = a->order[i];
    if (k == UCRM_KIND_LEADS || k == UCRM_KIND_ACCOUNTS)
      rc = ucrm_plan_link(plan, k, lead);
  }
  return rc;
}

static int cl_plan_contact_opps(const struct ucrm_assoc *a, struct ucrm_plan *plan,
                                struct ucrm_err *err) {
  const struct ucrm_ids *opps = &a->kinds[UCRM_KIND_OPPORTUNITIES];
  for (size_t i = 0; i < opps->n; i++) {
    char what[64];
    snprintf(what, sizeof(what), "associations.opportunities[%zu].id", i);
    int rc = cl_id(opps->ids[i], "oppo_", what, err);
    if (rc != 0)
      return rc;
  }

  for (size_t i = 0; i < opps->n; i++) {
    int rc =
        cl_put(plan, "opportunity", opps->ids[i], "contact_id", a->entity_id, a->remote_data, err);
    rc = rc != 0 ? rc : ucrm_plan_link(plan, UCRM_KIND_OPPORTUNITIES, opps->ids[i]);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int cl_plan_contact(const struct ucrm_assoc *a, struct ucrm_plan *plan,
                           struct ucrm_err *err) {
  int rc = cl_id(a->entity_id, "cont_", "entity_id", err);
  int lead_done = 0;

  for (size_t i = 0; i < a->norder && rc == 0; i++) {
    enum ucrm_kind k = a->order[i];
    if (k == UCRM_KIND_ORGANIZATIONS) {
      rc = ucrm_unsupported("close", a->entity, k, err);
    } else if (k == UCRM_KIND_OPPORTUNITIES) {
      rc = cl_plan_contact_opps(a, plan, err);
    } else if (!lead_done) {
      rc = cl_plan_contact_lead(a, plan, err);
      lead_done = 1;
    }
  }
  return rc;
}

static int cl_plan_opportunity(const struct ucrm_assoc *a, struct ucrm_plan *plan,
                               struct ucrm_err *err) {
  if (a->kinds[UCRM_KIND_ORGANIZATIONS].n > 0)
    return ucrm_unsupported("close", a->entity, UCRM_KIND_ORGANIZATIONS, err);

  const struct ucrm_ids *leads = &a->kinds[UCRM_KIND_LEADS];
  int rc = cl_id(a->entity_id, "oppo_", "entity_id", err);
  rc = rc != 0 ? rc : ucrm_single(a, UCRM_KIND_LEADS, err);
  rc = rc != 0 ? rc : cl_id(leads->ids[0], "lead_", "associations.leads[0].id", err);
  rc = rc != 0 ? rc
               : cl_put(plan, "opportunity", a->entity_id, "lead_id", leads->ids[0], a->remote_data,
                        err);
  return rc != 0 ? rc : ucrm_plan_link(plan, UCRM_KIND_LEADS, leads->ids[0]);
}

static int cl_plan(const struct ucrm_assoc *a, const struct ucrm_account *acct,
                   struct ucrm_plan *plan, struct ucrm_err *err) {
  if (!(ucrm_provider_close.entities >> a->entity & 1u))
    return ucrm_err_set(err, 400, "unsupported_association: close does not support entity %s",
                        ucrm_entity_name(a->entity));
  if (a->entity == UCRM_ENT_OPPORTUNITIES)
    return cl_plan_opportunity(a, plan, err);
  return cl_plan_contact(a, plan, err);
}

static void cl_verdict(const struct ucrm_call *call, long status, const struct jv *body,
                       struct ucrm_verdict *v) {
  ucrm_verdict_from_status(status, v);
  if (v->ok)
    return;

  /* Close errors come as {"error": "..."} or {"error": {"message": ...}} or field-errors. */
  const struct jv *e = jv_obj_get(body, "error");
  if (e != NULL && e->type == JV_OBJECT)
    e = jv_obj_get(e, "message");
  const struct jv *fe = jv_obj_get(body, "field-errors");
  if ((e == NULL || e->type != JV_STRING) && fe != NULL && fe->type == JV_OBJECT && fe->u.obj.n)
    e = fe->u.obj.m[0].val;
  ucrm_verdict_message(v, "close", status, e != NULL && e->type == JV_STRING ? e->u.str.s : NULL);
}

/* Close sends "RateLimit: limit=20, remaining=19, reset=2" (an IETF draft header). */
static void cl_ratelimit_header(const char *name, const char *value, struct ucrm_ratelimit *rl) {
  if (strcmp(name, "ratelimit") != 0)
    return;

  static const char *const keys[] = {"limit=", "remaining=", "reset="};
  long *fields[] = {&rl->limit, &rl->remaining, &rl->reset};
  for (size_t i = 0; i < 3; i++) {
    const char *p = strstr(value, keys[i]);
    /* "limit=" also matches inside nothing else here; guard against "xlimit=" all the same. */
    if (p == NULL || (p != value && p[-1] != ' ' && p[-1] != ','))
      continue;
    char *end;
    long n = strtol(p + strlen(keys[i]), &end, 10);
    if (end != p + strlen(keys[i]) && n >= 0)
      *fields[i] = n;
  }
}

const struct ucrm_provider ucrm_provider_close = {
    .name = "close",
    .default_base_url = "https://api.close.com",
    .entities = 1u << UCRM_ENT_OPPORTUNITIES | 1u << UCRM_ENT_CONTACTS,
    .check_credentials = cl_check_credentials,
    .plan = cl_plan,
    .auth_header = cl_auth_header,
    .verdict = cl_verdict,
    .ratelimit_header = cl_ratelimit_header,
};
