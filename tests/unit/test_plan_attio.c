/*
 * Unit tests for providers/attio.c: the calls of SPEC 3.3 for Attio (record-reference values,
 * always PATCH), its auth header and verdicts on the reply shapes of reference/providers.md
 * section 3.
 */
#include "unit_helpers.h"

#include <string.h>

#include "provider.h"

#define P (&ucrm_provider_attio)
#define COMPANY "14beef7a-99f7-4534-a87e-70b564330a4c"
#define COMPANY2 "97052eb9-e65e-443f-a297-f2d9a4a7f795"
#define PERSON "5829dd6c-0577-40dc-a858-8bd9a0d6aa58"
#define DEAL "bf071e1f-6035-429d-b874-d83ea64ea13b"
#define DEAL2 "0f3c2a9e-7f0b-4f7e-9f7e-1c2d3e4f5a6b"

#define REF(object, id) "{\"target_object\":\"" object "\",\"target_record_id\":\"" id "\"}"
#define VALUES(v) "{\"data\":{\"values\":{" v "}}}"

static struct unit_plan u;

/* ---- the four rows ---- */

static void test_company_to_deals_appends_associated_deals(void **state) {
  plan_ok("{\"entity_id\":\"" COMPANY "\",\"entity\":\"accounts\",\"associations\":{"
          "\"opportunities\":[{\"id\":\"" DEAL "\"},{\"id\":\"" DEAL2 "\"}]}}");
  assert_single_call(
      &u.plan, "PATCH", "/v2/objects/companies/records/" COMPANY,
      VALUES("\"associated_deals\":[" REF("deals", DEAL) "," REF("deals", DEAL2) "]"), 2);
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_OPPORTUNITIES, DEAL);
  assert_link(&u.plan.calls[0], 1, UCRM_KIND_OPPORTUNITIES, DEAL2);
}

static void test_deal_to_organization_sets_associated_company(void **state) {
  plan_ok("{\"entity_id\":\"" DEAL "\",\"entity\":\"opportunities\",\"associations\":{"
          "\"organizations\":[{\"id\":\"" COMPANY "\"}]}}");
  assert_int_equal(u.plan.n, 1);
  assert_call(&u.plan.calls[0], "PATCH", "/v2/objects/deals/records/" DEAL,
              VALUES("\"associated_company\":[" REF("companies", COMPANY) "]"));
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_ORGANIZATIONS, COMPANY);
}

static void test_deal_two_organizations_refused(void **state) {
  assert_refused("{\"entity_id\":\"" DEAL "\",\"entity\":\"opportunities\",\"associations\":{"
                 "\"organizations\":[{\"id\":\"" COMPANY "\"},{\"id\":\"" COMPANY2 "\"}]}}",
                 "associations.organizations holds 2 ids");
}

static void test_person_to_deals_appends_associated_deals(void **state) {
  plan_ok("{\"entity_id\":\"" PERSON "\",\"entity\":\"contacts\",\"associations\":{"
          "\"opportunities\":[{\"id\":\"" DEAL "\"},{\"id\":\"" DEAL2 "\"}]}}");
  assert_single_call(
      &u.plan, "PATCH", "/v2/objects/people/records/" PERSON,
      VALUES("\"associated_deals\":[" REF("deals", DEAL) "," REF("deals", DEAL2) "]"), 2);
}

static void test_person_to_account_sets_company(void **state) {
  plan_ok("{\"entity_id\":\"" PERSON "\",\"entity\":\"contacts\",\"associations\":{"
          "\"accounts\":[{\"id\":\"" COMPANY "\"}]}}");
  assert_call(&u.plan.calls[0], "PATCH", "/v2/objects/people/records/" PERSON,
              VALUES("\"company\":[" REF("companies", COMPANY) "]"));
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_ACCOUNTS, COMPANY);
}

static void test_person_to_organization_sets_company(void **state) {
  plan_ok("{\"entity_id\":\"" PERSON "\",\"entity\":\"contacts\",\"associations\":{"
          "\"organizations\":[{\"id\":\"" COMPANY "\"}]}}");
  assert_call(&u.plan.calls[0], "PATCH", "/v2/objects/people/records/" PERSON,
              VALUES("\"company\":[" REF("companies", COMPANY) "]"));
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_ORGANIZATIONS, COMPANY);
}

static void test_person_account_and_organization_same_id_one_ref(void **state) {
  plan_ok("{\"entity_id\":\"" PERSON "\",\"entity\":\"contacts\",\"associations\":{"
          "\"accounts\":[{\"id\":\"" COMPANY "\"}],\"organizations\":[{\"id\":\"" COMPANY "\"}]}}");
  assert_single_call(&u.plan, "PATCH", "/v2/objects/people/records/" PERSON,
                     VALUES("\"company\":[" REF("companies", COMPANY) "]"), 2);
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_ACCOUNTS, COMPANY);
  assert_link(&u.plan.calls[0], 1, UCRM_KIND_ORGANIZATIONS, COMPANY);
}

