/*
 * Unit tests for providers/pipedrive.c: the calls of SPEC 3.3 for Pipedrive, its auth header,
 * verdicts on the reply shapes of reference/providers.md section 5, and x-ratelimit-* headers.
 */
#include "unit_helpers.h"

#include <string.h>

#include "provider.h"

#define P (&ucrm_provider_pipedrive)
#define LEAD "adf21080-0e10-11eb-879b-05d71fb426ec"
#define LEAD2 "bdf21080-0e10-11eb-879b-05d71fb426ec"

static struct unit_plan u;

/* ---- leads → contacts / accounts: one PATCH /v1/leads/{id} ---- */

static void test_lead_to_person_and_org_is_one_patch(void **state) {
  plan_ok("{\"entity_id\":\"" LEAD "\",\"entity\":\"leads\",\"associations\":{"
          "\"contacts\":[{\"id\":\"123\"}],\"accounts\":[{\"id\":\"456\"}]}}");
  assert_single_call(&u.plan, "PATCH", "/v1/leads/" LEAD,
                     "{\"person_id\":123,\"organization_id\":456}", 2);
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_CONTACTS, "123");
  assert_link(&u.plan.calls[0], 1, UCRM_KIND_ACCOUNTS, "456");
}

static void test_lead_fields_follow_request_order(void **state) {
  plan_ok("{\"entity_id\":\"" LEAD "\",\"entity\":\"leads\",\"associations\":{"
          "\"accounts\":[{\"id\":456}],\"contacts\":[{\"id\":123}]}}");
  assert_call(&u.plan.calls[0], "PATCH", "/v1/leads/" LEAD,
              "{\"organization_id\":456,\"person_id\":123}");
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_ACCOUNTS, "456");
  assert_link(&u.plan.calls[0], 1, UCRM_KIND_CONTACTS, "123");
}

static void test_lead_to_person_only(void **state) {
  plan_ok("{\"entity_id\":\"" LEAD "\",\"entity\":\"leads\",\"associations\":{"
          "\"contacts\":[{\"id\":123}]}}");
  assert_single_call(&u.plan, "PATCH", "/v1/leads/" LEAD, "{\"person_id\":123}", 1);
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_CONTACTS, "123");
}

static void test_lead_to_org_via_acocunts_alias(void **state) {
  plan_ok("{\"entity_id\":\"" LEAD "\",\"entity\":\"leads\",\"associations\":{"
          "\"acocunts\":[{\"id\":\"456\"}]}}");
  assert_call(&u.plan.calls[0], "PATCH", "/v1/leads/" LEAD, "{\"organization_id\":456}");
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_ACCOUNTS, "456");
}

static void test_lead_two_persons_refused(void **state) {
  assert_refused("{\"entity_id\":\"" LEAD "\",\"entity\":\"leads\",\"associations\":{"
                 "\"contacts\":[{\"id\":1},{\"id\":2}]}}",
                 "associations.contacts holds 2 ids");
}

static void test_lead_two_orgs_refused(void **state) {
  assert_refused("{\"entity_id\":\"" LEAD "\",\"entity\":\"leads\",\"associations\":{"
                 "\"accounts\":[{\"id\":1},{\"id\":2}]}}",
                 "associations.accounts holds 2 ids");
}

static void test_lead_same_person_twice_is_one(void **state) {
  plan_ok("{\"entity_id\":\"" LEAD "\",\"entity\":\"leads\",\"associations\":{"
          "\"contacts\":[{\"id\":7},{\"id\":\"7\"}]}}");
  assert_call(&u.plan.calls[0], "PATCH", "/v1/leads/" LEAD, "{\"person_id\":7}");
}

static void test_lead_id_must_be_uuid(void **state) {
  assert_refused("{\"entity_id\":\"42\",\"entity\":\"leads\",\"associations\":{"
                 "\"contacts\":[{\"id\":1}]}}",
                 "entity_id must be a Pipedrive lead id");
  assert_refused("{\"entity_id\":\"../" LEAD "\",\"entity\":\"leads\",\"associations\":{"
                 "\"contacts\":[{\"id\":1}]}}",
                 "entity_id");
}

