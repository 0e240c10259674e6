/*
 * Salesforce: base_url is the org's instance URL. One opportunity is a PATCH that answers 204
 * with no body; several go in one sObject Collections PATCH with allOrNone, which answers 200
 * even when records fail, so its per-record results are read one by one. The daily API limit
 * is a 403 REQUEST_LIMIT_EXCEEDED, not a 429.
 * https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-sobjects-collections-update.html
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provider.h"

#define SF_DEFAULT_VERSION "v62.0"
#define SF_COLLECTION_MAX 200 /* records per sObject Collections request */

static int sf_version_ok(const char *v) {
  size_t major = strspn(v + 1, "0123456789");
  return v[0] == 'v' && major > 0 && v[1 + major] == '.' &&
         strspn(v + 2 + major, "0123456789") > 0 &&
         v[2 + major + strspn(v + 2 + major, "0123456789")] == '\0';
}

static int sf_check_credentials(const struct ucrm_credentials *c, const char *prefix, char *err,
                                size_t errlen) {
  int can_refresh = c->refresh_token && c->client_id && c->client_secret;
  if (c->access_token == NULL && !can_refresh)
    snprintf(err, errlen,
             "config key '%s.credentials.access_token' is required for salesforce "
             "(or refresh_token, client_id and client_secret)",
             prefix);
  else if (c->refresh_token && !can_refresh)
    snprintf(err, errlen,
             "config key '%s.credentials.refresh_token' needs client_id and "
             "client_secret beside it",
             prefix);
  else if (c->api_version != NULL && !sf_version_ok(c->api_version))
    snprintf(err, errlen, "config key '%s.credentials.api_version' must look like \"v62.0\"",
             prefix);
  else if (c->token_url != NULL && strncmp(c->token_url, "https://", 8) != 0 &&
           strncmp(c->token_url, "http://", 7) != 0)
    snprintf(err, errlen, "config key '%s.credentials.token_url' must be an http(s) URL", prefix);
  else
    return 0;
  return UCRM_EINVAL;
}

static int sf_auth_header(const struct ucrm_account *acct, struct ubuf *out) {
  return ucrm_auth_bearer(out, acct->cred.access_token != NULL ? acct->cred.access_token : "");
}

static int sf_id(const char *id, const char *what, struct ucrm_err *err) {
  size_t n = strlen(id);
  for (size_t i = 0; i < n; i++) {
    if (!isalnum((unsigned char)id[i]))
      n = 0;
  }
  if (n != 15 && n != 18)
    return ucrm_err_set(err, 400, "%s must be a Salesforce id (15 or 18 letters and digits)", what);
  return 0;
}

static const char *sf_version(const struct ucrm_account *acct) {
  return acct->cred.api_version != NULL ? acct->cred.api_version : SF_DEFAULT_VERSION;
}

static struct jv *sf_account_body(const char *account_id) {
  struct jv *body = jv_new(JV_OBJECT);
  if (body != NULL &&
      jv_obj_set(body, "AccountId", jv_new_string(account_id, strlen(account_id))) != 0) {
    jv_free(body);
    return NULL;
  }
  return body;
}

static int sf_patch_one(struct ucrm_plan *plan, const struct ucrm_account *acct, const char *opp,
                        const char *account_id, const struct jv *remote_data,
                        struct ucrm_err *err) {
  struct ubuf path;
  ubuf_init(&path, 1024);
  ubuf_printf(&path, "/services/data/%s/sobjects/Opportunity/", sf_version(acct));
  int rc = ucrm_path_id(&path, opp, err, "id");
  if (rc == 0)
    rc = ucrm_plan_add(plan, "PATCH", ubuf_cstr(&path), sf_account_body(account_id), remote_data);
  ubuf_free(&path);
  return rc;
}

