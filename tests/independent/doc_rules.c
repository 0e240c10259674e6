/*
 * doc_rules.c: what each provider documents for the writes unicrm makes, enforced strictly.
 * Routes, schemas and error shapes follow the providers' own references:
 *   Pipedrive  https://developers.pipedrive.com/docs/api/v1/Leads#updateLead,
 *              .../v2/Persons#updatePerson, .../v2/Deals#updateDeal,
 *              https://pipedrive.readme.io/docs/pipedrive-api-v2-migration-guide
 *   Close      https://developer.close.com/openapi.json (UpdateContact, UpdateOpportunity),
 *              https://developer.close.com/api/overview/api-key-authentication
 *   Attio      https://docs.attio.com/rest-api/guides/linking-referenced-records,
 *              https://docs.attio.com/rest-api/attribute-types/attribute-types-record-reference
 *   Salesforce https://developer.salesforce.com/docs/platform/api-rest/guide/dome-update-fields,
 *              .../resources-composite-sobjects-collections-update, .../errorcodes
 * Error message texts are ours; only the shapes and codes are the providers'.
 */
#include "doc_mock.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "harness.h"

enum dm_prov { DM_UNKNOWN, DM_PIPEDRIVE, DM_CLOSE, DM_ATTIO, DM_SALESFORCE };

/* The OAuth tokens harness.c configures besides the H_* credentials of harness.h. */
#define DM_PD_OAUTH "pd-oauth-token"
#define DM_CLOSE_OAUTH "close-oauth-token"
/* "Basic " + base64 of H_CLOSE_KEY ":" and of H_ATTIO_TOKEN ":" (empty passwords). */
#define DM_CLOSE_BASIC "Basic Y2xvc2UtdGVzdC1rZXk6"
#define DM_ATTIO_BASIC "Basic YXR0aW8tdGVzdC10b2tlbjo="

#define DM_SEGS 8
#define DM_SEG_LEN 160

struct dm_path {
  int n; /* -1 when the path has too many or too long segments */
  char s[DM_SEGS][DM_SEG_LEN];
};

/* Splits "/a/b/" into "a", "b", "": a trailing slash shows as a last empty segment. */
static void dm_split(const char *path, struct dm_path *p) {
  p->n = 0;
  if (*path++ != '/') {
    p->n = -1;
    return;
  }
  for (;;) {
    size_t len = strcspn(path, "/");
    if (p->n == DM_SEGS || len >= DM_SEG_LEN) {
      p->n = -1;
      return;
    }
    memcpy(p->s[p->n], path, len);
    p->s[p->n++][len] = '\0';
    if (path[len] == '\0')
      return;
    path += len + 1;
  }
}

static int dm_is(const struct dm_path *p, int i, const char *s) {
  return i < p->n && strcmp(p->s[i], s) == 0;
}

static int dm_is_uuid(const char *s) {
  for (int i = 0; i < 36; i++) {
    int dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
      return 0;
  }
  return s[36] == '\0';
}