static void test_lead_person_id_must_be_integer(void **state) {
  static const char *const bad[] = {
      "\"abc\"", "\"12a\"", "\"0\"", "\"-1\"", "\"007\"", "\"1/2\"", "\"9223372036854775808\"",
      "-5"};
  assert_each_refused("{\"entity_id\":\"" LEAD "\",\"entity\":\"leads\","
                      "\"associations\":{\"contacts\":[{\"id\":%s}]}}",
                      bad, "associations.contacts[0].id must be a Pipedrive integer id");
}

static void test_lead_org_id_must_be_integer(void **state) {
  assert_refused("{\"entity_id\":\"" LEAD "\",\"entity\":\"leads\",\"associations\":{"
                 "\"contacts\":[{\"id\":1}],\"accounts\":[{\"id\":\"org-1\"}]}}",
                 "associations.accounts[0].id must be a Pipedrive integer id");
}

/* ---- contacts → leads: per lead PATCH /v1/leads/{lead} ---- */

static void test_person_to_leads_one_patch_per_lead(void **state) {
  plan_ok("{\"entity_id\":\"42\",\"entity\":\"contacts\",\"associations\":{"
          "\"leads\":[{\"id\":\"" LEAD "\"},{\"id\":\"" LEAD2 "\"}]}}");
  assert_int_equal(u.plan.n, 2);
  assert_call(&u.plan.calls[0], "PATCH", "/v1/leads/" LEAD, "{\"person_id\":42}");
  assert_call(&u.plan.calls[1], "PATCH", "/v1/leads/" LEAD2, "{\"person_id\":42}");
  assert_int_equal(u.plan.calls[0].nlinks, 1);
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_LEADS, LEAD);
  assert_link(&u.plan.calls[1], 0, UCRM_KIND_LEADS, LEAD2);
}

static void test_person_number_id_sent_as_number(void **state) {
  plan_ok("{\"entity_id\":42,\"entity\":\"contacts\",\"associations\":{"
          "\"leads\":[{\"id\":\"" LEAD "\"}]}}");
  assert_call(&u.plan.calls[0], "PATCH", "/v1/leads/" LEAD, "{\"person_id\":42}");
}

static void test_person_to_lead_needs_uuid_lead(void **state) {
  assert_refused("{\"entity_id\":\"42\",\"entity\":\"contacts\",\"associations\":{"
                 "\"leads\":[{\"id\":\"" LEAD "\"},{\"id\":\"7\"}]}}",
                 "associations.leads[1].id must be a Pipedrive lead id");
}

/* ---- contacts → opportunities: per deal PATCH /api/v2/deals/{deal} ---- */

static void test_person_to_deals_one_patch_per_deal(void **state) {
  plan_ok("{\"entity_id\":\"42\",\"entity\":\"contacts\",\"associations\":{"
          "\"opportunities\":[{\"id\":77},{\"id\":\"78\"}]}}");
  assert_int_equal(u.plan.n, 2);
  assert_call(&u.plan.calls[0], "PATCH", "/api/v2/deals/77", "{\"person_id\":42}");
  assert_call(&u.plan.calls[1], "PATCH", "/api/v2/deals/78", "{\"person_id\":42}");
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_OPPORTUNITIES, "77");
  assert_link(&u.plan.calls[1], 0, UCRM_KIND_OPPORTUNITIES, "78");
}

static void test_person_to_deal_needs_integer_deal(void **state) {
  assert_refused("{\"entity_id\":\"42\",\"entity\":\"contacts\",\"associations\":{"
                 "\"opportunities\":[{\"id\":\"77/../../v1/users\"}]}}",
                 "associations.opportunities[0].id must be a Pipedrive integer id");
}

/* ---- contacts → accounts / organizations: PATCH /api/v2/persons/{id} ---- */

static void test_person_to_account(void **state) {
  plan_ok("{\"entity_id\":\"42\",\"entity\":\"contacts\",\"associations\":{"
          "\"accounts\":[{\"id\":\"456\"}]}}");
  assert_single_call(&u.plan, "PATCH", "/api/v2/persons/42", "{\"org_id\":456}", 1);
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_ACCOUNTS, "456");
}

static void test_person_to_organization(void **state) {
  plan_ok("{\"entity_id\":\"42\",\"entity\":\"contacts\",\"associations\":{"
          "\"organizations\":[{\"id\":456}]}}");
  assert_call(&u.plan.calls[0], "PATCH", "/api/v2/persons/42", "{\"org_id\":456}");
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_ORGANIZATIONS, "456");
}