/* One record of a collection; remote_data merges into each record, not the envelope. */
static struct jv *sf_record(struct ucrm_plan *plan, const char *opp, const char *account_id,
                            const struct jv *rd) {
  struct jv *rec = jv_new(JV_OBJECT);
  struct jv *attrs = jv_new(JV_OBJECT);
  int rc = rec && attrs ? 0 : UCRM_ENOMEM;
  rc = rc != 0 ? rc : jv_obj_set(attrs, "type", jv_new_string("Opportunity", 11));
  rc = rc != 0 ? rc : jv_obj_set(rec, "attributes", attrs);
  attrs = NULL;
  rc = rc != 0 ? rc : jv_obj_set(rec, "id", jv_new_string(opp, strlen(opp)));
  rc = rc != 0 ? rc : jv_obj_set(rec, "AccountId", jv_new_string(account_id, strlen(account_id)));
  rc = rc != 0 ? rc : ucrm_merge_remote(plan, rec, rd);
  jv_free(attrs);
  if (rc != 0) {
    jv_free(rec);
    return NULL;
  }
  return rec;
}

static int sf_collection(struct ucrm_plan *plan, const struct ucrm_account *acct,
                         const struct ucrm_assoc *a, size_t from, size_t n) {
  const struct ucrm_ids *opps = &a->kinds[UCRM_KIND_OPPORTUNITIES];
  struct jv *body = jv_new(JV_OBJECT);
  struct jv *records = jv_new(JV_ARRAY);
  int rc = body && records ? jv_obj_set(body, "allOrNone", jv_new(JV_TRUE)) : UCRM_ENOMEM;
  for (size_t i = from; i < from + n && rc == 0; i++)
    rc = jv_arr_push(records, sf_record(plan, opps->ids[i], a->entity_id, a->remote_data));
  rc = rc != 0 ? rc : jv_obj_set(body, "records", records);
  records = NULL;
  jv_free(records);

  char path[128];
  snprintf(path, sizeof(path), "/services/data/%s/composite/sobjects", sf_version(acct));
  if (rc != 0) {
    jv_free(body);
    return rc;
  }
  /* remote_data is already inside each record. */
  rc = ucrm_plan_add(plan, "PATCH", path, body, NULL);
  if (rc == 0)
    plan->calls[plan->n - 1].reply_checked = 1;
  for (size_t i = from; i < from + n && rc == 0; i++)
    rc = ucrm_plan_link(plan, UCRM_KIND_OPPORTUNITIES, opps->ids[i]);
  return rc;
}

static int sf_plan_account(const struct ucrm_assoc *a, const struct ucrm_account *acct,
                           struct ucrm_plan *plan, struct ucrm_err *err) {
  const struct ucrm_ids *opps = &a->kinds[UCRM_KIND_OPPORTUNITIES];
  int rc = sf_id(a->entity_id, "entity_id", err);
  for (size_t i = 0; i < opps->n && rc == 0; i++) {
    char what[64];
    snprintf(what, sizeof(what), "associations.opportunities[%zu].id", i);
    rc = sf_id(opps->ids[i], what, err);
  }
  if (rc != 0)
    return rc;

  if (opps->n == 1) {
    rc = sf_patch_one(plan, acct, opps->ids[0], a->entity_id, a->remote_data, err);
    return rc != 0 ? rc : ucrm_plan_link(plan, UCRM_KIND_OPPORTUNITIES, opps->ids[0]);
  }

  for (size_t from = 0; from < opps->n && rc == 0; from += SF_COLLECTION_MAX) {
    size_t n = opps->n - from < SF_COLLECTION_MAX ? opps->n - from : SF_COLLECTION_MAX;
    rc = sf_collection(plan, acct, a, from, n);
  }
  return rc;
}