static const char dm_alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/* Salesforce ids: 15 case-sensitive or 18 case-insensitive alphanumerics. */
static int dm_is_sfid(const char *s, const char *prefix) {
  size_t n = strspn(s, dm_alnum);
  return (n == 15 || n == 18) && s[n] == '\0' && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Close ids are a type prefix followed by an opaque alphanumeric tail. */
static int dm_is_close_id(const char *s, const char *prefix) {
  size_t n = strlen(prefix);
  return strncmp(s, prefix, n) == 0 && s[n] != '\0' && s[n + strspn(s + n, dm_alnum)] == '\0';
}

static int dm_is_json(const char *ctype) {
  return strncmp(ctype, "application/json", 16) == 0 && (ctype[16] == '\0' || ctype[16] == ';');
}

static yajl_val dm_member(yajl_val obj, const char *key) {
  for (size_t i = 0; YAJL_IS_OBJECT(obj) && i < obj->u.object.len; i++) {
    if (strcmp(obj->u.object.keys[i], key) == 0)
      return obj->u.object.values[i];
  }
  return NULL;
}

static void gs(yajl_gen g, const char *s) {
  yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

/*
 * Emits a run of JSON tokens, one per spec character: s string (also a key), i int, b bool,
 * n null, { } [ ] open and close. Keeps the many small answers below readable.
 */
static void gput(yajl_gen g, const char *spec, ...) {
  va_list ap;
  va_start(ap, spec);
  for (; *spec != '\0'; spec++) {
    switch (*spec) {
    case 's':
      gs(g, va_arg(ap, const char *));
      break;
    case 'i':
      yajl_gen_integer(g, va_arg(ap, int));
      break;
    case 'b':
      yajl_gen_bool(g, va_arg(ap, int));
      break;
    case 'n':
      yajl_gen_null(g);
      break;
    case '{':
      yajl_gen_map_open(g);
      break;
    case '}':
      yajl_gen_map_close(g);
      break;
    case '[':
      yajl_gen_array_open(g);
      break;
    default:
      yajl_gen_array_close(g);
    }
  }
  va_end(ap);
}

/* Writes a parsed value back out; numbers keep their original text. */
static void dm_emit(yajl_gen g, yajl_val v) {
  if (YAJL_IS_STRING(v)) {
    gs(g, v->u.string);
  } else if (YAJL_IS_NUMBER(v)) {
    yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
  } else if (YAJL_IS_OBJECT(v)) {
    yajl_gen_map_open(g);
    for (size_t i = 0; i < v->u.object.len; i++) {
      gs(g, v->u.object.keys[i]);
      dm_emit(g, v->u.object.values[i]);
    }
    yajl_gen_map_close(g);
  } else if (YAJL_IS_ARRAY(v)) {
    yajl_gen_array_open(g);
    for (size_t i = 0; i < v->u.array.len; i++)
      dm_emit(g, v->u.array.values[i]);
    yajl_gen_array_close(g);
  } else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
    yajl_gen_bool(g, YAJL_IS_TRUE(v));
  } else {
    yajl_gen_null(g);
  }
}

/* Emits every member of obj, for echoing the written fields back as the provider does. */
static void dm_emit_members(yajl_gen g, yajl_val obj) {
  for (size_t i = 0; YAJL_IS_OBJECT(obj) && i < obj->u.object.len; i++) {
    gs(g, obj->u.object.keys[i]);
    dm_emit(g, obj->u.object.values[i]);
  }
}

static void dm_finish(yajl_gen g, struct dm_reply *r, int status) {
  const unsigned char *buf;
  size_t len;
  yajl_gen_get_buf(g, &buf, &len);
  r->status = status;
  r->body = malloc(len + 1);
  if (r->body != NULL) {
    memcpy(r->body, buf, len);
    r->body[len] = '\0';
    r->len = len;
  }
  yajl_gen_free(g);
}

static yajl_val dm_parse(const char *body) {
  return yajl_tree_parse(body, NULL, 0);
}

/* ---- Pipedrive ---------------------------------------------------------------------------- */

static void pd_error(struct dm_reply *r, int status, const char *msg) {
  yajl_gen g = yajl_gen_alloc(NULL);
  gput(g, "{sbss", "success", 0, "error", msg);
  if (status == 401)
    gput(g, "si", "errorCode", 401);
  gput(g, "sssnsn}", "error_info", "See the Pipedrive API reference.", "data", "additional_data");
  dm_finish(g, r, status);
}

enum pd_route { PD_NONE, PD_LEAD, PD_PERSON, PD_DEAL };

/* Leads stay on v1 (also /api/v1 on company domains); persons and deals live on /api/v2 only. */
static enum pd_route pd_route(const struct dm_path *p, const char **id) {
  if (p->n == 3 && dm_is(p, 0, "v1") && dm_is(p, 1, "leads")) {
    *id = p->s[2];
    return PD_LEAD;
  }
  if (p->n != 4 || !dm_is(p, 0, "api"))
    return PD_NONE;
  *id = p->s[3];
  if (dm_is(p, 1, "v1") && dm_is(p, 2, "leads"))
    return PD_LEAD;
  if (dm_is(p, 1, "v2") && dm_is(p, 2, "persons"))
    return PD_PERSON;
  if (dm_is(p, 1, "v2") && dm_is(p, 2, "deals"))
    return PD_DEAL;
  return PD_NONE;
}

static int pd_is_int_id(const char *s) {
  size_t n = strspn(s, "0123456789");
  return n > 0 && n <= 18 && s[n] == '\0' && s[0] != '0';
}

/* Reference fields are integers or null; v2 no longer coerces strings to numbers. */
static const char *pd_bad_field(enum pd_route route, yajl_val body) {
  static const char *const lead[] = {"person_id", "organization_id", "owner_id", NULL};
  static const char *const person[] = {"org_id", "owner_id", NULL};
  static const char *const deal[] = {"person_id", "org_id", "owner_id", NULL};
  const char *const *f = route == PD_LEAD ? lead : route == PD_PERSON ? person : deal;
  for (; *f != NULL; f++) {
    yajl_val v = dm_member(body, *f);
    if (v != NULL && !YAJL_IS_NULL(v) && !(YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) > 0))
      return *f;
  }
  return NULL;
}