static void test_person_account_and_organization_same_id_one_call(void **state) {
  plan_ok("{\"entity_id\":\"42\",\"entity\":\"contacts\",\"associations\":{"
          "\"organizations\":[{\"id\":456}],\"accounts\":[{\"id\":\"456\"}]}}");
  assert_single_call(&u.plan, "PATCH", "/api/v2/persons/42", "{\"org_id\":456}", 2);
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_ORGANIZATIONS, "456");
  assert_link(&u.plan.calls[0], 1, UCRM_KIND_ACCOUNTS, "456");
}

static void test_person_account_and_organization_differ_refused(void **state) {
  assert_refused("{\"entity_id\":\"42\",\"entity\":\"contacts\",\"associations\":{"
                 "\"accounts\":[{\"id\":1}],\"organizations\":[{\"id\":2}]}}",
                 "send one id");
}

static void test_person_two_orgs_refused(void **state) {
  assert_refused("{\"entity_id\":\"42\",\"entity\":\"contacts\",\"associations\":{"
                 "\"accounts\":[{\"id\":1},{\"id\":2}]}}",
                 "associations.accounts holds 2 ids");
  assert_refused("{\"entity_id\":\"42\",\"entity\":\"contacts\",\"associations\":{"
                 "\"organizations\":[{\"id\":1},{\"id\":2}]}}",
                 "associations.organizations holds 2 ids");
}

static void test_person_org_id_must_be_integer(void **state) {
  assert_refused("{\"entity_id\":\"42\",\"entity\":\"contacts\",\"associations\":{"
                 "\"organizations\":[{\"id\":\"acme\"}]}}",
                 "associations.organizations[0].id must be a Pipedrive integer id");
}

static void test_person_id_must_be_integer(void **state) {
  static const char *const bad[] = {"abc", "4/2", "42?x=1", "42#f", "4%2", "..", "0"};
  assert_each_refused("{\"entity_id\":\"%s\",\"entity\":\"contacts\","
                      "\"associations\":{\"accounts\":[{\"id\":1}]}}",
                      bad, "entity_id must be a Pipedrive integer id");
}

/* ---- several kinds, remote_data ---- */

static void test_person_kinds_planned_in_request_order(void **state) {
  plan_ok("{\"entity_id\":\"42\",\"entity\":\"contacts\",\"associations\":{"
          "\"opportunities\":[{\"id\":77}],\"accounts\":[{\"id\":456}],"
          "\"leads\":[{\"id\":\"" LEAD "\"}]}}");
  assert_int_equal(u.plan.n, 3);
  assert_call(&u.plan.calls[0], "PATCH", "/api/v2/deals/77", "{\"person_id\":42}");
  assert_call(&u.plan.calls[1], "PATCH", "/api/v2/persons/42", "{\"org_id\":456}");
  assert_call(&u.plan.calls[2], "PATCH", "/v1/leads/" LEAD, "{\"person_id\":42}");
}

static void test_remote_data_merged_into_every_write(void **state) {
  plan_ok("{\"entity_id\":\"42\",\"entity\":\"contacts\",\"associations\":{"
          "\"leads\":[{\"id\":\"" LEAD "\"}],\"opportunities\":[{\"id\":77}],"
          "\"accounts\":[{\"id\":456}]},"
          "\"remote_data\":{\"visible_to\":\"3\",\"custom_fields\":{\"k\":1}}}");
  assert_int_equal(u.plan.n, 3);
  assert_call(&u.plan.calls[0], "PATCH", "/v1/leads/" LEAD,
              "{\"person_id\":42,\"visible_to\":\"3\",\"custom_fields\":{\"k\":1}}");
  assert_call(&u.plan.calls[1], "PATCH", "/api/v2/deals/77",
              "{\"person_id\":42,\"visible_to\":\"3\",\"custom_fields\":{\"k\":1}}");
  assert_call(&u.plan.calls[2], "PATCH", "/api/v2/persons/42",
              "{\"org_id\":456,\"visible_to\":\"3\",\"custom_fields\":{\"k\":1}}");
}

/* Found in review: remote_data could rewrite the field that carries the link, and the answer
 * then named a link that was never made. It may add fields, not change that one. */
