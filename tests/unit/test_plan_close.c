/*
 * Unit tests for providers/close.c: the calls of SPEC 3.3 for Close, its auth header, verdicts
 * on the reply shapes of reference/providers.md section 4, and the RateLimit header.
 */
#include "unit_helpers.h"

#include "provider.h"

#define P (&ucrm_provider_close)
#define CONT "cont_sNIdBgngvbdTTEN1mspKgUq"
#define LEAD "lead_QyNaWw4fdSwxl5Mc5daMFf3Y"
#define LEAD2 "lead_s6vHFTK1TSRoH6otXOexWDO9"
#define OPP "oppo_KXyJj2PT74U1wOPvhBDO37jC"
#define OPP2 "oppo_8bd9a0d6aa58cd6cW0DylcD"

static struct unit_plan u;

/* ---- opportunities → leads ---- */

static void test_opportunity_to_lead(void **state) {
  plan_ok("{\"entity_id\":\"" OPP "\",\"entity\":\"opportunities\",\"associations\":{"
          "\"leads\":[{\"id\":\"" LEAD "\"}]}}");
  assert_single_call(&u.plan, "PUT", "/api/v1/opportunity/" OPP "/", "{\"lead_id\":\"" LEAD "\"}",
                     1);
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_LEADS, LEAD);
}

static void test_opportunity_two_leads_refused(void **state) {
  assert_refused("{\"entity_id\":\"" OPP "\",\"entity\":\"opportunities\",\"associations\":{"
                 "\"leads\":[{\"id\":\"" LEAD "\"},{\"id\":\"" LEAD2 "\"}]}}",
                 "associations.leads holds 2 ids");
}

static void test_opportunity_to_organization_unsupported(void **state) {
  assert_refused("{\"entity_id\":\"" OPP "\",\"entity\":\"opportunities\",\"associations\":{"
                 "\"organizations\":[{\"id\":\"orga_1\"}]}}",
                 "unsupported_association: close cannot link opportunities to organizations");
  assert_refused("{\"entity_id\":\"" OPP "\",\"entity\":\"opportunities\",\"associations\":{"
                 "\"leads\":[{\"id\":\"" LEAD "\"}],\"organizations\":[{\"id\":\"orga_1\"}]}}",
                 "close cannot link opportunities to organizations");
}

/* Found in review: anything after the prefix (spaces, '/', newlines) reached the body. */
static void test_ids_after_prefix_are_alphanumeric(void **state) {
  assert_refused("{\"entity_id\":\"cont_a b\",\"entity\":\"contacts\",\"associations\":{"
                 "\"leads\":[{\"id\":\"" LEAD "\"}]}}",
                 "letters and digits");
  assert_refused("{\"entity_id\":\"" CONT "\",\"entity\":\"contacts\",\"associations\":{"
                 "\"leads\":[{\"id\":\"lead_a/b\"}]}}",
                 "letters and digits");
}

static void test_opportunity_ids_need_prefixes(void **state) {
  assert_refused("{\"entity_id\":\"" CONT "\",\"entity\":\"opportunities\",\"associations\":{"
                 "\"leads\":[{\"id\":\"" LEAD "\"}]}}",
                 "entity_id must be a Close id starting "
                 "with oppo_");
  assert_refused("{\"entity_id\":\"" OPP "\",\"entity\":\"opportunities\",\"associations\":{"
                 "\"leads\":[{\"id\":\"cont_1\"}]}}",
                 "associations.leads[0].id must be a Close id starting with lead_");
  assert_refused("{\"entity_id\":\"oppo_\",\"entity\":\"opportunities\",\"associations\":{"
                 "\"leads\":[{\"id\":\"" LEAD "\"}]}}",
                 "entity_id");
}

/* ---- contacts → leads / accounts ---- */

static void test_contact_to_lead(void **state) {
  plan_ok("{\"entity_id\":\"" CONT "\",\"entity\":\"contacts\",\"associations\":{"
          "\"leads\":[{\"id\":\"" LEAD "\"}]}}");
  assert_int_equal(u.plan.n, 1);
  assert_call(&u.plan.calls[0], "PUT", "/api/v1/contact/" CONT "/", "{\"lead_id\":\"" LEAD "\"}");
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_LEADS, LEAD);
}