static void pd_answer(const struct dm_req *q, int authorized, struct dm_reply *r) {
  if (!authorized) {
    pd_error(r, 401, "unauthorized access");
    return;
  }
  struct dm_path p;
  const char *id = NULL;
  dm_split(q->path, &p);
  enum pd_route route = pd_route(&p, &id);
  if (route == PD_NONE || strcmp(q->method, "PATCH") != 0) {
    pd_error(r, 404, "Unknown method .");
    return;
  }
  if (route == PD_LEAD ? !dm_is_uuid(id) : !pd_is_int_id(id)) {
    pd_error(r, 400, "Validation failed: id: not a valid identifier for this resource");
    return;
  }
  if (!dm_is_json(q->ctype)) {
    pd_error(r, 400, "Request body must be sent as application/json");
    return;
  }

  yajl_val body = dm_parse(q->body);
  const char *bad = YAJL_IS_OBJECT(body) ? pd_bad_field(route, body) : NULL;
  yajl_val person = dm_member(body, "person_id"), org = dm_member(body, "organization_id");
  if (!YAJL_IS_OBJECT(body)) {
    pd_error(r, 400, "Validation failed: the body must be a JSON object");
  } else if (bad != NULL) {
    char msg[160];
    snprintf(msg, sizeof(msg), "Validation failed: %s: Expected integer or null", bad);
    pd_error(r, 400, msg);
  } else if (route == PD_LEAD && YAJL_IS_NULL(person) && YAJL_IS_NULL(org)) {
    pd_error(r, 400, "A lead must stay linked to a person or an organization or both");
  } else {
    yajl_gen g = yajl_gen_alloc(NULL);
    gput(g, "{sbs{s", "success", 1, "data", "id");
    if (route == PD_LEAD)
      gs(g, id);
    else
      yajl_gen_number(g, id, strlen(id));
    dm_emit_members(g, body);
    gput(g, "}}");
    dm_finish(g, r, 200);
  }
  yajl_tree_free(body);
}

/* ---- Close -------------------------------------------------------------------------------- */

static void close_error(struct dm_reply *r, int status, const char *msg) {
  yajl_gen g = yajl_gen_alloc(NULL);
  gput(g, "{ss}", "error", msg);
  dm_finish(g, r, status);
}

/* Validation failures: {"errors": [...], "field-errors": {field: message}}. */
static void close_field_error(struct dm_reply *r, const char *field, const char *msg) {
  yajl_gen g = yajl_gen_alloc(NULL);
  if (field == NULL)
    gput(g, "{s[s]s{}}", "errors", msg, "field-errors");
  else
    gput(g, "{s[]s{ss}}", "errors", "field-errors", field, msg);
  dm_finish(g, r, 400);
}