static void test_remote_data_may_not_change_the_link(void **state) {
  assert_int_equal(unit_plan(&u, P,
                             "{\"entity_id\":\"" LEAD "\",\"entity\":\"leads\",\"associations\":{"
                             "\"contacts\":[{\"id\":123}]},\"remote_data\":{\"person_id\":999}}"),
                   UCRM_EINVAL);
  assert_non_null(strstr(u.plan.refusal, "person_id"));
}

/* ---- an empty list for one kind beside a filled one ---- */

static void test_lead_empty_person_list_beside_org(void **state) {
  plan_ok("{\"entity_id\":\"" LEAD "\",\"entity\":\"leads\",\"associations\":{"
          "\"contacts\":[],\"accounts\":[{\"id\":\"456\"}]}}");
  assert_single_call(&u.plan, "PATCH", "/v1/leads/" LEAD, "{\"organization_id\":456}", 1);
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_ACCOUNTS, "456");
}

static void test_person_empty_account_list_beside_leads(void **state) {
  plan_ok("{\"entity_id\":\"42\",\"entity\":\"contacts\",\"associations\":{"
          "\"accounts\":[],\"leads\":[{\"id\":\"" LEAD "\"}]}}");
  assert_int_equal(u.plan.n, 1);
  assert_call(&u.plan.calls[0], "PATCH", "/v1/leads/" LEAD, "{\"person_id\":42}");
}

static void test_person_empty_account_list_beside_organization(void **state) {
  plan_ok("{\"entity_id\":\"42\",\"entity\":\"contacts\",\"associations\":{"
          "\"accounts\":[],\"organizations\":[{\"id\":456}]}}");
  assert_single_call(&u.plan, "PATCH", "/api/v2/persons/42", "{\"org_id\":456}", 1);
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_ORGANIZATIONS, "456");
}

/* ---- auth, verdict, rate limits ---- */

static void check_auth(const char *api_token, const char *access_token, const char *want,
                       const char *file, int line) {
  struct ucrm_account acct;
  unit_account(&acct, P, P->default_base_url);
  acct.cred.api_token = (char *)api_token;
  acct.cred.access_token = (char *)access_token;
  unit_check_auth(&acct, want, file, line);
}

static void test_auth_header(void **state) {
  check_auth("tok123", NULL, "x-api-token: tok123", __FILE__, __LINE__);
  check_auth(NULL, "oauth456", "Authorization: Bearer oauth456", __FILE__, __LINE__);
  check_auth("tok123", "oauth456", "x-api-token: tok123", __FILE__, __LINE__);
}

static void verdict_on(long status, const char *body_json, struct ucrm_verdict *v) {
  plan_ok("{\"entity_id\":\"42\",\"entity\":\"contacts\",\"associations\":{"
          "\"opportunities\":[{\"id\":77}]}}");
  unit_verdict(P, &u.plan.calls[0], status, body_json, NULL, v);
}

static void test_verdict_success(void **state) {
  struct ucrm_verdict v;
  verdict_on(200, "{\"success\":true,\"data\":{\"id\":77,\"person_id\":42}}", &v);
  assert_true(v.ok);
  assert_false(v.retryable);
}

static void test_verdict_not_found(void **state) {
  struct ucrm_verdict v;
  verdict_on(404,
             "{\"success\":false,\"error\":\"Lead not found\",\"error_info\":\"Please "
             "check developers.pipedrive.com\",\"data\":null,\"additional_data\":null}",
             &v);
  assert_false(v.ok);
  assert_int_equal(v.status, 404);
  assert_false(v.retryable);
  assert_string_equal(v.message, "pipedrive answered 404: Lead not found");
}

static void test_verdict_unauthorized_and_validation(void **state) {
  struct ucrm_verdict v;
  verdict_on(401, "{\"success\":false,\"error\":\"unauthorized access\",\"errorCode\":401}", &v);
  assert_int_equal(v.status, 401);
  assert_string_equal(v.message, "pipedrive answered 401: unauthorized access");

  verdict_on(400,
             "{\"success\":false,\"error\":\"Validation failed: org_id: Expected number, "
             "received string\",\"code\":\"ERR_SCHEMA_VALIDATION_FAILED\"}",
             &v);
  assert_int_equal(v.status, 400);
  assert_has(v.message, "Validation failed");
}