static int sf_plan(const struct ucrm_assoc *a, const struct ucrm_account *acct,
                   struct ucrm_plan *plan, struct ucrm_err *err) {
  if (!(ucrm_provider_salesforce.entities >> a->entity & 1u))
    return ucrm_err_set(err, 400, "unsupported_association: salesforce does not support entity %s",
                        ucrm_entity_name(a->entity));
  if (a->entity == UCRM_ENT_ACCOUNTS)
    return sf_plan_account(a, acct, plan, err);

  if (a->kinds[UCRM_KIND_LEADS].n > 0)
    return ucrm_unsupported("salesforce", a->entity, UCRM_KIND_LEADS, err);

  const struct ucrm_ids *orgs = &a->kinds[UCRM_KIND_ORGANIZATIONS];
  int rc = sf_id(a->entity_id, "entity_id", err);
  rc = rc != 0 ? rc : ucrm_single(a, UCRM_KIND_ORGANIZATIONS, err);
  rc = rc != 0 ? rc : sf_id(orgs->ids[0], "associations.organizations[0].id", err);
  rc = rc != 0 ? rc : sf_patch_one(plan, acct, a->entity_id, orgs->ids[0], a->remote_data, err);
  return rc != 0 ? rc : ucrm_plan_link(plan, UCRM_KIND_ORGANIZATIONS, orgs->ids[0]);
}

static const char *sf_str(const struct jv *obj, const char *key) {
  const struct jv *v = jv_obj_get(obj, key);
  return v != NULL && v->type == JV_STRING ? v->u.str.s : NULL;
}

/* A top-level error is an array of {message, errorCode}; reads the first one. */
static void sf_error(long status, const struct jv *body, struct ucrm_verdict *v) {
  const struct jv *first =
      body != NULL && body->type == JV_ARRAY && body->u.arr.n > 0 ? body->u.arr.items[0] : NULL;
  const char *code = sf_str(first, "errorCode");
  const char *msg = sf_str(first, "message");

  if (status == 403 && code != NULL && strcmp(code, "REQUEST_LIMIT_EXCEEDED") == 0) {
    v->status = 429;
    v->retryable = 0; /* the daily allocation does not come back within a request */
  }
  if (status == 401 && code != NULL && strcmp(code, "INVALID_SESSION_ID") == 0)
    v->refresh_token = 1;

  char text[200];
  snprintf(text, sizeof(text), "%s%s%s", code != NULL ? code : "", code && msg ? ": " : "",
           msg != NULL ? msg : "");
  ucrm_verdict_message(v, "salesforce", status, text);
}

/*
 * A collection answers 200 with one result per record in order. Any record that did not
 * succeed fails the call; the first real error (not the rollback notice) is reported.
 */
static void sf_collection_verdict(const struct ucrm_call *call, const struct jv *body,
                                  struct ucrm_verdict *v) {
  int complete = body != NULL && body->type == JV_ARRAY && body->u.arr.n == call->nlinks;
  v->per_link = v->link_ok != NULL;
  const char *first_code = NULL;
  const char *first_msg = NULL;

  for (size_t i = 0; i < call->nlinks; i++) {
    const struct jv *r = complete ? body->u.arr.items[i] : NULL;
    const struct jv *ok = jv_obj_get(r, "success");
    int applied = ok != NULL && ok->type == JV_TRUE;
    if (v->link_ok != NULL)
      v->link_ok[i] = (unsigned char)applied;
    if (applied)
      continue;

    v->ok = 0;
    const struct jv *errs = jv_obj_get(r, "errors");
    const struct jv *e =
        errs && errs->type == JV_ARRAY && errs->u.arr.n ? errs->u.arr.items[0] : NULL;
    const char *code = sf_str(e, "statusCode");
    if (code != NULL &&
        (first_code == NULL || strcmp(first_code, "ALL_OR_NONE_OPERATION_ROLLED_BACK") == 0)) {
      first_code = code;
      first_msg = sf_str(e, "message");
    }
  }

  if (v->ok)
    return;
  v->status = 422;
  char text[200];
  snprintf(text, sizeof(text), "record failed in a collection: %s%s%s",
           first_code != NULL ? first_code : "malformed result", first_msg ? ": " : "",
           first_msg != NULL ? first_msg : "");
  ucrm_verdict_message(v, "salesforce", 200, text);
}