static int dm_in(const char *const *list, const char *s) {
  for (; *list != NULL; list++) {
    if (strcmp(*list, s) == 0)
      return 1;
  }
  return 0;
}

/* A nullable reference to another Close object of the given id prefix. */
static int close_ref_ok(yajl_val v, const char *prefix, int nullable) {
  if (YAJL_IS_NULL(v))
    return nullable;
  return YAJL_IS_STRING(v) && dm_is_close_id(v->u.string, prefix);
}

/*
 * UpdateContact and UpdateOpportunity are both additionalProperties: false, plus custom.* keys
 * whose value is not an object. UpdateOpportunity has no lead_id: an opportunity's lead is set
 * at creation (CreateOpportunity). DOC_MOCK_CLOSE_OPP_LEAD_ID=accept waives that one rule.
 * Returns the offending key and sets *why, or NULL.
 */
static const char *close_bad_field(int is_opp, yajl_val body, const char **why) {
  static const char *const contact[] = {"emails",   "lead_id", "name", "phones",
                                        "timezone", "title",   "urls", NULL};
  static const char *const opp[] = {"attachments", "confidence", "contact_id",   "date_won",
                                    "note",        "note_html",  "status",       "status_id",
                                    "user_id",     "value",      "value_period", NULL};
  const char *waiver = getenv("DOC_MOCK_CLOSE_OPP_LEAD_ID");
  int lead_ok = !is_opp || (waiver != NULL && strcmp(waiver, "accept") == 0);
  for (size_t i = 0; i < body->u.object.len; i++) {
    const char *k = body->u.object.keys[i];
    yajl_val v = body->u.object.values[i];
    int is_lead = strcmp(k, "lead_id") == 0;
    int allowed = is_lead ? lead_ok : dm_in(is_opp ? opp : contact, k);
    if (strncmp(k, "custom.", 7) == 0)
      allowed = !YAJL_IS_OBJECT(v);
    *why = "Unknown field: the update schema does not allow it.";
    if (!allowed)
      return k;
    *why = "Object does not exist.";
    if (is_lead && !close_ref_ok(v, "lead_", !is_opp))
      return k;
    if (strcmp(k, "contact_id") == 0 && !close_ref_ok(v, "cont_", 1))
      return k;
    *why = "Not a valid integer.";
    if ((strcmp(k, "confidence") == 0 || strcmp(k, "value") == 0) && !YAJL_IS_INTEGER(v))
      return k;
  }
  return NULL;
}

static void close_answer(const struct dm_req *q, int authorized, struct dm_reply *r) {
  if (!authorized) {
    close_error(r, 401, "Unauthorized: give the API key as the Basic user, password empty.");
    return;
  }
  struct dm_path p;
  dm_split(q->path, &p);
  int is_opp = dm_is(&p, 2, "opportunity");
  if (p.n != 5 || !dm_is(&p, 0, "api") || !dm_is(&p, 1, "v1") || p.s[4][0] != '\0' ||
      !(is_opp || dm_is(&p, 2, "contact"))) {
    close_error(r, 404, "Not found.");
    return;
  }
  if (strcmp(q->method, "PUT") != 0) {
    close_error(r, 405, "Method not allowed.");
    return;
  }
  if (!dm_is_close_id(p.s[3], is_opp ? "oppo_" : "cont_")) {
    close_error(r, 404, "Object does not exist.");
    return;
  }
  if (!dm_is_json(q->ctype)) {
    close_error(r, 415, "Unsupported media type: send application/json.");
    return;
  }

  yajl_val body = dm_parse(q->body);
  const char *why = NULL;
  const char *bad = YAJL_IS_OBJECT(body) ? close_bad_field(is_opp, body, &why) : NULL;
  if (!YAJL_IS_OBJECT(body)) {
    close_field_error(r, NULL, "The request body must be a JSON object.");
  } else if (bad != NULL) {
    close_field_error(r, bad, why);
  } else {
    yajl_gen g = yajl_gen_alloc(NULL);
    gput(g, "{ssss", "id", p.s[3], "organization_id", "orga_docmock");
    dm_emit_members(g, body);
    gput(g, "}");
    dm_finish(g, r, 200);
  }
  yajl_tree_free(body);
}