static void test_verdict_throttled_and_server_error(void **state) {
  struct ucrm_verdict v;
  verdict_on(429, "{\"success\":false,\"error\":\"Too many requests\"}", &v);
  assert_int_equal(v.status, 429);
  assert_true(v.retryable);

  verdict_on(503, NULL, &v);
  assert_int_equal(v.status, 502);
  assert_true(v.retryable);
  assert_string_equal(v.message, "pipedrive answered 503");
}

static void test_ratelimit_headers(void **state) {
  struct ucrm_ratelimit rl = {-1, -1, -1};
  P->ratelimit_header("x-ratelimit-limit", "80", &rl);
  P->ratelimit_header("x-ratelimit-remaining", "79", &rl);
  P->ratelimit_header("x-ratelimit-reset", "2", &rl);
  P->ratelimit_header("x-daily-requests-left", "9000", &rl);
  assert_ratelimit(&rl, 80, 79, 2);
}

static void test_ratelimit_garbage_ignored(void **state) {
  struct ucrm_ratelimit rl = {-1, -1, -1};
  P->ratelimit_header("x-ratelimit-limit", "abc", &rl);
  P->ratelimit_header("x-ratelimit-remaining", "-3", &rl);
  P->ratelimit_header("ratelimit", "limit=5", &rl);
  assert_ratelimit(&rl, -1, -1, -1);
}

int main(void) {
  unit_filters_from_env();
  const struct CMUnitTest tests[] = {
      UNIT_PLAN_TEST(test_lead_to_person_and_org_is_one_patch),
      UNIT_PLAN_TEST(test_lead_fields_follow_request_order),
      UNIT_PLAN_TEST(test_lead_to_person_only),
      UNIT_PLAN_TEST(test_lead_to_org_via_acocunts_alias),
      UNIT_PLAN_TEST(test_lead_two_persons_refused),
      UNIT_PLAN_TEST(test_lead_two_orgs_refused),
      UNIT_PLAN_TEST(test_lead_same_person_twice_is_one),
      UNIT_PLAN_TEST(test_lead_id_must_be_uuid),
      UNIT_PLAN_TEST(test_lead_person_id_must_be_integer),
      UNIT_PLAN_TEST(test_lead_org_id_must_be_integer),
      UNIT_PLAN_TEST(test_person_to_leads_one_patch_per_lead),
      UNIT_PLAN_TEST(test_person_number_id_sent_as_number),
      UNIT_PLAN_TEST(test_person_to_lead_needs_uuid_lead),
      UNIT_PLAN_TEST(test_person_to_deals_one_patch_per_deal),
      UNIT_PLAN_TEST(test_person_to_deal_needs_integer_deal),
      UNIT_PLAN_TEST(test_person_to_account),
      UNIT_PLAN_TEST(test_person_to_organization),
      UNIT_PLAN_TEST(test_person_account_and_organization_same_id_one_call),
      UNIT_PLAN_TEST(test_person_account_and_organization_differ_refused),
      UNIT_PLAN_TEST(test_person_two_orgs_refused),
      UNIT_PLAN_TEST(test_person_org_id_must_be_integer),
      UNIT_PLAN_TEST(test_person_id_must_be_integer),
      UNIT_PLAN_TEST(test_person_kinds_planned_in_request_order),
      UNIT_PLAN_TEST(test_remote_data_merged_into_every_write),
      UNIT_PLAN_TEST(test_remote_data_may_not_change_the_link),
      UNIT_PLAN_TEST(test_lead_empty_person_list_beside_org),
      UNIT_PLAN_TEST(test_person_empty_account_list_beside_leads),
      UNIT_PLAN_TEST(test_person_empty_account_list_beside_organization),
      UNIT_PLAN_TEST(test_auth_header),
      UNIT_PLAN_TEST(test_verdict_success),
      UNIT_PLAN_TEST(test_verdict_not_found),
      UNIT_PLAN_TEST(test_verdict_unauthorized_and_validation),
      UNIT_PLAN_TEST(test_verdict_throttled_and_server_error),
      UNIT_PLAN_TEST(test_ratelimit_headers),
      UNIT_PLAN_TEST(test_ratelimit_garbage_ignored),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