static void test_contact_to_account_is_its_lead(void **state) {
  plan_ok("{\"entity_id\":\"" CONT "\",\"entity\":\"contacts\",\"associations\":{"
          "\"accounts\":[{\"id\":\"" LEAD "\"}]}}");
  assert_call(&u.plan.calls[0], "PUT", "/api/v1/contact/" CONT "/", "{\"lead_id\":\"" LEAD "\"}");
  assert_int_equal(u.plan.calls[0].nlinks, 1);
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_ACCOUNTS, LEAD);
}

static void test_contact_lead_and_account_same_id_one_call(void **state) {
  plan_ok("{\"entity_id\":\"" CONT "\",\"entity\":\"contacts\",\"associations\":{"
          "\"accounts\":[{\"id\":\"" LEAD "\"}],\"leads\":[{\"id\":\"" LEAD "\"}]}}");
  assert_int_equal(u.plan.n, 1);
  assert_int_equal(u.plan.calls[0].nlinks, 2);
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_ACCOUNTS, LEAD);
  assert_link(&u.plan.calls[0], 1, UCRM_KIND_LEADS, LEAD);
}

static void test_contact_lead_and_account_differ_refused(void **state) {
  assert_refused("{\"entity_id\":\"" CONT "\",\"entity\":\"contacts\",\"associations\":{"
                 "\"accounts\":[{\"id\":\"" LEAD "\"}],\"leads\":[{\"id\":\"" LEAD2 "\"}]}}",
                 "send one id");
}

static void test_contact_two_leads_refused(void **state) {
  assert_refused("{\"entity_id\":\"" CONT "\",\"entity\":\"contacts\",\"associations\":{"
                 "\"leads\":[{\"id\":\"" LEAD "\"},{\"id\":\"" LEAD2 "\"}]}}",
                 "associations.leads holds 2 ids");
  assert_refused("{\"entity_id\":\"" CONT "\",\"entity\":\"contacts\",\"associations\":{"
                 "\"accounts\":[{\"id\":\"" LEAD "\"},{\"id\":\"" LEAD2 "\"}]}}",
                 "associations.accounts holds 2 ids");
}

static void test_contact_lead_needs_prefix(void **state) {
  assert_refused("{\"entity_id\":\"" CONT "\",\"entity\":\"contacts\",\"associations\":{"
                 "\"accounts\":[{\"id\":\"acct_1\"}]}}",
                 "associations.accounts[0].id must be a Close id starting with lead_");
}

static void test_contact_empty_lead_list_beside_account(void **state) {
  plan_ok("{\"entity_id\":\"" CONT "\",\"entity\":\"contacts\",\"associations\":{"
          "\"leads\":[],\"accounts\":[{\"id\":\"" LEAD "\"}]}}");
  assert_single_call(&u.plan, "PUT", "/api/v1/contact/" CONT "/", "{\"lead_id\":\"" LEAD "\"}", 1);
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_ACCOUNTS, LEAD);
}

/* ---- contacts → opportunities ---- */

static void test_contact_to_opportunities_one_put_each(void **state) {
  plan_ok("{\"entity_id\":\"" CONT "\",\"entity\":\"contacts\",\"associations\":{"
          "\"opportunities\":[{\"id\":\"" OPP "\"},{\"id\":\"" OPP2 "\"}]}}");
  assert_int_equal(u.plan.n, 2);
  assert_call(&u.plan.calls[0], "PUT", "/api/v1/opportunity/" OPP "/",
              "{\"contact_id\":\"" CONT "\"}");
  assert_call(&u.plan.calls[1], "PUT", "/api/v1/opportunity/" OPP2 "/",
              "{\"contact_id\":\"" CONT "\"}");
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_OPPORTUNITIES, OPP);
  assert_link(&u.plan.calls[1], 0, UCRM_KIND_OPPORTUNITIES, OPP2);
}

static void test_contact_opportunity_needs_prefix(void **state) {
  assert_refused("{\"entity_id\":\"" CONT "\",\"entity\":\"contacts\",\"associations\":{"
                 "\"opportunities\":[{\"id\":\"" OPP "\"},{\"id\":\"deal_1\"}]}}",
                 "associations.opportunities[1].id must be a Close id starting with oppo_");
}

static void test_contact_to_organization_unsupported(void **state) {
  assert_refused("{\"entity_id\":\"" CONT "\",\"entity\":\"contacts\",\"associations\":{"
                 "\"organizations\":[{\"id\":\"orga_1\"}]}}",
                 "unsupported_association: close cannot link contacts to organizations");
}