static void test_person_account_and_organization_differ_refused(void **state) {
  assert_refused("{\"entity_id\":\"" PERSON "\",\"entity\":\"contacts\",\"associations\":{"
                 "\"accounts\":[{\"id\":\"" COMPANY "\"}],\"organizations\":[{\"id\":\"" COMPANY2
                 "\"}]}}",
                 "send one id");
}

static void test_person_two_companies_refused(void **state) {
  assert_refused("{\"entity_id\":\"" PERSON "\",\"entity\":\"contacts\",\"associations\":{"
                 "\"accounts\":[{\"id\":\"" COMPANY "\"},{\"id\":\"" COMPANY2 "\"}]}}",
                 "associations.accounts holds 2 ids");
}

static void test_person_deals_and_company_in_one_patch(void **state) {
  plan_ok("{\"entity_id\":\"" PERSON "\",\"entity\":\"contacts\",\"associations\":{"
          "\"accounts\":[{\"id\":\"" COMPANY "\"}],\"opportunities\":[{\"id\":\"" DEAL "\"}]}}");
  /* clang-format off */
  assert_single_call(&u.plan, "PATCH", "/v2/objects/people/records/" PERSON,
                     VALUES("\"company\":[" REF("companies", COMPANY) "],"
                            "\"associated_deals\":[" REF("deals", DEAL) "]"),
                     2);
  /* clang-format on */
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_ACCOUNTS, COMPANY);
  assert_link(&u.plan.calls[0], 1, UCRM_KIND_OPPORTUNITIES, DEAL);
}

static void test_person_empty_organization_list_beside_account(void **state) {
  plan_ok("{\"entity_id\":\"" PERSON "\",\"entity\":\"contacts\",\"associations\":{"
          "\"organizations\":[],\"accounts\":[{\"id\":\"" COMPANY "\"}]}}");
  assert_single_call(&u.plan, "PATCH", "/v2/objects/people/records/" PERSON,
                     VALUES("\"company\":[" REF("companies", COMPANY) "]"), 1);
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_ACCOUNTS, COMPANY);
}

/* ---- refused ---- */

static void test_leads_unsupported(void **state) {
  assert_refused("{\"entity_id\":\"" DEAL "\",\"entity\":\"opportunities\",\"associations\":{"
                 "\"leads\":[{\"id\":\"" PERSON "\"}]}}",
                 "unsupported_association: attio cannot link opportunities to leads");
  assert_refused("{\"entity_id\":\"" PERSON "\",\"entity\":\"contacts\",\"associations\":{"
                 "\"opportunities\":[{\"id\":\"" DEAL "\"}],\"leads\":[{\"id\":\"" DEAL2 "\"}]}}",
                 "unsupported_association: attio cannot link contacts to leads");
}

static void test_entity_id_must_be_uuid(void **state) {
  assert_refused("{\"entity_id\":\"acme\",\"entity\":\"accounts\",\"associations\":{"
                 "\"opportunities\":[{\"id\":\"" DEAL "\"}]}}",
                 "entity_id must be an Attio record id");
  assert_refused("{\"entity_id\":\"../" COMPANY "\",\"entity\":\"accounts\",\"associations\":{"
                 "\"opportunities\":[{\"id\":\"" DEAL "\"}]}}",
                 "entity_id");
}

static void test_link_id_must_be_uuid(void **state) {
  assert_refused("{\"entity_id\":\"" COMPANY "\",\"entity\":\"accounts\",\"associations\":{"
                 "\"opportunities\":[{\"id\":\"" DEAL "\"},{\"id\":\"deal/1\"}]}}",
                 "associations.opportunities[1].id must be an Attio record id");
}

/* ---- remote_data ---- */

static void test_remote_data_deep_merged_into_values(void **state) {
  plan_ok("{\"entity_id\":\"" COMPANY "\",\"entity\":\"accounts\",\"associations\":{"
          "\"opportunities\":[{\"id\":\"" DEAL "\"}]},"
          "\"remote_data\":{\"data\":{\"values\":{\"name\":\"Acme\"}}}}");
  assert_call(&u.plan.calls[0], "PATCH", "/v2/objects/companies/records/" COMPANY,
              VALUES("\"associated_deals\":[" REF("deals", DEAL) "],\"name\":\"Acme\""));
}

/* remote_data merges into data.values but may not replace the reference being written. */
static void test_remote_data_may_not_replace_the_reference(void **state) {
  assert_int_equal(
      unit_plan(&u, P,
                "{\"entity_id\":\"" COMPANY "\",\"entity\":\"accounts\",\"associations\":{"
                "\"opportunities\":[{\"id\":\"" DEAL "\"}]},"
                "\"remote_data\":{\"data\":{\"values\":{\"associated_deals\":[]}},\"x\":1}}"),
      UCRM_EINVAL);
  assert_non_null(strstr(u.plan.refusal, "data.values.associated_deals"));
}