/* ---- Attio -------------------------------------------------------------------------------- */

static void attio_error(struct dm_reply *r, int status, const char *type, const char *code,
                        const char *msg) {
  yajl_gen g = yajl_gen_alloc(NULL);
  gput(g, "{sissssss}", "status_code", status, "type", type, "code", code, "message", msg);
  dm_finish(g, r, status);
}

/* The standard record-reference attributes of people, companies and deals. */
struct attio_ref {
  const char *object, *slug, *target;
  int multi;
};

static const struct attio_ref attio_refs[] = {
    {"people", "company", "companies", 0},       {"people", "associated_deals", "deals", 1},
    {"companies", "team", "people", 1},          {"companies", "associated_deals", "deals", 1},
    {"deals", "associated_people", "people", 1}, {"deals", "associated_company", "companies", 0},
};
#define ATTIO_NREFS (sizeof(attio_refs) / sizeof(attio_refs[0]))

/* Returns the attribute, or NULL; *foreign is set when the slug belongs to another object. */
static const struct attio_ref *attio_find(const char *object, const char *slug, int *foreign) {
  *foreign = 0;
  for (size_t i = 0; i < ATTIO_NREFS; i++) {
    if (strcmp(attio_refs[i].slug, slug) != 0)
      continue;
    if (strcmp(attio_refs[i].object, object) == 0) {
      *foreign = 0;
      return &attio_refs[i];
    }
    *foreign = 1;
  }
  return NULL;
}

/* One value by id or by a matching attribute; by id, the id must be a record UUID. */
static const char *attio_bad_ref(const struct attio_ref *a, yajl_val v) {
  yajl_val target = dm_member(v, "target_object"), id = dm_member(v, "target_record_id");
  if (!YAJL_IS_OBJECT(v))
    return "a record-reference value must be an object";
  if (!YAJL_IS_STRING(target) || strcmp(target->u.string, a->target) != 0)
    return "target_object does not name the object this attribute references";
  if (id != NULL && !(YAJL_IS_STRING(id) && dm_is_uuid(id->u.string)))
    return "target_record_id must be a record UUID";
  if (id == NULL && v->u.object.len < 2)
    return "give target_record_id or a matching attribute";
  return NULL;
}

static const char *attio_bad_value(const struct attio_ref *a, yajl_val v) {
  if (YAJL_IS_NULL(v))
    return NULL;
  if (!YAJL_IS_ARRAY(v))
    return attio_bad_ref(a, v);
  if (!a->multi && v->u.array.len > 1)
    return "this attribute is single-valued: give at most one value";
  for (size_t i = 0; i < v->u.array.len; i++) {
    const char *why = attio_bad_ref(a, v->u.array.values[i]);
    if (why != NULL)
      return why;
  }
  return NULL;
}

static void attio_ok(const char *object, const char *id, yajl_val values, struct dm_reply *r) {
  char url[2 * DM_SEG_LEN + 64];
  snprintf(url, sizeof(url), "https://app.attio.com/doc-mock/%s/%s", object, id);
  yajl_gen g = yajl_gen_alloc(NULL);
  gput(g, "{s{s{ssssss}sssss", "data", "id", "workspace_id", "14beef7a-99f7-4534-a87e-70b564330a4c",
       "object_id", "97052eb9-e65e-443f-a297-f2d9a4a7f795", "record_id", id, "created_at",
       "2025-01-01T00:00:00.000000000Z", "web_url", url, "values");
  dm_emit(g, values);
  gput(g, "}}");
  dm_finish(g, r, 200);
}