static void test_contact_id_needs_prefix(void **state) {
  assert_refused("{\"entity_id\":\"" LEAD "\",\"entity\":\"contacts\",\"associations\":{"
                 "\"leads\":[{\"id\":\"" LEAD "\"}]}}",
                 "entity_id must be a Close id starting with cont_");
}

static void test_contact_kinds_planned_in_request_order(void **state) {
  plan_ok("{\"entity_id\":\"" CONT "\",\"entity\":\"contacts\",\"associations\":{"
          "\"opportunities\":[{\"id\":\"" OPP "\"}],\"leads\":[{\"id\":\"" LEAD "\"}]}}");
  assert_int_equal(u.plan.n, 2);
  assert_call(&u.plan.calls[0], "PUT", "/api/v1/opportunity/" OPP "/",
              "{\"contact_id\":\"" CONT "\"}");
  assert_call(&u.plan.calls[1], "PUT", "/api/v1/contact/" CONT "/", "{\"lead_id\":\"" LEAD "\"}");
}

/* ---- ids in paths ---- */

/* Ids that could move the path ('/', '?', '#', '%', "..", CR LF) never get that far: Close ids
 * are letters and digits after their prefix. */
static void test_path_ids_percent_encoded(void **state) {
  assert_refused("{\"entity_id\":\"cont_a/b?c#d%e\",\"entity\":\"contacts\",\"associations\":{"
                 "\"leads\":[{\"id\":\"" LEAD "\"}]}}",
                 "letters and digits");
  assert_refused("{\"entity_id\":\"" CONT "\",\"entity\":\"contacts\",\"associations\":{"
                 "\"opportunities\":[{\"id\":\"oppo_../../x\"}]}}",
                 "letters and digits");
}

static void test_path_id_with_control_byte_refused(void **state) {
  assert_refused("{\"entity_id\":\"cont_a\\r\\nHost: x\",\"entity\":\"contacts\","
                 "\"associations\":{\"leads\":[{\"id\":\"" LEAD "\"}]}}",
                 "letters and digits");
}

/* ---- remote_data ---- */

static void test_remote_data_merged_into_every_write(void **state) {
  plan_ok("{\"entity_id\":\"" CONT "\",\"entity\":\"contacts\",\"associations\":{"
          "\"opportunities\":[{\"id\":\"" OPP "\"},{\"id\":\"" OPP2 "\"}],"
          "\"leads\":[{\"id\":\"" LEAD "\"}]},\"remote_data\":{\"custom.cf_x\":\"y\"}}");
  assert_int_equal(u.plan.n, 3);
  assert_string_equal(u.plan.calls[0].body, "{\"contact_id\":\"" CONT "\",\"custom.cf_x\":\"y\"}");
  assert_string_equal(u.plan.calls[1].body, "{\"contact_id\":\"" CONT "\",\"custom.cf_x\":\"y\"}");
  assert_string_equal(u.plan.calls[2].body, "{\"lead_id\":\"" LEAD "\",\"custom.cf_x\":\"y\"}");
}

/* ---- auth, verdict, rate limits ---- */

static void check_auth(const char *api_key, const char *access_token, const char *want,
                       const char *file, int line) {
  struct ucrm_account acct;
  unit_account(&acct, P, P->default_base_url);
  acct.cred.api_key = (char *)api_key;
  acct.cred.access_token = (char *)access_token;
  unit_check_auth(&acct, want, file, line);
}

static void test_auth_header_basic_is_base64_of_key_colon(void **state) {
  check_auth("close-key", NULL, "Authorization: Basic Y2xvc2Uta2V5Og==", __FILE__, __LINE__);
  check_auth("a", NULL, "Authorization: Basic YTo=", __FILE__, __LINE__);
  check_auth("ab", NULL, "Authorization: Basic YWI6", __FILE__, __LINE__);
  check_auth("abc", NULL, "Authorization: Basic YWJjOg==", __FILE__, __LINE__);
}

static void test_auth_header_bearer_for_oauth(void **state) {
  check_auth(NULL, "oauth-tok", "Authorization: Bearer oauth-tok", __FILE__, __LINE__);
}

static void verdict_on(long status, const char *body_json, struct ucrm_verdict *v) {
  plan_ok("{\"entity_id\":\"" CONT "\",\"entity\":\"contacts\",\"associations\":{"
          "\"leads\":[{\"id\":\"" LEAD "\"}]}}");
  unit_verdict(P, &u.plan.calls[0], status, body_json, NULL, v);
}

