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

/* A cmocka teardown for tests whose state is a struct unit_plan: releases it. */
int unit_plan_teardown(void **state);

/* p plans body without error; otherwise the test fails with the plan's message. */
void unit_check_plan_ok(struct unit_plan *u, const struct ucrm_provider *p, const char *body,
                        const char *file, int line);

/* p refuses body with UCRM_EINVAL, a 400 whose message holds needle. */
void unit_check_refused(struct unit_plan *u, const struct ucrm_provider *p, const char *body,
                        const char *needle, const char *file, int line);

/* Each of the n values, put in place of fmt's one %s, makes a body p refuses with needle. */
void unit_check_each_refused(struct unit_plan *u, const struct ucrm_provider *p, const char *fmt,
                             const char *const *values, size_t n, const char *needle,
                             const char *file, int line);

/*
 * p's verdict on call c answered with status and body_json (NULL for no body), written to v.
 * link_ok, which may be NULL, receives the per-link results of a call that reports them.
 */
void unit_verdict(const struct ucrm_provider *p, const struct ucrm_call *c, long status,
                  const char *body_json, unsigned char *link_ok, struct ucrm_verdict *v);

/* The exact header line acct's provider writes for acct. */
void unit_check_auth(const struct ucrm_account *acct, const char *want, const char *file, int line);

void unit_check_call(const struct ucrm_call *c, const char *method, const char *path,
                     const char *body, const char *file, int line);
void unit_check_single_call(const struct ucrm_plan *plan, const char *method, const char *path,
                            const char *body, size_t nlinks, const char *file, int line);
void unit_check_link(const struct ucrm_call *c, size_t i, enum ucrm_kind kind, const char *id,
                     const char *file, int line);
void unit_check_ratelimit(const struct ucrm_ratelimit *rl, long limit, long remaining, long reset,
                          const char *file, int line);
void unit_check_has(const char *haystack, const char *needle, const char *file, int line);
void unit_check_lacks(const char *haystack, const char *needle, const char *file, int line);

/* The exact method, path and body bytes of a planned call. */
#define assert_call(c, method, path, body)                                                         \
  unit_check_call((c), (method), (path), (body), __FILE__, __LINE__)

/* The plan is that one call only, and it writes nlinks links. */
#define assert_single_call(plan, method, path, body, nlinks)                                       \
  unit_check_single_call((plan), (method), (path), (body), (nlinks), __FILE__, __LINE__)

/* Link i of a call writes kind/id. */
#define assert_link(c, i, kind, id) unit_check_link((c), (i), (kind), (id), __FILE__, __LINE__)

/* The exact header line the provider of acct writes for it. */
#define assert_auth_header(acct, want) unit_check_auth((acct), (want), __FILE__, __LINE__)

/* The limit, remaining and reset a provider read from rate-limit headers (-1: not read). */
#define assert_ratelimit(rl, limit, remaining, reset)                                              \
  unit_check_ratelimit((rl), (limit), (remaining), (reset), __FILE__, __LINE__)

/* Substring checks for messages. */
#define assert_has(haystack, needle) unit_check_has((haystack), (needle), __FILE__, __LINE__)
#define assert_lacks(haystack, needle) unit_check_lacks((haystack), (needle), __FILE__, __LINE__)

/*
 * A provider's plan test file defines P, its provider, keeps one `static struct unit_plan u`,
 * and registers each test with UNIT_PLAN_TEST, which passes u to the test as its state and
 * releases it afterwards. These read P and u from that file.
 */
#define UNIT_PLAN_TEST(f) cmocka_unit_test_prestate_setup_teardown(f, NULL, unit_plan_teardown, &u)

/* P plans body into u without error. */
#define plan_ok(body) unit_check_plan_ok(&u, P, (body), __FILE__, __LINE__)

/* The plan is a 400 whose message holds needle. */
#define assert_refused(body, needle) unit_check_refused(&u, P, (body), (needle), __FILE__, __LINE__)

/* Every value of the array values, put in place of fmt's %s, is refused with needle. */
#define assert_each_refused(fmt, values, needle)                                                   \
  unit_check_each_refused(&u, P, (fmt), (values), UCRM_ARRAY_LEN(values), (needle), __FILE__,      \
                          __LINE__)

#endif