/* Checks {"data":{"values":{...}}}; answers and returns 0 on the first violation. */
static int attio_check(const char *object, yajl_val body, struct dm_reply *r) {
  yajl_val values = dm_member(dm_member(body, "data"), "values");
  if (!YAJL_IS_OBJECT(values)) {
    attio_error(r, 400, "invalid_request_error", "validation_type",
                "Body payload validation error: expected {\"data\":{\"values\":{...}}}");
    return 0;
  }
  for (size_t i = 0; i < values->u.object.len; i++) {
    int foreign;
    const char *slug = values->u.object.keys[i];
    const struct attio_ref *a = attio_find(object, slug, &foreign);
    const char *why = a != NULL ? attio_bad_value(a, values->u.object.values[i]) : NULL;
    char msg[256];
    if (foreign) {
      snprintf(msg, sizeof(msg), "Cannot find attribute with slug \"%s\" on %s.", slug, object);
      attio_error(r, 404, "invalid_request_error", "not_found", msg);
      return 0;
    }
    if (why != NULL) {
      snprintf(msg, sizeof(msg), "Invalid value for attribute \"%s\": %s.", slug, why);
      attio_error(r, 400, "invalid_request_error", "validation_type", msg);
      return 0;
    }
  }
  return 1;
}

static void attio_answer(const struct dm_req *q, int authorized, struct dm_reply *r) {
  if (!authorized) {
    attio_error(r, 401, "auth_error", "unauthorized", "Authentication failed.");
    return;
  }
  struct dm_path p;
  dm_split(q->path, &p);
  const char *object = p.s[2];
  int known = dm_is(&p, 2, "companies") || dm_is(&p, 2, "people") || dm_is(&p, 2, "deals");
  /* PUT is documented too but overwrites multiselect values; the caller's test flags it. */
  int write = strcmp(q->method, "PATCH") == 0 || strcmp(q->method, "PUT") == 0;
  if (p.n != 5 || !dm_is(&p, 0, "v2") || !dm_is(&p, 1, "objects") || !dm_is(&p, 3, "records") ||
      !known || !write) {
    attio_error(r, 404, "invalid_request_error", "not_found", "Route not found.");
    return;
  }
  if (!dm_is_uuid(p.s[4])) {
    attio_error(r, 400, "invalid_request_error", "validation_type", "record_id must be a UUID.");
    return;
  }
  if (!dm_is_json(q->ctype)) {
    attio_error(r, 400, "invalid_request_error", "validation_type",
                "Content-Type must be application/json.");
    return;
  }
  yajl_val body = dm_parse(q->body);
  if (attio_check(object, body, r))
    attio_ok(object, p.s[4], dm_member(dm_member(body, "data"), "values"), r);
  yajl_tree_free(body);
}

/* ---- Salesforce --------------------------------------------------------------------------- */

static const char sf_limit_header[] = "Sforce-Limit-Info: api-usage=18/15000\r\n";

static void sf_error_item(yajl_gen g, const char *code_key, const char *code, const char *msg,
                          const char *field) {
  gput(g, "{sssss[", code_key, code, "message", msg, "fields");
  if (field != NULL)
    gs(g, field);
  gput(g, "]}");
}

/* Top-level REST errors are an array of {message, errorCode, fields}. */
static void sf_error(struct dm_reply *r, int status, const char *code, const char *msg,
                     const char *field) {
  yajl_gen g = yajl_gen_alloc(NULL);
  gput(g, "[");
  sf_error_item(g, "errorCode", code, msg, field);
  gput(g, "]");
  dm_finish(g, r, status);
  r->headers = sf_limit_header;
}

/* AccountId must be an Account id (key prefix 001) or null. */
static int sf_account_ok(yajl_val rec) {
  yajl_val v = dm_member(rec, "AccountId");
  return v == NULL || YAJL_IS_NULL(v) || (YAJL_IS_STRING(v) && dm_is_sfid(v->u.string, "001"));
}

/* vNN.N, e.g. v62.0. */
static int sf_version_ok(const char *v) {
  unsigned major, minor;
  int end = 0;
  return sscanf(v, "v%2u.%1u%n", &major, &minor, &end) == 2 && v[end] == '\0' &&
         isdigit((unsigned char)v[1]);
}

