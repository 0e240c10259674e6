#include "unit_helpers.h"

#include <stdlib.h>
#include <string.h>

void unit_filters_from_env(void) {
  const char *only = getenv("UNIT_ONLY");
  const char *skip = getenv("UNIT_SKIP");
  if (only != NULL && only[0] != '\0')
    cmocka_set_test_filter(only);
  if (skip != NULL && skip[0] != '\0')
    cmocka_set_skip_filter(skip);
}

void unit_account(struct ucrm_account *acct, const struct ucrm_provider *p, const char *base_url) {
  memset(acct, 0, sizeof(*acct));
  strcpy(acct->id, "62f44730-dd91-461e-bd6a-aedd9e0ad79d");
  acct->provider = p;
  acct->base_url = (char *)base_url;

  if (p == &ucrm_provider_pipedrive)
    acct->cred.api_token = (char *)"pd-token";
  else if (p == &ucrm_provider_close)
    acct->cred.api_key = (char *)"close-key";
  else
    acct->cred.access_token = (char *)"test-token";
}

int unit_plan(struct unit_plan *u, const struct ucrm_provider *p, const char *body) {
  unit_plan_free(u);
  memset(u, 0, sizeof(*u));
  unit_account(&u->acct, p,
               p->default_base_url != NULL ? p->default_base_url
                                           : "https://acme.my.salesforce.com");

  struct ucrm_err perr = {0};
  int rc = ucrm_assoc_parse(body, strlen(body), &u->a, &perr);
  if (rc != 0)
    fail_msg("test body did not parse: %s", perr.msg);
  return p->plan(&u->a, &u->acct, &u->plan, &u->err);
}

void unit_plan_free(struct unit_plan *u) {
  ucrm_plan_free(&u->plan);
  ucrm_assoc_free(&u->a);
}

void unit_check_call(const struct ucrm_call *c, const char *method, const char *path,
                     const char *body, const char *file, int line) {
  _assert_string_equal(c->method, method, file, line);
  _assert_string_equal(c->path, path, file, line);
  _assert_string_equal(c->body, body, file, line);
  _assert_int_equal(c->body_len, strlen(body), file, line);
}

void unit_check_link(const struct ucrm_call *c, size_t i, enum ucrm_kind kind, const char *id,
                     const char *file, int line) {
  _assert_true(i < c->nlinks, "link index within the call", file, line);
  _assert_int_equal(c->links[i].kind, kind, file, line);
  _assert_string_equal(c->links[i].id, id, file, line);
}

void unit_check_has(const char *haystack, const char *needle, const char *file, int line) {
  if (strstr(haystack, needle) == NULL) {
    print_error("\"%s\" does not contain \"%s\"\n", haystack, needle);
    _fail(file, line);
  }
}

void unit_check_lacks(const char *haystack, const char *needle, const char *file, int line) {
  if (strstr(haystack, needle) != NULL) {
    print_error("\"%s\" contains \"%s\"\n", haystack, needle);
    _fail(file, line);
  }
}