static void sf_verdict(const struct ucrm_call *call, long status, const struct jv *body,
                       struct ucrm_verdict *v) {
  ucrm_verdict_from_status(status, v);

  if (!v->ok) {
    sf_error(status, body, v);
    return;
  }
  if (strstr(call->path, "/composite/sobjects") != NULL)
    sf_collection_verdict(call, body, v);
}

/* "Sforce-Limit-Info: api-usage=18/15000" gives used and total for the org's day. */
static void sf_ratelimit_header(const char *name, const char *value, struct ucrm_ratelimit *rl) {
  if (strcmp(name, "sforce-limit-info") != 0)
    return;

  const char *p = strstr(value, "api-usage=");
  long used, limit;
  if (p != NULL && sscanf(p + 10, "%ld/%ld", &used, &limit) == 2 && used >= 0 && limit > 0) {
    rl->limit = limit;
    rl->remaining = used < limit ? limit - used : 0;
  }
}

#define SF_DEFAULT_TOKEN_URL "https://login.salesforce.com/services/oauth2/token"

static int sf_form_pair(struct ubuf *form, const char *k, const char *v) {
  int rc = form->len > 0 ? ubuf_putc(form, '&') : 0;
  rc = rc != 0 ? rc : ubuf_puts(form, k);
  rc = rc != 0 ? rc : ubuf_putc(form, '=');
  return rc != 0 ? rc : ubuf_append_pct(form, v, strlen(v));
}

/* The OAuth refresh-token grant, form-encoded. */
static int sf_refresh_request(const struct ucrm_account *acct, struct ubuf *url,
                              struct ubuf *form) {
  const struct ucrm_credentials *c = &acct->cred;
  if (c->refresh_token == NULL || c->client_id == NULL || c->client_secret == NULL)
    return UCRM_EINVAL;

  int rc = ubuf_puts(url, c->token_url != NULL ? c->token_url : SF_DEFAULT_TOKEN_URL);
  rc = rc != 0 ? rc : sf_form_pair(form, "grant_type", "refresh_token");
  rc = rc != 0 ? rc : sf_form_pair(form, "refresh_token", c->refresh_token);
  rc = rc != 0 ? rc : sf_form_pair(form, "client_id", c->client_id);
  return rc != 0 ? rc : sf_form_pair(form, "client_secret", c->client_secret);
}

/*
 * A refresh answers access_token and instance_url (no expiry: the token lives as long as the
 * org's session). The instance URL is taken too, as Salesforce may move an org.
 */
static int sf_refresh_reply(struct ucrm_account *acct, const struct jv *body) {
  const char *token = sf_str(body, "access_token");
  const char *instance = sf_str(body, "instance_url");
  if (token == NULL || token[0] == '\0' || strpbrk(token, "\r\n") != NULL)
    return UCRM_EINVAL;

  char *t = strdup(token);
  if (t == NULL)
    return UCRM_ENOMEM;
  free(acct->cred.access_token);
  acct->cred.access_token = t;

  int web = instance != NULL &&
            (strncmp(instance, "https://", 8) == 0 || strncmp(instance, "http://", 7) == 0);
  if (web && strpbrk(instance, " \r\n?#") == NULL) {
    size_t n = strlen(instance);
    while (n > 0 && instance[n - 1] == '/')
      n--;
    char *u = strndup(instance, n);
    if (u != NULL) {
      free(acct->base_url);
      acct->base_url = u;
    }
  }
  return 0;
}

const struct ucrm_provider ucrm_provider_salesforce = {
    .name = "salesforce",
    .default_base_url = NULL,
    .entities = 1u << UCRM_ENT_ACCOUNTS | 1u << UCRM_ENT_OPPORTUNITIES,
    .check_credentials = sf_check_credentials,
    .plan = sf_plan,
    .auth_header = sf_auth_header,
    .verdict = sf_verdict,
    .ratelimit_header = sf_ratelimit_header,
    .refresh_request = sf_refresh_request,
    .refresh_reply = sf_refresh_reply,
};
