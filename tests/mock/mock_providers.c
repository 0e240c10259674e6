/*
 * mock_providers.c: the write endpoints of Pipedrive, Close and Attio (Salesforce has its own
 * file). Each handler runs after authentication, validates like the provider does, stores
 * what a successful write changed and answers in the provider's shape (reference:
 * providers.md sections 3 to 5).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

/* ---- shared helpers ---- */

static int mock_is_uuid(const char *s) {
  if (strlen(s) != 36)
    return 0;
  for (int i = 0; i < 36; i++) {
    int dash = i == 8 || i == 13 || i == 18 || i == 23;

    if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
      return 0;
  }
  return 1;
}

/* A positive integer that is also a valid JSON number (no leading zero) and fits int64. */
static int mock_is_int_id(const char *s) {
  size_t n = strlen(s);

  if (n == 0 || n > 18 || s[0] == '0')
    return 0;
  for (size_t i = 0; i < n; i++) {
    if (!isdigit((unsigned char)s[i]))
      return 0;
  }
  return 1;
}

static const char *mock_json_type(yajl_val v) {
  if (YAJL_IS_STRING(v))
    return "string";
  if (YAJL_IS_NUMBER(v))
    return "number";
  if (YAJL_IS_OBJECT(v))
    return "object";
  if (YAJL_IS_ARRAY(v))
    return "array";
  if (YAJL_IS_NULL(v))
    return "null";
  return "boolean";
}

/* The body as a JSON object, or NULL (nothing to free) when it is anything else. */
static yajl_val mock_body_object(const struct mock_req *req) {
  yajl_val v = mock_json_parse(req->body.data, req->body.len);

  if (v != NULL && !YAJL_IS_OBJECT(v)) {
    yajl_tree_free(v);
    return NULL;
  }
  return v;
}

/* Parsing a template costs more than the rest of a request, so each is parsed only once. */
static yajl_val mock_template(struct mock_ctx *ctx, const char *text) {
  for (size_t i = 0; i < ctx->ntmpls; i++) {
    if (ctx->tmpls[i].text == text)
      return ctx->tmpls[i].parsed;
  }

  /* The templates are the fixed texts below, fewer than MOCK_MAX_TMPLS. */
  if (ctx->ntmpls == MOCK_MAX_TMPLS) {
    mock_log("error", "msg=template_cache_full");
    abort();
  }

  yajl_val parsed = mock_json_parse(text, strlen(text));
  ctx->tmpls[ctx->ntmpls++] = (struct mock_tmpl){text, parsed};
  return parsed;
}

/*
 * Emits a record: "id" from the path, then the template's members in order with each value
 * taken from the stored record when it has one, then stored fields the template lacks. So a
 * response shows everything written to the record so far, as the real APIs do.
 */
static void mock_gen_record(yajl_gen g, yajl_val tmpl, const char *id, int id_is_int,
                            const struct mock_record *rec) {
  yajl_gen_map_open(g);
  mock_gen_str(g, "id");
  if (id_is_int)
    yajl_gen_number(g, id, strlen(id));
  else
    mock_gen_str(g, id);
  for (size_t i = 0; tmpl != NULL && i < tmpl->u.object.len; i++) {
    yajl_val stored = mock_record_field(rec, tmpl->u.object.keys[i]);

    mock_gen_str(g, tmpl->u.object.keys[i]);
    mock_gen_val(g, stored ? stored : tmpl->u.object.values[i]);
  }
  for (size_t i = 0; rec != NULL && i < rec->nfields; i++) {
    const char *name = rec->fields[i].name;

    if (strcmp(name, "id") != 0 && mock_obj_get(tmpl, name) == NULL) {
      mock_gen_str(g, name);
      mock_gen_val(g, rec->fields[i].value);
    }
  }
  yajl_gen_map_close(g);
}

/* ---- Pipedrive ---- */

