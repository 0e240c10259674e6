#include "unit_helpers.h"

#include <stdio.h>
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

int unit_plan_teardown(void **state) {
  unit_plan_free(*state);
  return 0;
}

void unit_check_plan_ok(struct unit_plan *u, const struct ucrm_provider *p, const char *body,
                        const char *file, int line) {
  if (unit_plan(u, p, body) != 0) {
    print_error("ERROR: plan failed: %s\n", u->err.msg);
    _fail(file, line);
  }
}

void unit_check_refused(struct unit_plan *u, const struct ucrm_provider *p, const char *body,
                        const char *needle, const char *file, int line) {
  _assert_int_equal(unit_plan(u, p, body), UCRM_EINVAL, file, line);
  _assert_int_equal(u->err.status, 400, file, line);
  unit_check_has(u->err.msg, needle, file, line);
}

void unit_check_each_refused(struct unit_plan *u, const struct ucrm_provider *p, const char *fmt,
                             const char *const *values, size_t n, const char *needle,
                             const char *file, int line) {
  for (size_t i = 0; i < n; i++) {
    char body[256];
    snprintf(body, sizeof(body), fmt, values[i]);
    unit_check_refused(u, p, body, needle, file, line);
  }
}

void unit_verdict(const struct ucrm_provider *p, const struct ucrm_call *c, long status,
                  const char *body_json, unsigned char *link_ok, struct ucrm_verdict *v) {
  struct jv *body = NULL;
  char err[128];
  if (body_json != NULL && jv_parse(body_json, strlen(body_json), 64, &body, err, sizeof(err)) != 0)
    fail_msg("reply fixture did not parse: %s", err);
  memset(v, 0, sizeof(*v));
  v->link_ok = link_ok;
  p->verdict(c, status, body, v);
  jv_free(body);
}

void unit_check_auth(const struct ucrm_account *acct, const char *want, const char *file,
                     int line) {
  struct ubuf b;
  ubuf_init(&b, 1024);
  _assert_int_equal(acct->provider->auth_header(acct, &b), 0, file, line);
  _assert_string_equal(ubuf_cstr(&b), want, file, line);
  ubuf_free(&b);
}

void unit_check_call(const struct ucrm_call *c, const char *method, const char *path,
                     const char *body, const char *file, int line) {
  _assert_string_equal(c->method, method, file, line);
  _assert_string_equal(c->path, path, file, line);
  _assert_string_equal(c->body, body, file, line);
  _assert_int_equal(c->body_len, strlen(body), file, line);
}

void unit_check_single_call(const struct ucrm_plan *plan, const char *method, const char *path,
                            const char *body, size_t nlinks, const char *file, int line) {
  _assert_int_equal(plan->n, 1, file, line);
  unit_check_call(&plan->calls[0], method, path, body, file, line);
  _assert_int_equal(plan->calls[0].nlinks, nlinks, file, line);
}

void unit_check_link(const struct ucrm_call *c, size_t i, enum ucrm_kind kind, const char *id,
                     const char *file, int line) {
  _assert_true(i < c->nlinks, "link index within the call", file, line);
  _assert_int_equal(c->links[i].kind, kind, file, line);
  _assert_string_equal(c->links[i].id, id, file, line);
}

void unit_check_ratelimit(const struct ucrm_ratelimit *rl, long limit, long remaining, long reset,
                          const char *file, int line) {
  _assert_int_equal(rl->limit, limit, file, line);
  _assert_int_equal(rl->remaining, remaining, file, line);
  _assert_int_equal(rl->reset, reset, file, line);
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
