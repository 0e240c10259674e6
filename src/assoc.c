#include "assoc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const assoc_entity_names[UCRM_ENT_COUNT] = {"accounts", "opportunities",
                                                               "contacts", "leads"};

static const char *const assoc_kind_names[UCRM_KIND_COUNT] = {"accounts", "contacts", "leads",
                                                              "opportunities", "organizations"};

/* Bit e set in row k: kind k may be linked from entity e (from the published schema). */
#define ENT(e) (1u << UCRM_ENT_##e)
static const unsigned assoc_kind_entities[UCRM_KIND_COUNT] = {
    [UCRM_KIND_ACCOUNTS] = ENT(LEADS) | ENT(CONTACTS),
    [UCRM_KIND_CONTACTS] = ENT(LEADS),
    [UCRM_KIND_LEADS] = ENT(OPPORTUNITIES) | ENT(CONTACTS),
    [UCRM_KIND_OPPORTUNITIES] = ENT(ACCOUNTS) | ENT(CONTACTS),
    [UCRM_KIND_ORGANIZATIONS] = ENT(OPPORTUNITIES) | ENT(CONTACTS),
};
#undef ENT

const char *ucrm_entity_name(enum ucrm_entity e) {
  return assoc_entity_names[e];
}

const char *ucrm_kind_name(enum ucrm_kind k) {
  return assoc_kind_names[k];
}

int ucrm_entity_from_name(const char *s, enum ucrm_entity *out) {
  for (int e = 0; e < UCRM_ENT_COUNT; e++) {
    if (strcmp(s, assoc_entity_names[e]) == 0) {
      *out = (enum ucrm_entity)e;
      return 0;
    }
  }
  return UCRM_EINVAL;
}

int ucrm_kind_allowed(enum ucrm_entity entity, enum ucrm_kind kind) {
  return (assoc_kind_entities[kind] >> entity) & 1u;
}

static int assoc_kind_from_key(const char *key, enum ucrm_kind *out) {
  /* "acocunts" is a misspelling in the published schema; callers copying it still mean it. */
  if (strcmp(key, "acocunts") == 0) {
    *out = UCRM_KIND_ACCOUNTS;
    return 0;
  }
  for (int k = 0; k < UCRM_KIND_COUNT; k++) {
    if (strcmp(key, assoc_kind_names[k]) == 0) {
      *out = (enum ucrm_kind)k;
      return 0;
    }
  }
  return UCRM_EINVAL;
}

/*
 * Reads an id given as a JSON string or number. Numbers keep their decimal text, so only plain
 * integers are accepted (1.5 or 1e3 would not name a record the same way everywhere).
 */
/* What is wrong with an id value, or NULL when it is usable. */
static const char *assoc_id_problem(const struct jv *v) {
  if (v == NULL)
    return "is required";

  if (v->type == JV_NUMBER) {
    const char *s = v->u.str.s;
    size_t i = s[0] == '-' ? 1 : 0;
    if (strspn(s + i, "0123456789") != v->u.str.len - i)
      return "must be a string or an integer";
  } else if (v->type != JV_STRING) {
    return "must be a string or an integer";
  }

  if (v->u.str.len == 0)
    return "must not be empty";
  if (v->u.str.len > UCRM_ID_MAX_BYTES)
    return "is longer than " UCRM_STR(UCRM_ID_MAX_BYTES) " bytes";
  if (memchr(v->u.str.s, '\0', v->u.str.len) != NULL)
    return "must not contain a NUL byte";
  return NULL;
}

/*
 * Reads the id at key (index < 0) or at associations.key[index].id. The field's name is
 * formatted only for an error message, not for every id.
 */
static int assoc_read_id(const struct jv *v, const char *key, long index, const char **out,
                         size_t *len, struct ucrm_err *err) {
  const char *problem = assoc_id_problem(v);
  if (problem != NULL) {
    if (index < 0)
      return ucrm_err_set(err, 400, "%s %s", key, problem);
    return ucrm_err_set(err, 400, "associations.%s[%ld].id %s", key, index, problem);
  }

  *out = v->u.str.s;
  *len = v->u.str.len;
  return 0;
}

static int assoc_add_id(struct ucrm_ids *ids, const char *s, size_t len) {
  for (size_t i = 0; i < ids->n; i++) {
    if (strlen(ids->ids[i]) == len && memcmp(ids->ids[i], s, len) == 0)
      return 0; /* duplicates are merged */
  }

  char **grown = realloc(ids->ids, (ids->n + 1) * sizeof(*grown));
  if (grown == NULL)
    return UCRM_ENOMEM;
  ids->ids = grown;

  ids->ids[ids->n] = strndup(s, len);
  if (ids->ids[ids->n] == NULL)
    return UCRM_ENOMEM;
  ids->n++;
  return 0;
}