static const char mock_pd_lead[] =
    "{\"title\":\"Mock lead\",\"owner_id\":1,\"creator_id\":1,\"label_ids\":[],"
    "\"person_id\":null,\"organization_id\":null,\"source_name\":\"API\",\"origin\":\"API\","
    "\"origin_id\":null,\"channel\":null,\"channel_id\":null,\"source_deal_id\":null,"
    "\"is_archived\":false,\"was_seen\":false,\"value\":null,\"expected_close_date\":null,"
    "\"next_activity_id\":null,\"add_time\":\"2025-05-01T10:00:00.000Z\","
    "\"update_time\":\"2025-05-02T10:00:00.000Z\",\"visible_to\":\"3\","
    "\"cc_email\":\"mock+lead@pipedrivemail.com\"}";

static const char mock_pd_person[] =
    "{\"name\":\"Mock Person\",\"first_name\":\"Mock\",\"last_name\":\"Person\","
    "\"owner_id\":1,\"org_id\":null,"
    "\"emails\":[{\"value\":\"mock@example.test\",\"primary\":true,\"label\":\"work\"}],"
    "\"phones\":[],\"add_time\":\"2024-01-10T09:00:00Z\","
    "\"update_time\":\"2025-05-02T10:00:00Z\",\"is_deleted\":false,\"visible_to\":3,"
    "\"label_ids\":[],\"picture_id\":null,\"custom_fields\":{}}";

static const char mock_pd_deal[] =
    "{\"title\":\"Mock deal\",\"creator_user_id\":1,\"owner_id\":1,\"person_id\":null,"
    "\"org_id\":null,\"value\":0,\"currency\":\"USD\",\"pipeline_id\":1,\"stage_id\":1,"
    "\"status\":\"open\",\"add_time\":\"2024-01-10T09:00:00Z\","
    "\"update_time\":\"2025-05-02T10:00:00Z\",\"is_deleted\":false,\"visible_to\":3,"
    "\"label_ids\":[],\"custom_fields\":{}}";

static void mock_pd_invalid(struct mock_resp *resp, const char *what) {
  resp->status = 400;
  mock_buf_printf(&resp->body,
                  "{\"success\":false,\"error\":\"Validation failed: %s\","
                  "\"code\":\"ERR_SCHEMA_VALIDATION_FAILED\"}",
                  what);
}

/* Pipedrive ids of persons and organizations are integers; v2 no longer coerces strings. */
static int mock_pd_check_ids(yajl_val body, struct mock_resp *resp) {
  static const char *const names[] = {"person_id", "org_id", "organization_id"};
  char what[128];

  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    yajl_val v = mock_obj_get(body, names[i]);

    if (v == NULL || YAJL_IS_NULL(v) || YAJL_IS_INTEGER(v))
      continue;
    snprintf(what, sizeof(what), "%s: Expected integer, received %s", names[i], mock_json_type(v));
    mock_pd_invalid(resp, what);
    return -1;
  }
  return 0;
}

struct mock_pd_target {
  const char *kind; /* lead, person, deal */
  const char *id;
  const char *tmpl;
  int id_is_int;
};

static int mock_pd_match(const struct mock_segs *s, struct mock_pd_target *t) {
  if (s->n == 3 && strcmp(s->seg[0], "v1") == 0 && strcmp(s->seg[1], "leads") == 0) {
    *t = (struct mock_pd_target){"lead", s->seg[2], mock_pd_lead, 0};
    return 0;
  }
  if (s->n != 4 || strcmp(s->seg[0], "api") != 0 || strcmp(s->seg[1], "v2") != 0)
    return -1;
  if (strcmp(s->seg[2], "persons") == 0)
    *t = (struct mock_pd_target){"person", s->seg[3], mock_pd_person, 1};
  else if (strcmp(s->seg[2], "deals") == 0)
    *t = (struct mock_pd_target){"deal", s->seg[3], mock_pd_deal, 1};
  else
    return -1;
  return 0;
}

