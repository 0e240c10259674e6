/*
 * Pipedrive: leads live on API v1, persons and deals on v2 (/api/v2/...), and every person,
 * organization and deal id is an integer that v2 will not coerce from a string, so ids are
 * sent as JSON numbers. Leads have UUID ids.
 * https://pipedrive.readme.io/docs/pipedrive-api-v2-migration-guide
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "provider.h"

static int pd_check_credentials(const struct ucrm_credentials *c, const char *prefix, char *err,
                                size_t errlen) {
  if (c->api_token == NULL && c->access_token == NULL) {
    snprintf(err, errlen,
             "config key '%s.credentials.api_token' (or access_token) is required "
             "for pipedrive",
             prefix);
    return UCRM_EINVAL;
  }
  return 0;
}

static int pd_auth_header(const struct ucrm_account *acct, struct ubuf *out) {
  /* Pipedrive wants API tokens in x-api-token; sent as Bearer they are refused with 401. */
  if (acct->cred.api_token != NULL)
    return ubuf_printf(out, "x-api-token: %s", acct->cred.api_token);
  return ucrm_auth_bearer(out, acct->cred.access_token);
}

static int pd_int_id(const char *id, const char *what, struct ucrm_err *err) {
  if (!ucrm_is_positive_int(id))
    return ucrm_err_set(err, 400, "%s must be a Pipedrive integer id", what);
  return 0;
}

static int pd_lead_id(const char *id, const char *what, struct ucrm_err *err) {
  if (!ucrm_is_uuid(id, strlen(id)))
    return ucrm_err_set(err, 400, "%s must be a Pipedrive lead id (a UUID)", what);
  return 0;
}

static struct jv *pd_body(const char *field, const char *int_id) {
  struct jv *body = jv_new(JV_OBJECT);
  if (body != NULL && jv_obj_set(body, field, jv_new_number(int_id, strlen(int_id))) != 0) {
    jv_free(body);
    return NULL;
  }
  return body;
}

/* leads → contacts and/or accounts: one PATCH carries person_id and organization_id. */
static int pd_plan_lead(const struct ucrm_assoc *a, struct ucrm_plan *plan, struct ucrm_err *err) {
  const struct ucrm_ids *persons = &a->kinds[UCRM_KIND_CONTACTS];
  const struct ucrm_ids *orgs = &a->kinds[UCRM_KIND_ACCOUNTS];
  int rc = pd_lead_id(a->entity_id, "entity_id", err);
  rc = rc != 0 ? rc : ucrm_single(a, UCRM_KIND_CONTACTS, err);
  rc = rc != 0 ? rc : ucrm_single(a, UCRM_KIND_ACCOUNTS, err);
  if (rc == 0 && persons->n == 1)
    rc = pd_int_id(persons->ids[0], "associations.contacts[0].id", err);
  if (rc == 0 && orgs->n == 1)
    rc = pd_int_id(orgs->ids[0], "associations.accounts[0].id", err);
  if (rc != 0)
    return rc;

  struct jv *body = jv_new(JV_OBJECT);
  if (body == NULL)
    return UCRM_ENOMEM;
  for (size_t i = 0; i < a->norder && rc == 0; i++) {
    enum ucrm_kind k = a->order[i];
    const char *field = k == UCRM_KIND_CONTACTS ? "person_id" : "organization_id";
    const char *id = a->kinds[k].ids[0];
    rc = jv_obj_set(body, field, jv_new_number(id, strlen(id)));
  }

  struct ubuf path;
  ubuf_init(&path, 1024);
  ubuf_puts(&path, "/v1/leads/");
  rc = rc != 0 ? rc : ucrm_path_id(&path, a->entity_id, err, "entity_id");
  if (rc == 0)
    rc = ucrm_plan_add(plan, "PATCH", ubuf_cstr(&path), body, a->remote_data);
  else
    jv_free(body);
  ubuf_free(&path);

  for (size_t i = 0; i < a->norder && rc == 0; i++)
    rc = ucrm_plan_link(plan, a->order[i], a->kinds[a->order[i]].ids[0]);
  return rc;
}