/* ---- auth, verdict ---- */

static void test_auth_header_bearer(void **state) {
  struct ucrm_account acct;
  unit_account(&acct, P, P->default_base_url);
  acct.cred.access_token = (char *)"attio-tok";
  assert_auth_header(&acct, "Authorization: Bearer attio-tok");
}

static void test_no_ratelimit_header_reader(void **state) {
  assert_null(P->ratelimit_header);
}

static void verdict_on(long status, const char *body_json, struct ucrm_verdict *v) {
  plan_ok("{\"entity_id\":\"" COMPANY "\",\"entity\":\"accounts\",\"associations\":{"
          "\"opportunities\":[{\"id\":\"" DEAL "\"}]}}");
  unit_verdict(P, &u.plan.calls[0], status, body_json, NULL, v);
}

static void test_verdict_success(void **state) {
  struct ucrm_verdict v;
  verdict_on(200, "{\"data\":{\"id\":{\"record_id\":\"" COMPANY "\"},\"values\":{}}}", &v);
  assert_true(v.ok);
}

static void test_verdict_not_found(void **state) {
  struct ucrm_verdict v;
  verdict_on(404,
             "{\"status_code\":404,\"type\":\"invalid_request_error\",\"code\":"
             "\"not_found\",\"message\":\"Record not found.\"}",
             &v);
  assert_false(v.ok);
  assert_int_equal(v.status, 404);
  assert_false(v.retryable);
  assert_string_equal(v.message, "attio answered 404: Record not found.");
}

static void test_verdict_concurrent_write_conflict_retryable(void **state) {
  struct ucrm_verdict v;
  verdict_on(409,
             "{\"status_code\":409,\"type\":\"invalid_request_error\",\"code\":"
             "\"concurrent_write_conflict\",\"message\":\"Please try again\"}",
             &v);
  assert_int_equal(v.status, 409);
  assert_true(v.retryable);

  verdict_on(409, "{\"status_code\":409,\"code\":\"uniqueness_conflict\",\"message\":\"x\"}", &v);
  assert_int_equal(v.status, 409);
  assert_false(v.retryable);
}

static void test_verdict_rate_limited(void **state) {
  struct ucrm_verdict v;
  verdict_on(429,
             "{\"status_code\":429,\"type\":\"rate_limit_error\",\"code\":"
             "\"rate_limit_exceeded\",\"message\":\"Rate limit exceeded, please try again "
             "later\"}",
             &v);
  assert_int_equal(v.status, 429);
  assert_true(v.retryable);
  assert_has(v.message, "Rate limit exceeded");
}

static void test_verdict_bad_request(void **state) {
  struct ucrm_verdict v;
  verdict_on(400,
             "{\"status_code\":400,\"type\":\"invalid_request_error\",\"code\":"
             "\"missing_value\",\"message\":\"Required value was not provided.\"}",
             &v);
  assert_int_equal(v.status, 400);
  assert_false(v.retryable);
  assert_string_equal(v.message, "attio answered 400: Required value was not provided.");
}

int main(void) {
  unit_filters_from_env();
  const struct CMUnitTest tests[] = {
      UNIT_PLAN_TEST(test_company_to_deals_appends_associated_deals),
      UNIT_PLAN_TEST(test_deal_to_organization_sets_associated_company),
      UNIT_PLAN_TEST(test_deal_two_organizations_refused),
      UNIT_PLAN_TEST(test_person_to_deals_appends_associated_deals),
      UNIT_PLAN_TEST(test_person_to_account_sets_company),
      UNIT_PLAN_TEST(test_person_to_organization_sets_company),
      UNIT_PLAN_TEST(test_person_account_and_organization_same_id_one_ref),
      UNIT_PLAN_TEST(test_person_account_and_organization_differ_refused),
      UNIT_PLAN_TEST(test_person_two_companies_refused),
      UNIT_PLAN_TEST(test_person_deals_and_company_in_one_patch),
      UNIT_PLAN_TEST(test_person_empty_organization_list_beside_account),
      UNIT_PLAN_TEST(test_leads_unsupported),
      UNIT_PLAN_TEST(test_entity_id_must_be_uuid),
      UNIT_PLAN_TEST(test_link_id_must_be_uuid),
      UNIT_PLAN_TEST(test_remote_data_deep_merged_into_values),
      UNIT_PLAN_TEST(test_remote_data_may_not_replace_the_reference),
      UNIT_PLAN_TEST(test_auth_header_bearer),
      UNIT_PLAN_TEST(test_no_ratelimit_header_reader),
      UNIT_PLAN_TEST(test_verdict_success),
      UNIT_PLAN_TEST(test_verdict_not_found),
      UNIT_PLAN_TEST(test_verdict_concurrent_write_conflict_retryable),
      UNIT_PLAN_TEST(test_verdict_rate_limited),
      UNIT_PLAN_TEST(test_verdict_bad_request),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