static void mock_pd_write(struct mock_ctx *ctx, const struct mock_pd_target *t, yajl_val body,
                          struct mock_resp *resp) {
  static const char *const skip[] = {"id", NULL};
  char key[600];

  snprintf(key, sizeof(key), "pipedrive:%s:%s", t->kind, t->id);
  mock_store_set_all(&ctx->store, key, body, skip);

  yajl_gen g = mock_gen_new();
  yajl_gen_map_open(g);
  mock_gen_str(g, "success");
  yajl_gen_bool(g, 1);
  mock_gen_str(g, "data");
  mock_gen_record(g, mock_template(ctx, t->tmpl), t->id, t->id_is_int,
                  mock_store_get(&ctx->store, key));
  yajl_gen_map_close(g);
  resp->status = 200;
  mock_gen_finish(g, &resp->body);
}

void mock_pipedrive_route(struct mock_ctx *ctx, const struct mock_req *req,
                          struct mock_resp *resp) {
  struct mock_segs s;
  struct mock_pd_target t;

  if (mock_split_path(req->path, &s) != 0 || mock_pd_match(&s, &t) != 0) {
    mock_error_body(MOCK_P_PIPEDRIVE, 404, resp);
    return;
  }
  if (strcmp(req->method, "PATCH") != 0) {
    mock_error_body(MOCK_P_PIPEDRIVE, 405, resp);
    return;
  }
  if (t.id_is_int ? !mock_is_int_id(t.id) : !mock_is_uuid(t.id)) {
    mock_error_body(MOCK_P_PIPEDRIVE, 404, resp);
    return;
  }

  yajl_val body = mock_body_object(req);
  if (body == NULL)
    mock_pd_invalid(resp, "request body must be a JSON object");
  else if (mock_pd_check_ids(body, resp) == 0)
    mock_pd_write(ctx, &t, body, resp);
  yajl_tree_free(body);
}

/* ---- Close ---- */

static const char mock_close_contact[] =
    "{\"lead_id\":null,\"organization_id\":\"orga_mockOrganization0000000000000000000000000\","
    "\"name\":\"Mock Contact\",\"display_name\":\"Mock Contact\",\"title\":\"\","
    "\"emails\":[],\"phones\":[],\"urls\":[],"
    "\"date_created\":\"2024-01-10T09:00:00.000000+00:00\","
    "\"date_updated\":\"2025-05-02T10:00:00.000000+00:00\",\"created_by\":null,"
    "\"updated_by\":null}";

static const char mock_close_opportunity[] =
    "{\"lead_id\":\"lead_mockLead00000000000000000000000000000000000\","
    "\"lead_name\":\"Mock Lead\",\"contact_id\":null,\"contact_name\":null,"
    "\"organization_id\":\"orga_mockOrganization0000000000000000000000000\","
    "\"status_id\":\"stat_mockStatus0000000000000000000000000000000\","
    "\"status_label\":\"Active\",\"status_type\":\"active\",\"pipeline_id\":null,"
    "\"pipeline_name\":\"Sales\",\"user_id\":null,\"user_name\":null,\"value\":0,"
    "\"value_currency\":\"USD\",\"value_formatted\":\"$0\",\"value_period\":\"one_time\","
    "\"confidence\":0,\"expected_value\":0,\"annualized_value\":0,"
    "\"annualized_expected_value\":0,\"note\":\"\",\"note_html\":null,\"date_won\":null,"
    "\"date_lost\":null,\"date_created\":\"2024-01-10T09:00:00.000000+00:00\","
    "\"date_updated\":\"2025-05-02T10:00:00.000000+00:00\",\"created_by\":null,"
    "\"updated_by\":null}";

/* Reference fields take a Close id string, or null to unlink. */
static int mock_close_check(yajl_val body, struct mock_resp *resp) {
  static const char *const names[] = {"lead_id", "contact_id"};

  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    yajl_val v = mock_obj_get(body, names[i]);

    if (v == NULL || YAJL_IS_NULL(v) || YAJL_IS_STRING(v))
      continue;
    resp->status = 400;
    mock_buf_printf(&resp->body,
                    "{\"errors\":[],\"field-errors\":{\"%s\":\"Not a valid string.\"}}", names[i]);
    return -1;
  }
  return 0;
}

