/*
 * assoc.h: the unified association request (SPEC 3.2) after validation.
 *
 * ucrm_assoc_parse turns a request body into a struct ucrm_assoc, checking everything that does
 * not depend on the provider: shape, types, sizes, the entity/kind rules of the published
 * schema, the "acocunts" alias and duplicate ids. The struct owns all its strings and its
 * remote_data tree; ucrm_assoc_free releases them.
 */
#ifndef UCRM_ASSOC_H
#define UCRM_ASSOC_H

#include <stddef.h>

#include "common.h"
#include "json.h"

enum ucrm_entity { UCRM_ENT_ACCOUNTS, UCRM_ENT_OPPORTUNITIES, UCRM_ENT_CONTACTS, UCRM_ENT_LEADS };
#define UCRM_ENT_COUNT 4

enum ucrm_kind {
  UCRM_KIND_ACCOUNTS,
  UCRM_KIND_CONTACTS,
  UCRM_KIND_LEADS,
  UCRM_KIND_OPPORTUNITIES,
  UCRM_KIND_ORGANIZATIONS,
};
#define UCRM_KIND_COUNT 5

#define UCRM_ID_MAX_BYTES 256
#define UCRM_IDS_MAX 1000 /* links in one request, all kinds together */

struct ucrm_ids {
  char **ids; /* NUL-terminated, unique, in request order */
  size_t n;
};

struct ucrm_assoc {
  char *entity_id;
  enum ucrm_entity entity;
  struct ucrm_ids kinds[UCRM_KIND_COUNT];
  enum ucrm_kind order[UCRM_KIND_COUNT]; /* kinds in the order the request named them */
  size_t norder;
  struct jv *remote_data; /* an object, or NULL */
};

const char *ucrm_entity_name(enum ucrm_entity e);
const char *ucrm_kind_name(enum ucrm_kind k);
int ucrm_entity_from_name(const char *s, enum ucrm_entity *out);

/* Whether the published schema lets entity link to kind at all. */
int ucrm_kind_allowed(enum ucrm_entity entity, enum ucrm_kind kind);

/* Parses and checks a body; on failure fills err (status 400) and leaves a freed-safe struct. */
int ucrm_assoc_parse(const char *body, size_t len, struct ucrm_assoc *a, struct ucrm_err *err);

void ucrm_assoc_free(struct ucrm_assoc *a);

/* Total number of links (ids over all kinds). */
size_t ucrm_assoc_nlinks(const struct ucrm_assoc *a);

#endif