static void sf_update_one(const char *id, yajl_val body, struct dm_reply *r) {
  if (!dm_is_sfid(id, "006")) {
    sf_error(r, 404, "NOT_FOUND", "The requested resource does not exist", NULL);
  } else if (!YAJL_IS_OBJECT(body)) {
    sf_error(r, 400, "JSON_PARSER_ERROR", "The body must be one JSON object", NULL);
  } else if (!sf_account_ok(body)) {
    sf_error(r, 400, "FIELD_INTEGRITY_EXCEPTION", "Account ID: id value of incorrect type",
             "AccountId");
  } else {
    r->status = 204;
    r->headers = sf_limit_header;
  }
}

/* Well-formed collections: one per-record result each, in order, with statusCode keys. */
static void sf_collection_results(yajl_val records, int all_or_none, struct dm_reply *r) {
  int failed = 0;
  for (size_t i = 0; i < records->u.array.len; i++)
    failed |= !sf_account_ok(records->u.array.values[i]);

  yajl_gen g = yajl_gen_alloc(NULL);
  gput(g, "[");
  for (size_t i = 0; i < records->u.array.len; i++) {
    yajl_val rec = records->u.array.values[i];
    int bad = !sf_account_ok(rec);
    int ok = !bad && !(failed && all_or_none);
    gput(g, "{sssbs[", "id", dm_member(rec, "id")->u.string, "success", ok, "errors");
    if (bad)
      sf_error_item(g, "statusCode", "FIELD_INTEGRITY_EXCEPTION",
                    "Account ID: id value of incorrect type", "AccountId");
    else if (!ok)
      sf_error_item(g, "statusCode", "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "Record rolled back because not all records were valid and the request "
                    "was using AllOrNone header",
                    NULL);
    gput(g, "]}");
  }
  gput(g, "]");
  dm_finish(g, r, 200);
  r->headers = sf_limit_header;
}

/* A malformed collection request (not a per-record failure) is a 400 for the whole call. */
static const char *sf_bad_collection(yajl_val body, const char **code) {
  yajl_val records = dm_member(body, "records"), aon = dm_member(body, "allOrNone");
  *code = "JSON_PARSER_ERROR";
  if (!YAJL_IS_OBJECT(body) || !YAJL_IS_ARRAY(records) || records->u.array.len == 0)
    return "records: a non-empty array is required";
  if (aon != NULL && !YAJL_IS_TRUE(aon) && !YAJL_IS_FALSE(aon))
    return "allOrNone must be a boolean";
  for (size_t i = 0; i < body->u.object.len; i++) {
    const char *k = body->u.object.keys[i];
    if (strcmp(k, "records") != 0 && strcmp(k, "allOrNone") != 0)
      return "Unrecognized field in the collection request";
  }
  *code = "EXCEEDED_ID_LIMIT";
  if (records->u.array.len > 200)
    return "record limit reached: no more than 200 records per call";
  for (size_t i = 0; i < records->u.array.len; i++) {
    yajl_val rec = records->u.array.values[i];
    yajl_val type = dm_member(dm_member(rec, "attributes"), "type");
    yajl_val id = dm_member(rec, "id");
    *code = "INVALID_TYPE";
    if (!YAJL_IS_STRING(type))
      return "every record needs an attributes map with a type";
    *code = "MALFORMED_ID";
    if (!YAJL_IS_STRING(id) || !dm_is_sfid(id->u.string, ""))
      return "every record needs an id of 15 or 18 alphanumerics";
  }
  return NULL;
}