static int assoc_kind_list(struct ucrm_assoc *a, const char *key, const struct jv *list,
                           size_t *total, struct ucrm_err *err) {
  enum ucrm_kind kind;
  if (assoc_kind_from_key(key, &kind) != 0)
    return ucrm_err_set(err, 400,
                        "associations.%.64s is not a known kind; use accounts, "
                        "contacts, leads, opportunities or organizations",
                        key);
  if (!ucrm_kind_allowed(a->entity, kind))
    return ucrm_err_set(err, 400, "associations.%s cannot be linked to entity %s", key,
                        ucrm_entity_name(a->entity));
  if (list->type != JV_ARRAY)
    return ucrm_err_set(err, 400, "associations.%s must be an array of {\"id\": ...}", key);

  for (size_t i = 0; i < list->u.arr.n; i++) {
    const struct jv *item = list->u.arr.items[i];
    if (item->type != JV_OBJECT || item->u.obj.n != 1 || jv_obj_get(item, "id") == NULL)
      return ucrm_err_set(err, 400, "associations.%s[%zu] must be an object {\"id\": ...}", key, i);

    const char *id = NULL;
    size_t len = 0;
    int rc = assoc_read_id(jv_obj_get(item, "id"), key, (long)i, &id, &len, err);
    if (rc != 0)
      return rc;
    if (++*total > UCRM_IDS_MAX)
      return ucrm_err_set(err, 400, "associations holds more than %d ids", UCRM_IDS_MAX);
    if (assoc_add_id(&a->kinds[kind], id, len) != 0)
      return ucrm_err_set(err, 500, "out of memory");
  }

  /* A kind joins the order only with ids: providers read kinds[k].ids[0] for each one. */
  size_t k = 0;
  while (k < a->norder && a->order[k] != kind)
    k++;
  if (k == a->norder && a->kinds[kind].n > 0)
    a->order[a->norder++] = kind;
  return 0;
}

/* A name holding a NUL ("leads\u0000x") must not pass for the name before the NUL. */
static int assoc_has_nul(const char *s, size_t len) {
  return memchr(s, '\0', len) != NULL;
}

static int assoc_links(struct ucrm_assoc *a, const struct jv *obj, struct ucrm_err *err) {
  if (obj == NULL)
    return ucrm_err_set(err, 400, "associations is required");
  if (obj->type != JV_OBJECT)
    return ucrm_err_set(err, 400, "associations must be an object");

  size_t total = 0;
  for (size_t i = 0; i < obj->u.obj.n; i++) {
    if (assoc_has_nul(obj->u.obj.m[i].key, obj->u.obj.m[i].klen))
      return ucrm_err_set(err, 400, "associations holds a key with a NUL byte");
    int rc = assoc_kind_list(a, obj->u.obj.m[i].key, obj->u.obj.m[i].val, &total, err);
    if (rc != 0)
      return rc;
  }

  if (ucrm_assoc_nlinks(a) == 0)
    return ucrm_err_set(err, 400, "associations must hold at least one id");
  return 0;
}

static int assoc_fields(struct ucrm_assoc *a, const struct jv *root, struct ucrm_err *err) {
  for (size_t i = 0; i < root->u.obj.n; i++) {
    const char *k = root->u.obj.m[i].key;
    if (assoc_has_nul(k, root->u.obj.m[i].klen))
      return ucrm_err_set(err, 400, "request body holds a key with a NUL byte");
    if (strcmp(k, "entity_id") != 0 && strcmp(k, "entity") != 0 && strcmp(k, "associations") != 0 &&
        strcmp(k, "remote_data") != 0)
      return ucrm_err_set(err, 400, "unknown body field '%.64s'", k);
  }

  const char *id = NULL;
  size_t len = 0;
  int rc = assoc_read_id(jv_obj_get(root, "entity_id"), "entity_id", -1, &id, &len, err);
  if (rc != 0)
    return rc;
  if ((a->entity_id = strndup(id, len)) == NULL)
    return ucrm_err_set(err, 500, "out of memory");

  const struct jv *entity = jv_obj_get(root, "entity");
  if (entity == NULL)
    return ucrm_err_set(err, 400, "entity is required");
  if (entity->type != JV_STRING || assoc_has_nul(entity->u.str.s, entity->u.str.len) ||
      ucrm_entity_from_name(entity->u.str.s, &a->entity) != 0)
    return ucrm_err_set(err, 400,
                        "entity must be one of accounts, opportunities, contacts, "
                        "leads");

  rc = assoc_links(a, jv_obj_get(root, "associations"), err);
  if (rc != 0)
    return rc;

  const struct jv *rd = jv_obj_get(root, "remote_data");
  if (rd == NULL || rd->type == JV_NULL)
    return 0;
  if (rd->type != JV_OBJECT)
    return ucrm_err_set(err, 400, "remote_data must be an object");
  a->remote_data = jv_copy(rd);
  return a->remote_data != NULL ? 0 : ucrm_err_set(err, 500, "out of memory");
}

int ucrm_assoc_parse(const char *body, size_t len, struct ucrm_assoc *a, struct ucrm_err *err) {
  memset(a, 0, sizeof(*a));

  if (len == 0)
    return ucrm_err_set(err, 400, "request body is empty; send a JSON object");

  struct jv *root = NULL;
  char jerr[128];
  int rc = jv_parse(body, len, JV_MAX_DEPTH, &root, jerr, sizeof(jerr));
  if (rc == UCRM_ENOMEM)
    return ucrm_err_set(err, 500, "out of memory");
  if (rc != 0)
    return ucrm_err_set(err, 400, "request body is not valid JSON: %s", jerr);

  if (root->type != JV_OBJECT)
    rc = ucrm_err_set(err, 400, "request body must be a JSON object");
  else
    rc = assoc_fields(a, root, err);

  jv_free(root);
  return rc;
}

size_t ucrm_assoc_nlinks(const struct ucrm_assoc *a) {
  size_t n = 0;
  for (int k = 0; k < UCRM_KIND_COUNT; k++)
    n += a->kinds[k].n;
  return n;
}

void ucrm_assoc_free(struct ucrm_assoc *a) {
  for (int k = 0; k < UCRM_KIND_COUNT; k++) {
    for (size_t i = 0; i < a->kinds[k].n; i++)
      free(a->kinds[k].ids[i]);
    free(a->kinds[k].ids);
  }
  free(a->entity_id);
  jv_free(a->remote_data);
  memset(a, 0, sizeof(*a));
}
