/* Unit tests for providers/provider.c: the helpers every provider file shares. */
#include "unit_helpers.h"

#include <stdlib.h>
#include <string.h>

#include "provider.h"

static void test_provider_find_by_name(void **state) {
  assert_ptr_equal(ucrm_provider_find("attio"), &ucrm_provider_attio);
  assert_ptr_equal(ucrm_provider_find("close"), &ucrm_provider_close);
  assert_ptr_equal(ucrm_provider_find("pipedrive"), &ucrm_provider_pipedrive);
  assert_ptr_equal(ucrm_provider_find("salesforce"), &ucrm_provider_salesforce);
  assert_null(ucrm_provider_find("hubspot"));
  assert_null(ucrm_provider_find("Attio"));
}

static void test_provider_entities_match_spec(void **state) {
  unsigned acc = 1u << UCRM_ENT_ACCOUNTS, opp = 1u << UCRM_ENT_OPPORTUNITIES;
  unsigned con = 1u << UCRM_ENT_CONTACTS, lea = 1u << UCRM_ENT_LEADS;
  assert_int_equal(ucrm_provider_salesforce.entities, acc | opp);
  assert_int_equal(ucrm_provider_attio.entities, acc | opp | con);
  assert_int_equal(ucrm_provider_close.entities, opp | con);
  assert_int_equal(ucrm_provider_pipedrive.entities, lea | con);
}

static void check_path_id(const char *id, const char *want, const char *file, int line) {
  struct ubuf b;
  struct ucrm_err err = {0};
  ubuf_init(&b, 1024);
  _assert_int_equal(ucrm_path_id(&b, id, &err, "id"), 0, file, line);
  _assert_string_equal(ubuf_cstr(&b), want, file, line);
  ubuf_free(&b);
}

#define assert_path_id(id, want) check_path_id((id), (want), __FILE__, __LINE__)

static void check_path_id_refused(const char *id, const char *file, int line) {
  struct ubuf b;
  struct ucrm_err err = {0};
  ubuf_init(&b, 1024);
  _assert_int_equal(ucrm_path_id(&b, id, &err, "entity_id"), UCRM_EINVAL, file, line);
  _assert_int_equal(err.status, 400, file, line);
  unit_check_has(err.msg, "entity_id", file, line);
  ubuf_free(&b);
}

#define assert_path_id_refused(id) check_path_id_refused((id), __FILE__, __LINE__)

static void test_path_id_percent_encodes_reserved_bytes(void **state) {
  assert_path_id("abc-123_x.y~", "abc-123_x.y~");
  assert_path_id("a/b", "a%2Fb");
  assert_path_id("a?b#c", "a%3Fb%23c");
  assert_path_id("100%", "100%25");
  assert_path_id("%2e%2e", "%252e%252e");
  assert_path_id("../etc", "..%2Fetc");
  assert_path_id("a b", "a%20b");
  assert_path_id("...", "...");
}

static void test_path_id_refuses_dot_segments_and_controls(void **state) {
  assert_path_id_refused("");
  assert_path_id_refused(".");
  assert_path_id_refused("..");
  assert_path_id_refused("a\r\nb");
  assert_path_id_refused("a\x7f");
}

static void test_is_positive_int(void **state) {
  assert_true(ucrm_is_positive_int("1"));
  assert_true(ucrm_is_positive_int("123"));
  assert_true(ucrm_is_positive_int("9223372036854775807"));
  assert_false(ucrm_is_positive_int("9223372036854775808"));
  assert_false(ucrm_is_positive_int("12345678901234567890"));
  assert_false(ucrm_is_positive_int("0"));
  assert_false(ucrm_is_positive_int("007"));
  assert_false(ucrm_is_positive_int("-1"));
  assert_false(ucrm_is_positive_int("+1"));
  assert_false(ucrm_is_positive_int("1a"));
  assert_false(ucrm_is_positive_int(""));
  assert_false(ucrm_is_positive_int(" 1"));
}

static void check_status(long in, int ok, int status, int retryable, const char *file, int line) {
  unsigned char flags[2];
  struct ucrm_verdict v = {.link_ok = flags, .refresh_token = 1, .per_link = 1};
  ucrm_verdict_from_status(in, &v);
  _assert_int_equal(v.ok, ok, file, line);
  _assert_int_equal(v.status, status, file, line);
  _assert_int_equal(v.retryable, retryable, file, line);
  _assert_int_equal(v.refresh_token, 0, file, line);
  _assert_int_equal(v.per_link, 0, file, line);
  _assert_true(v.link_ok == flags, "link_ok kept", file, line);
}

#define assert_status_maps(in, ok, status, retryable)                                              \
  check_status((in), (ok), (status), (retryable), __FILE__, __LINE__)

static void test_verdict_from_status_table(void **state) {
  assert_status_maps(200, 1, 0, 0);
  assert_status_maps(204, 1, 0, 0);
  assert_status_maps(400, 0, 400, 0);
  assert_status_maps(401, 0, 401, 0);
  assert_status_maps(403, 0, 403, 0);
  assert_status_maps(404, 0, 404, 0);
  assert_status_maps(409, 0, 409, 0);
  assert_status_maps(422, 0, 422, 0);
  assert_status_maps(429, 0, 429, 1);
  assert_status_maps(500, 0, 502, 1);
  assert_status_maps(503, 0, 502, 1);
  assert_status_maps(301, 0, 502, 0);
}

static void test_unsupported_names_provider_entity_kind(void **state) {
  struct ucrm_err err = {0};
  assert_int_equal(ucrm_unsupported("close", UCRM_ENT_CONTACTS, UCRM_KIND_ORGANIZATIONS, &err),
                   UCRM_EINVAL);
  assert_int_equal(err.status, 400);
  assert_string_equal(err.msg,
                      "unsupported_association: close cannot link contacts to organizations");
}

static void test_plan_add_merges_remote_data_and_links(void **state) {
  struct ucrm_plan plan = {0};
  struct jv *body = jv_new(JV_OBJECT);
  jv_obj_set(body, "a", jv_new_int(1));
  struct jv *rd = jv_new(JV_OBJECT);
  jv_obj_set(rd, "b", jv_new_string("x", 1));

  assert_int_equal(ucrm_plan_add(&plan, "PATCH", "/p/1", body, rd), 0);
  assert_int_equal(ucrm_plan_link(&plan, UCRM_KIND_LEADS, "L"), 0);
  assert_int_equal(plan.n, 1);
  assert_call(&plan.calls[0], "PATCH", "/p/1", "{\"a\":1,\"b\":\"x\"}");
  assert_int_equal(plan.calls[0].nlinks, 1);
  assert_link(&plan.calls[0], 0, UCRM_KIND_LEADS, "L");
  char *rd_text = jv_dump(rd, NULL);
  assert_string_equal(rd_text, "{\"b\":\"x\"}"); /* remote_data is only read */
  free(rd_text);

  jv_free(rd);
  ucrm_plan_free(&plan);
  assert_int_equal(plan.n, 0);
  assert_null(plan.calls);
}

int main(void) {
  unit_filters_from_env();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_provider_find_by_name),
      cmocka_unit_test(test_provider_entities_match_spec),
      cmocka_unit_test(test_path_id_percent_encodes_reserved_bytes),
      cmocka_unit_test(test_path_id_refuses_dot_segments_and_controls),
      cmocka_unit_test(test_is_positive_int),
      cmocka_unit_test(test_verdict_from_status_table),
      cmocka_unit_test(test_unsupported_names_provider_entity_kind),
      cmocka_unit_test(test_plan_add_merges_remote_data_and_links),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
