/*
 * fuzz_body.c: a request body through ucrm_assoc_parse, then every provider's plan.
 *
 * Ids travel from the body into upstream URL paths and remote_data into upstream bodies. For
 * every planned call: the path is made of unreserved bytes, '/' and %XX only (no '?', '#',
 * space, control byte or dot segment can reach curl), the body is a JSON object our own
 * parser reads back, and the links named by the plan are exactly the links the request asked
 * for, each written by its call (its id is a path segment or a value in the body), so no
 * link is reported applied that no call writes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "assoc.h"
#include "buf.h"
#include "fuzz_util.h"
#include "json.h"
#include "provider.h"

static char fuzz_pd_url[] = "https://api.pipedrive.com";
static char fuzz_cl_url[] = "https://api.close.com";
static char fuzz_at_url[] = "https://api.attio.com";
static char fuzz_sf_url[] = "https://example.my.salesforce.com";
static char fuzz_token[] = "fuzz-access-token";
static char fuzz_sf_version[] = "v59.0";

static struct ucrm_account fuzz_accounts[5];

static void fuzz_account(struct ucrm_account *a, const struct ucrm_provider *p, char *url) {
  memset(a, 0, sizeof(*a));
  memcpy(a->id, "62f44730-dd91-461e-bd6a-aedd9e0ad79d", 37);
  a->provider = p;
  a->base_url = url;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  fuzz_account(&fuzz_accounts[0], &ucrm_provider_pipedrive, fuzz_pd_url);
  fuzz_accounts[0].cred.api_token = fuzz_token;
  fuzz_account(&fuzz_accounts[1], &ucrm_provider_close, fuzz_cl_url);
  fuzz_accounts[1].cred.api_key = fuzz_token;
  fuzz_account(&fuzz_accounts[2], &ucrm_provider_attio, fuzz_at_url);
  fuzz_accounts[2].cred.access_token = fuzz_token;
  fuzz_account(&fuzz_accounts[3], &ucrm_provider_salesforce, fuzz_sf_url);
  fuzz_accounts[3].cred.access_token = fuzz_token;
  /* A second Salesforce account with an explicit api_version, which goes into the path. */
  fuzz_account(&fuzz_accounts[4], &ucrm_provider_salesforce, fuzz_sf_url);
  fuzz_accounts[4].cred.access_token = fuzz_token;
  fuzz_accounts[4].cred.api_version = fuzz_sf_version;
  return 0;
}

static void check_path(const char *provider, const char *path) {
  size_t len = strlen(path);
  if (len == 0 || path[0] != '/')
    fuzz_fail("%s: path '%s' does not start with '/'", provider, path);

  size_t bad = fuzz_encoded_upto(path, len, "/");
  if (bad != len) {
    fuzz_dump_hex("path", path, len);
    fuzz_fail("%s: path byte %zu (0x%02x) is not unreserved, '/' or %%XX", provider, bad,
              (unsigned char)path[bad]);
  }

  /* Dot segments would be resolved by curl (or a later hop) into another resource. */
  for (const char *seg = path + 1;;) {
    const char *slash = strchr(seg, '/');
    size_t n = slash != NULL ? (size_t)(slash - seg) : strlen(seg);
    if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
      fuzz_fail("%s: path '%s' holds a dot segment", provider, path);
    if (n == 0 && slash != NULL)
      fuzz_fail("%s: path '%s' holds an empty segment", provider, path);
    if (slash == NULL)
      break;
    seg = slash + 1;
  }
}

/* Strict JSON with no depth limit, for bodies our own parser refuses only for their depth. */
static int valid_json_any_depth(const char *s, size_t len) {
  yajl_handle h = yajl_alloc(NULL, NULL, NULL);
  if (h == NULL)
    abort();
  yajl_status st = yajl_parse(h, (const unsigned char *)s, len);
  if (st == yajl_status_ok)
    st = yajl_complete_parse(h);
  yajl_free(h);
  return st == yajl_status_ok;
}

static void check_body(const char *provider, const struct ucrm_call *c) {
  if (c->body == NULL || strlen(c->body) != c->body_len)
    fuzz_fail("%s: body is missing or its length is wrong", provider);

  struct jv *v = NULL;
  char jerr[128] = "";
  int rc = jv_parse(c->body, c->body_len, JV_MAX_DEPTH, &v, jerr, sizeof(jerr));
  if (rc == 0 && v->type != JV_OBJECT)
    fuzz_fail("%s: body '%.200s' is not a JSON object", provider, c->body);
  jv_free(v);
  if (rc == 0)
    return;

  /* remote_data may legally nest one level deeper inside a Salesforce collection record. */
  if (strstr(jerr, "nesting deeper") != NULL && valid_json_any_depth(c->body, c->body_len))
    return;
  fuzz_dump_hex("body", c->body, c->body_len);
  fuzz_fail("%s: body is not valid JSON: %s", provider, jerr);
}

static int plan_has_link(const struct ucrm_plan *plan, enum ucrm_kind k, const char *id) {
  for (size_t i = 0; i < plan->n; i++) {
    for (size_t j = 0; j < plan->calls[i].nlinks; j++) {
      const struct ucrm_link *l = &plan->calls[i].links[j];
      if (l->kind == k && strcmp(l->id, id) == 0)
        return 1;
    }
  }
  return 0;
}

static int assoc_has_id(const struct ucrm_assoc *a, enum ucrm_kind k, const char *id) {
  for (size_t i = 0; i < a->kinds[k].n; i++) {
    if (strcmp(a->kinds[k].ids[i], id) == 0)
      return 1;
  }
  return 0;
}