static void mock_close_write(struct mock_ctx *ctx, const char *kind, const char *id, yajl_val body,
                             struct mock_resp *resp) {
  static const char *const skip[] = {"id", NULL};
  char key[600];

  snprintf(key, sizeof(key), "close:%s:%s", kind, id);
  mock_store_set_all(&ctx->store, key, body, skip);

  yajl_gen g = mock_gen_new();
  const char *tmpl = strcmp(kind, "contact") == 0 ? mock_close_contact : mock_close_opportunity;
  mock_gen_record(g, mock_template(ctx, tmpl), id, 0, mock_store_get(&ctx->store, key));
  resp->status = 200;
  mock_gen_finish(g, &resp->body);
}

/* Close documents every path with a trailing slash; without it the mock answers 404. */
void mock_close_route(struct mock_ctx *ctx, const struct mock_req *req, struct mock_resp *resp) {
  struct mock_segs s;

  if (mock_split_path(req->path, &s) != 0 || s.n != 5 || s.seg[3][0] == '\0' ||
      s.seg[4][0] != '\0' ||
      (strcmp(s.seg[2], "contact") != 0 && strcmp(s.seg[2], "opportunity") != 0)) {
    mock_error_body(MOCK_P_CLOSE, 404, resp);
    return;
  }
  if (strcmp(req->method, "PUT") != 0) {
    mock_error_body(MOCK_P_CLOSE, 405, resp);
    return;
  }

  yajl_val body = mock_body_object(req);
  if (body == NULL) {
    mock_resp_json(resp, 400,
                   "{\"errors\":[\"Request body must be a JSON object.\"],"
                   "\"field-errors\":{}}");
  } else if (mock_close_check(body, resp) == 0) {
    mock_close_write(ctx, s.seg[2], s.seg[3], body, resp);
  }
  yajl_tree_free(body);
}

/* ---- Attio ---- */

#define MOCK_ATTIO_WORKSPACE "7f5c1e2a-0000-4000-8000-00000000a771"
#define MOCK_ATTIO_TIME "2025-05-01T10:00:00.000000000Z"

struct mock_attio_object {
  const char *slug;
  const char *object_id;
  const char *web_kind;
};

static const struct mock_attio_object mock_attio_objects[] = {
    {"companies", "7f5c1e2a-0000-4000-8000-0000000c0001", "company"},
    {"people", "7f5c1e2a-0000-4000-8000-0000000e0001", "person"},
    {"deals", "7f5c1e2a-0000-4000-8000-0000000d0001", "deal"},
};

static const struct mock_attio_object *mock_attio_object(const char *slug) {
  for (size_t i = 0; i < sizeof(mock_attio_objects) / sizeof(mock_attio_objects[0]); i++) {
    if (strcmp(mock_attio_objects[i].slug, slug) == 0)
      return &mock_attio_objects[i];
  }
  return NULL;
}

/* Attio answers each value wrapped with its history fields, as in its record examples. */
static void mock_attio_gen_value(yajl_gen g, yajl_val v) {
  int is_obj = YAJL_IS_OBJECT(v);

  yajl_gen_map_open(g);
  mock_gen_str(g, "active_from");
  mock_gen_str(g, MOCK_ATTIO_TIME);
  mock_gen_str(g, "active_until");
  yajl_gen_null(g);
  mock_gen_str(g, "created_by_actor");
  yajl_gen_map_open(g);
  mock_gen_str(g, "type");
  mock_gen_str(g, "api-token");
  mock_gen_str(g, "id");
  mock_gen_str(g, "7f5c1e2a-0000-4000-8000-00000000b0b0");
  yajl_gen_map_close(g);
  for (size_t i = 0; is_obj && i < v->u.object.len; i++) {
    mock_gen_str(g, v->u.object.keys[i]);
    mock_gen_val(g, v->u.object.values[i]);
  }
  if (!is_obj) {
    mock_gen_str(g, "value");
    mock_gen_val(g, v);
  }
  mock_gen_str(g, "attribute_type");
  mock_gen_str(g, is_obj && mock_obj_get(v, "target_object") ? "record-reference" : "text");
  yajl_gen_map_close(g);
}

