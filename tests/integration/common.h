/*
 * common.h: cmocka fixtures shared by the integration test files: one mock CRM and one unicrm
 * per group, the mock's log of calls reset before each test.
 */
#ifndef UCRM_TEST_COMMON_H
#define UCRM_TEST_COMMON_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

struct fx {
  struct h_proc mock;
  struct h_proc unicrm;
};

extern struct fx g_fx;

/* Group setup with extra top-level config (or NULL). */
int fx_start(const char *extra);
int fx_group_setup(void **state);
int fx_group_teardown(void **state);
int fx_reset(void **state);

/* Asserts the response is a JSON error envelope with this status and returns the tree. */
yajl_val fx_expect_error(const struct h_resp *r, long status);

/* Asserts the mock received exactly n calls; returns them (caller frees). */
yajl_val fx_expect_calls(size_t n);

/* Asserts call i has this method, path and (if body != NULL) exact body bytes. */
void fx_expect_call(yajl_val calls, size_t i, const char *method, const char *path,
                    const char *body);

#endif
