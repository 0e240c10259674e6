/*
 * unit_helpers.h: what the unit tests share. cmocka needs its own includes before cmocka.h, so
 * every test file includes this header first.
 *
 * The plan helpers parse a real request body with ucrm_assoc_parse and run a provider's real
 * plan on it, so a plan test exercises the same path a request takes after validation.
 */
#ifndef UNIT_HELPERS_H
#define UNIT_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "assoc.h"
#include "provider.h"

/*
 * Reads UNIT_ONLY and UNIT_SKIP (cmocka name patterns, '*' and '?') from the environment, so
 * one test can be run alone, or a test known to crash skipped under the sanitizers. Every main
 * calls it first; with neither variable set every test runs.
 */
void unit_filters_from_env(void);

/* An account with fixed test credentials; every string is static, nothing to free. */
void unit_account(struct ucrm_account *acct, const struct ucrm_provider *p, const char *base_url);

/*
 * A request and the plan made from it. unit_plan first releases what u held (u must start
 * zeroed), asserts that body parses, then returns what p->plan returned; unit_plan_free
 * releases both halves whatever happened.
 */
struct unit_plan {
  struct ucrm_account acct;
  struct ucrm_assoc a;
  struct ucrm_plan plan;
  struct ucrm_err err;
};

int unit_plan(struct unit_plan *u, const struct ucrm_provider *p, const char *body);
void unit_plan_free(struct unit_plan *u);

void unit_check_call(const struct ucrm_call *c, const char *method, const char *path,
                     const char *body, const char *file, int line);
void unit_check_link(const struct ucrm_call *c, size_t i, enum ucrm_kind kind, const char *id,
                     const char *file, int line);
void unit_check_has(const char *haystack, const char *needle, const char *file, int line);
void unit_check_lacks(const char *haystack, const char *needle, const char *file, int line);

/* The exact method, path and body bytes of a planned call. */
#define assert_call(c, method, path, body)                                                         \
  unit_check_call((c), (method), (path), (body), __FILE__, __LINE__)

/* Link i of a call writes kind/id. */
#define assert_link(c, i, kind, id) unit_check_link((c), (i), (kind), (id), __FILE__, __LINE__)

/* Substring checks for messages. */
#define assert_has(haystack, needle) unit_check_has((haystack), (needle), __FILE__, __LINE__)
#define assert_lacks(haystack, needle) unit_check_lacks((haystack), (needle), __FILE__, __LINE__)

#endif