static void mock_attio_gen_values(yajl_gen g, yajl_val values) {
  yajl_gen_map_open(g);
  for (size_t i = 0; i < values->u.object.len; i++) {
    yajl_val v = values->u.object.values[i];

    mock_gen_str(g, values->u.object.keys[i]);
    yajl_gen_array_open(g);
    if (YAJL_IS_ARRAY(v)) {
      for (size_t j = 0; j < v->u.array.len; j++)
        mock_attio_gen_value(g, v->u.array.values[j]);
    } else {
      mock_attio_gen_value(g, v);
    }
    yajl_gen_array_close(g);
  }
  yajl_gen_map_close(g);
}

static void mock_attio_answer(const struct mock_attio_object *obj, const char *id, yajl_val values,
                              struct mock_resp *resp) {
  char url[600];
  yajl_gen g = mock_gen_new();

  yajl_gen_map_open(g);
  mock_gen_str(g, "data");
  yajl_gen_map_open(g);
  mock_gen_str(g, "id");
  yajl_gen_map_open(g);
  mock_gen_str(g, "workspace_id");
  mock_gen_str(g, MOCK_ATTIO_WORKSPACE);
  mock_gen_str(g, "object_id");
  mock_gen_str(g, obj->object_id);
  mock_gen_str(g, "record_id");
  mock_gen_str(g, id);
  yajl_gen_map_close(g);
  mock_gen_str(g, "created_at");
  mock_gen_str(g, "2024-11-21T13:22:49.061281000Z");
  snprintf(url, sizeof(url), "https://app.attio.com/mock/%s/%s", obj->web_kind, id);
  mock_gen_str(g, "web_url");
  mock_gen_str(g, url);
  mock_gen_str(g, "values");
  mock_attio_gen_values(g, values);
  yajl_gen_map_close(g);
  yajl_gen_map_close(g);
  resp->status = 200;
  mock_gen_finish(g, &resp->body);
}

static void mock_attio_write(struct mock_ctx *ctx, const struct mock_attio_object *obj,
                             const char *id, yajl_val values, struct mock_resp *resp) {
  char key[600];

  snprintf(key, sizeof(key), "attio:%s:%s", obj->slug, id);
  mock_store_set_all(&ctx->store, key, values, NULL);
  mock_attio_answer(obj, id, values, resp);
}

/* PUT (overwrite) is served like PATCH so a test can see, in the call log, that it was used. */
void mock_attio_route(struct mock_ctx *ctx, const struct mock_req *req, struct mock_resp *resp) {
  struct mock_segs s;
  const struct mock_attio_object *obj = NULL;

  if (mock_split_path(req->path, &s) == 0 && s.n == 5 && strcmp(s.seg[0], "v2") == 0 &&
      strcmp(s.seg[1], "objects") == 0 && strcmp(s.seg[3], "records") == 0 && s.seg[4][0] != '\0')
    obj = mock_attio_object(s.seg[2]);
  if (obj == NULL) {
    mock_error_body(MOCK_P_ATTIO, 404, resp);
    return;
  }
  if (strcmp(req->method, "PATCH") != 0 && strcmp(req->method, "PUT") != 0) {
    mock_error_body(MOCK_P_ATTIO, 405, resp);
    return;
  }

  yajl_val body = mock_body_object(req);
  yajl_val values = mock_obj_get(mock_obj_get(body, "data"), "values");
  if (values == NULL || !YAJL_IS_OBJECT(values)) {
    mock_resp_json(resp, 400,
                   "{\"status_code\":400,\"type\":\"invalid_request_error\","
                   "\"code\":\"validation_type\",\"message\":\"Body payload "
                   "validation error: data.values must be an object.\"}");
  } else {
    mock_attio_write(ctx, obj, s.seg[4], values, resp);
  }
  yajl_tree_free(body);
}