/* One PATCH per target record, each writing field = entity_id. */
static int pd_plan_each(const struct ucrm_assoc *a, enum ucrm_kind k, const char *prefix,
                        const char *field, struct ucrm_plan *plan, struct ucrm_err *err) {
  const struct ucrm_ids *ids = &a->kinds[k];
  for (size_t i = 0; i < ids->n; i++) {
    char what[64];
    snprintf(what, sizeof(what), "associations.%s[%zu].id", ucrm_kind_name(k), i);
    int rc = k == UCRM_KIND_LEADS ? pd_lead_id(ids->ids[i], what, err)
                                  : pd_int_id(ids->ids[i], what, err);
    if (rc != 0)
      return rc;
  }

  for (size_t i = 0; i < ids->n; i++) {
    struct ubuf path;
    ubuf_init(&path, 1024);
    ubuf_puts(&path, prefix);
    int rc = ucrm_path_id(&path, ids->ids[i], err, "id");
    if (rc == 0)
      rc = ucrm_plan_add(plan, "PATCH", ubuf_cstr(&path), pd_body(field, a->entity_id),
                         a->remote_data);
    ubuf_free(&path);
    rc = rc != 0 ? rc : ucrm_plan_link(plan, k, ids->ids[i]);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/*
 * contacts → accounts / organizations: both name the person's one organization, so together
 * they must name a single id.
 */
static int pd_plan_person_org(const struct ucrm_assoc *a, struct ucrm_plan *plan,
                              struct ucrm_err *err) {
  const struct ucrm_ids *acc = &a->kinds[UCRM_KIND_ACCOUNTS];
  const struct ucrm_ids *org = &a->kinds[UCRM_KIND_ORGANIZATIONS];
  int rc = ucrm_single(a, UCRM_KIND_ACCOUNTS, err);
  rc = rc != 0 ? rc : ucrm_single(a, UCRM_KIND_ORGANIZATIONS, err);
  if (rc != 0)
    return rc;
  if (acc->n == 1 && org->n == 1 && strcmp(acc->ids[0], org->ids[0]) != 0)
    return ucrm_err_set(err, 400,
                        "associations.accounts and associations.organizations both "
                        "set the person's one organization: send one id");

  const char *id = acc->n == 1 ? acc->ids[0] : org->ids[0];
  const char *what =
      acc->n == 1 ? "associations.accounts[0].id" : "associations.organizations[0].id";
  rc = pd_int_id(id, what, err);
  if (rc != 0)
    return rc;

  struct ubuf path;
  ubuf_init(&path, 1024);
  ubuf_puts(&path, "/api/v2/persons/");
  rc = ucrm_path_id(&path, a->entity_id, err, "entity_id");
  if (rc == 0)
    rc = ucrm_plan_add(plan, "PATCH", ubuf_cstr(&path), pd_body("org_id", id), a->remote_data);
  ubuf_free(&path);

  for (size_t i = 0; i < a->norder && rc == 0; i++) {
    enum ucrm_kind k = a->order[i];
    if (k == UCRM_KIND_ACCOUNTS || k == UCRM_KIND_ORGANIZATIONS)
      rc = ucrm_plan_link(plan, k, id);
  }
  return rc;
}

static int pd_plan_contact(const struct ucrm_assoc *a, struct ucrm_plan *plan,
                           struct ucrm_err *err) {
  int rc = pd_int_id(a->entity_id, "entity_id", err);
  int org_done = 0;

  for (size_t i = 0; i < a->norder && rc == 0; i++) {
    enum ucrm_kind k = a->order[i];
    if (k == UCRM_KIND_LEADS) {
      rc = pd_plan_each(a, k, "/v1/leads/", "person_id", plan, err);
    } else if (k == UCRM_KIND_OPPORTUNITIES) {
      rc = pd_plan_each(a, k, "/api/v2/deals/", "person_id", plan, err);
    } else if (!org_done) {
      rc = pd_plan_person_org(a, plan, err);
      org_done = 1;
    }
  }
  return rc;
}

static int pd_plan(const struct ucrm_assoc *a, const struct ucrm_account *acct,
                   struct ucrm_plan *plan, struct ucrm_err *err) {
  if (!(ucrm_provider_pipedrive.entities >> a->entity & 1u))
    return ucrm_err_set(err, 400, "unsupported_association: pipedrive does not support entity %s",
                        ucrm_entity_name(a->entity));
  if (a->entity == UCRM_ENT_LEADS)
    return pd_plan_lead(a, plan, err);
  return pd_plan_contact(a, plan, err);
}

static void pd_verdict(const struct ucrm_call *call, long status, const struct jv *body,
                       struct ucrm_verdict *v) {
  ucrm_verdict_from_status(status, v);
  if (v->ok)
    return;

  const struct jv *msg = jv_obj_get(body, "error");
  ucrm_verdict_message(v, "pipedrive", status,
                       msg != NULL && msg->type == JV_STRING ? msg->u.str.s : NULL);
}

static void pd_ratelimit_header(const char *name, const char *value, struct ucrm_ratelimit *rl) {
  long *field = NULL;
  if (strcmp(name, "x-ratelimit-limit") == 0)
    field = &rl->limit;
  else if (strcmp(name, "x-ratelimit-remaining") == 0)
    field = &rl->remaining;
  else if (strcmp(name, "x-ratelimit-reset") == 0)
    field = &rl->reset;

  char *end;
  long n = field != NULL ? strtol(value, &end, 10) : -1;
  if (field != NULL && end != value && n >= 0)
    *field = n;
}

const struct ucrm_provider ucrm_provider_pipedrive = {
    .name = "pipedrive",
    .default_base_url = "https://api.pipedrive.com",
    .entities = 1u << UCRM_ENT_LEADS | 1u << UCRM_ENT_CONTACTS,
    .check_credentials = pd_check_credentials,
    .plan = pd_plan,
    .auth_header = pd_auth_header,
    .verdict = pd_verdict,
    .ratelimit_header = pd_ratelimit_header,
};