/* Whether some string or number in v is exactly id. */
static int jv_holds(const struct jv *v, const char *id) {
  switch (v->type) {
  case JV_STRING:
  case JV_NUMBER:
    return strlen(v->u.str.s) == v->u.str.len && strcmp(v->u.str.s, id) == 0;
  case JV_ARRAY:
    for (size_t i = 0; i < v->u.arr.n; i++) {
      if (jv_holds(v->u.arr.items[i], id))
        return 1;
    }
    return 0;
  case JV_OBJECT:
    for (size_t i = 0; i < v->u.obj.n; i++) {
      if (jv_holds(v->u.obj.m[i].val, id))
        return 1;
    }
    return 0;
  default:
    return 0;
  }
}

/* Whether the call really writes id: as a whole path segment, or as a value in its body. */
static int call_writes(const struct ucrm_call *c, const char *id) {
  struct ubuf seg;
  ubuf_init(&seg, 4096);
  if (ubuf_putc(&seg, '/') != 0 || ubuf_append_pct(&seg, id, strlen(id)) != 0)
    abort();
  const char *at = strstr(c->path, ubuf_cstr(&seg));
  int in_path = at != NULL && (at[seg.len] == '\0' || at[seg.len] == '/');
  ubuf_free(&seg);
  if (in_path)
    return 1;

  struct jv *body = NULL;
  char jerr[128];
  if (jv_parse(c->body, c->body_len, JV_MAX_DEPTH, &body, jerr, sizeof(jerr)) != 0)
    return 1; /* only a body deeper than our parser reads; check_body vouched for it */
  int found = jv_holds(body, id);
  jv_free(body);
  return found;
}

static void check_links(const char *provider, const struct ucrm_assoc *a,
                        const struct ucrm_plan *plan, int check_writes) {
  for (size_t i = 0; i < plan->n; i++) {
    const struct ucrm_call *c = &plan->calls[i];
    if (c->nlinks == 0)
      fuzz_fail("%s: call %zu (%s) writes no link", provider, i, c->path);
    for (size_t j = 0; j < c->nlinks; j++) {
      if ((unsigned)c->links[j].kind >= UCRM_KIND_COUNT ||
          !assoc_has_id(a, c->links[j].kind, c->links[j].id))
        fuzz_fail("%s: call %zu links an id the request did not name", provider, i);
      if (check_writes && !call_writes(c, c->links[j].id))
        fuzz_fail("%s: call %zu (%s %s) reports link %s '%s' but neither its path nor its "
                  "body holds that id: %.300s",
                  provider, i, c->method, c->path, ucrm_kind_name(c->links[j].kind), c->links[j].id,
                  c->body);
    }
  }

  for (int k = 0; k < UCRM_KIND_COUNT; k++) {
    for (size_t i = 0; i < a->kinds[k].n; i++) {
      if (!plan_has_link(plan, (enum ucrm_kind)k, a->kinds[k].ids[i]))
        fuzz_fail("%s: requested link %s '%s' is in no call", provider,
                  ucrm_kind_name((enum ucrm_kind)k), a->kinds[k].ids[i]);
    }
  }
}

/*
 * Plans a request for one account and checks the result. remote_data wins over the fields a
 * provider sets (SPEC 3.2), so whether each call writes its links is checked only on a plan
 * made without remote_data.
 */
static void check_plan(const struct ucrm_account *acct, const struct ucrm_assoc *a) {
  const char *name = acct->provider->name;
  struct ucrm_plan plan = {0};
  struct ucrm_err err = {0};

  /* The pipeline refuses an entity the provider does not support before planning. */
  if (!(acct->provider->entities >> a->entity & 1u))
    return;

  if (acct->provider->plan(a, acct, &plan, &err) != 0) {
    if (err.status != 400 && err.status != 500 && err.status != 0)
      fuzz_fail("%s: a refused plan answers status %d", name, err.status);
    ucrm_plan_free(&plan);
    return;
  }

  if (plan.n == 0)
    fuzz_fail("%s: a successful plan holds no call", name);
  for (size_t i = 0; i < plan.n; i++) {
    const struct ucrm_call *c = &plan.calls[i];
    if (c->method == NULL || (strcmp(c->method, "PATCH") != 0 && strcmp(c->method, "PUT") != 0))
      fuzz_fail("%s: call %zu has method %s", name, i, c->method ? c->method : "(null)");
    check_path(name, c->path);
    check_body(name, c);
  }
  check_links(name, a, &plan, a->remote_data == NULL);
  ucrm_plan_free(&plan);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct ucrm_assoc a;
  struct ucrm_err err = {0};

  if (ucrm_assoc_parse((const char *)data, size, &a, &err) != 0) {
    if (err.status != 400 && err.status != 500)
      fuzz_fail("a refused body answers status %d", err.status);
    ucrm_assoc_free(&a);
    return 0;
  }

  if (ucrm_assoc_nlinks(&a) == 0 || a.entity_id == NULL || a.entity_id[0] == '\0')
    fuzz_fail("an accepted body has no link or no entity_id");
  struct ucrm_assoc bare = a;
  bare.remote_data = NULL;
  for (size_t i = 0; i < UCRM_ARRAY_LEN(fuzz_accounts); i++) {
    check_plan(&fuzz_accounts[i], &a);
    if (a.remote_data != NULL)
      check_plan(&fuzz_accounts[i], &bare);
  }

  ucrm_assoc_free(&a);
  return 0;
}