static void test_verdict_success(void **state) {
  struct ucrm_verdict v;
  verdict_on(200, "{\"id\":\"" CONT "\",\"lead_id\":\"" LEAD "\"}", &v);
  assert_true(v.ok);
}

static void test_verdict_error_string(void **state) {
  struct ucrm_verdict v;
  verdict_on(400, "{\"error\":\"Invalid lead_id\"}", &v);
  assert_false(v.ok);
  assert_int_equal(v.status, 400);
  assert_string_equal(v.message, "close answered 400: Invalid lead_id");
}

static void test_verdict_error_object_message(void **state) {
  struct ucrm_verdict v;
  verdict_on(429, "{\"error\":{\"message\":\"API call count exceeded\",\"rate_reset\":1.5}}", &v);
  assert_int_equal(v.status, 429);
  assert_true(v.retryable);
  assert_string_equal(v.message, "close answered 429: API call count exceeded");
}

static void test_verdict_field_errors(void **state) {
  struct ucrm_verdict v;
  verdict_on(400, "{\"errors\":[],\"field-errors\":{\"lead_id\":\"Object does not exist.\"}}", &v);
  assert_int_equal(v.status, 400);
  assert_string_equal(v.message, "close answered 400: Object does not exist.");
}

static void test_verdict_not_found_without_body(void **state) {
  struct ucrm_verdict v;
  verdict_on(404, NULL, &v);
  assert_int_equal(v.status, 404);
  assert_false(v.retryable);
  assert_string_equal(v.message, "close answered 404");
}

static void test_ratelimit_header(void **state) {
  struct ucrm_ratelimit rl = {-1, -1, -1};
  P->ratelimit_header("ratelimit", "limit=20, remaining=19, reset=2", &rl);
  assert_ratelimit(&rl, 20, 19, 2);
}

static void test_ratelimit_other_headers_ignored(void **state) {
  struct ucrm_ratelimit rl = {-1, -1, -1};
  P->ratelimit_header("x-ratelimit-limit", "20", &rl);
  P->ratelimit_header("ratelimit", "xlimit=5, remaining=abc", &rl);
  assert_ratelimit(&rl, -1, -1, -1);
}

int main(void) {
  unit_filters_from_env();
  const struct CMUnitTest tests[] = {
      UNIT_PLAN_TEST(test_opportunity_to_lead),
      UNIT_PLAN_TEST(test_opportunity_two_leads_refused),
      UNIT_PLAN_TEST(test_opportunity_to_organization_unsupported),
      UNIT_PLAN_TEST(test_opportunity_ids_need_prefixes),
      UNIT_PLAN_TEST(test_ids_after_prefix_are_alphanumeric),
      UNIT_PLAN_TEST(test_contact_to_lead),
      UNIT_PLAN_TEST(test_contact_to_account_is_its_lead),
      UNIT_PLAN_TEST(test_contact_lead_and_account_same_id_one_call),
      UNIT_PLAN_TEST(test_contact_lead_and_account_differ_refused),
      UNIT_PLAN_TEST(test_contact_two_leads_refused),
      UNIT_PLAN_TEST(test_contact_lead_needs_prefix),
      UNIT_PLAN_TEST(test_contact_empty_lead_list_beside_account),
      UNIT_PLAN_TEST(test_contact_to_opportunities_one_put_each),
      UNIT_PLAN_TEST(test_contact_opportunity_needs_prefix),
      UNIT_PLAN_TEST(test_contact_to_organization_unsupported),
      UNIT_PLAN_TEST(test_contact_id_needs_prefix),
      UNIT_PLAN_TEST(test_contact_kinds_planned_in_request_order),
      UNIT_PLAN_TEST(test_path_ids_percent_encoded),
      UNIT_PLAN_TEST(test_path_id_with_control_byte_refused),
      UNIT_PLAN_TEST(test_remote_data_merged_into_every_write),
      UNIT_PLAN_TEST(test_auth_header_basic_is_base64_of_key_colon),
      UNIT_PLAN_TEST(test_auth_header_bearer_for_oauth),
      UNIT_PLAN_TEST(test_verdict_success),
      UNIT_PLAN_TEST(test_verdict_error_string),
      UNIT_PLAN_TEST(test_verdict_error_object_message),
      UNIT_PLAN_TEST(test_verdict_field_errors),
      UNIT_PLAN_TEST(test_verdict_not_found_without_body),
      UNIT_PLAN_TEST(test_ratelimit_header),
      UNIT_PLAN_TEST(test_ratelimit_other_headers_ignored),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