static void sf_answer(const struct dm_req *q, int authorized, struct dm_reply *r) {
  if (!authorized) {
    sf_error(r, 401, "INVALID_SESSION_ID", "Session expired or invalid", NULL);
    return;
  }
  struct dm_path p;
  dm_split(q->path, &p);
  int base = p.n >= 3 && dm_is(&p, 0, "services") && dm_is(&p, 1, "data") && sf_version_ok(p.s[2]);
  int one = base && p.n == 6 && dm_is(&p, 3, "sobjects") && dm_is(&p, 4, "Opportunity");
  int many = base && p.n == 5 && dm_is(&p, 3, "composite") && dm_is(&p, 4, "sobjects");
  if (!one && !many) {
    sf_error(r, 404, "NOT_FOUND", "The requested resource does not exist", NULL);
    return;
  }
  if (strcmp(q->method, "PATCH") != 0) {
    sf_error(r, 405, "METHOD_NOT_ALLOWED", "This resource is updated with PATCH", NULL);
    return;
  }
  if (!dm_is_json(q->ctype)) {
    sf_error(r, 415, "UNSUPPORTED_MEDIA_TYPE", "Send the body as application/json", NULL);
    return;
  }

  yajl_val body = dm_parse(q->body);
  const char *code = NULL, *why = NULL;
  if (one) {
    sf_update_one(p.s[5], body, r);
  } else if ((why = sf_bad_collection(body, &code)) != NULL) {
    sf_error(r, 400, code, why, NULL);
  } else {
    sf_collection_results(dm_member(body, "records"), YAJL_IS_TRUE(dm_member(body, "allOrNone")),
                          r);
  }
  yajl_tree_free(body);
}

/* ---- Choosing the provider ---------------------------------------------------------------- */

static enum dm_prov dm_by_path(const char *path) {
  if (strncmp(path, "/services/", 10) == 0)
    return DM_SALESFORCE;
  if (strncmp(path, "/api/v1/", 8) == 0)
    return DM_CLOSE;
  if (strncmp(path, "/v1/", 4) == 0 || strncmp(path, "/api/v2/", 8) == 0)
    return DM_PIPEDRIVE;
  if (strncmp(path, "/v2/", 4) == 0)
    return DM_ATTIO;
  return DM_UNKNOWN;
}

static enum dm_prov dm_by_bearer(const char *tok) {
  if (strcmp(tok, DM_PD_OAUTH) == 0)
    return DM_PIPEDRIVE;
  if (strcmp(tok, DM_CLOSE_OAUTH) == 0)
    return DM_CLOSE;
  if (strcmp(tok, H_ATTIO_TOKEN) == 0)
    return DM_ATTIO;
  if (strcmp(tok, H_SF_TOKEN) == 0)
    return DM_SALESFORCE;
  return DM_UNKNOWN;
}

/*
 * Close and Attio take HTTP Basic with the key or token as user and an empty password. An API
 * token sent as Bearer is refused by Pipedrive; so is anything this mock does not know.
 */
static enum dm_prov dm_identify(const struct dm_req *q, int *authorized) {
  enum dm_prov by_cred = DM_UNKNOWN;
  if (q->api_token[0] != '\0') {
    *authorized = strcmp(q->api_token, H_PD_TOKEN) == 0;
    return DM_PIPEDRIVE;
  }
  if (strncmp(q->auth, "Bearer ", 7) == 0)
    by_cred = dm_by_bearer(q->auth + 7);
  else if (strcmp(q->auth, DM_CLOSE_BASIC) == 0)
    by_cred = DM_CLOSE;
  else if (strcmp(q->auth, DM_ATTIO_BASIC) == 0)
    by_cred = DM_ATTIO;
  *authorized = by_cred != DM_UNKNOWN;
  return by_cred != DM_UNKNOWN ? by_cred : dm_by_path(q->path);
}

void dm_rules_answer(const struct dm_req *q, struct dm_reply *r) {
  int authorized;
  memset(r, 0, sizeof(*r));
  switch (dm_identify(q, &authorized)) {
  case DM_PIPEDRIVE:
    pd_answer(q, authorized, r);
    break;
  case DM_CLOSE:
    close_answer(q, authorized, r);
    break;
  case DM_ATTIO:
    attio_answer(q, authorized, r);
    break;
  case DM_SALESFORCE:
    sf_answer(q, authorized, r);
    break;
  default:
    r->status = 404;
    r->body = strdup("{\"error\":\"no documented provider route\"}");
    r->len = r->body != NULL ? strlen(r->body) : 0;
  }
}
