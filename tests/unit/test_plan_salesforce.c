/*
 * Unit tests for providers/salesforce.c: the calls of SPEC 3.3 for Salesforce (single PATCH or
 * one sObject Collections PATCH), its auth header, verdicts on the reply shapes of
 * reference/providers.md section 2 and the Sforce-Limit-Info header.
 */
#include "unit_helpers.h"

#include <string.h>

#include "buf.h"
#include "provider.h"

#define P (&ucrm_provider_salesforce)
#define ACCT "0015g00000AbCdEAAV"
#define ACCT2 "0015g00000AbCdFAAV"
#define OPP "0065g00000XyZ12AAB"
#define OPP2 "0065g00000XyZ13AAB"
#define OPP15 "0065g00000XyZ14"
#define SOBJ "/services/data/v62.0/sobjects/Opportunity/"
#define COMPOSITE "/services/data/v62.0/composite/sobjects"
#define REC(id, acct)                                                                              \
  "{\"attributes\":{\"type\":\"Opportunity\"},\"id\":\"" id "\",\"AccountId\":\"" acct "\"}"

static struct unit_plan u;

/* ---- accounts → opportunities ---- */

static void test_account_one_opportunity_single_patch(void **state) {
  plan_ok("{\"entity_id\":\"" ACCT "\",\"entity\":\"accounts\",\"associations\":{"
          "\"opportunities\":[{\"id\":\"" OPP "\"}]}}");
  assert_single_call(&u.plan, "PATCH", SOBJ OPP, "{\"AccountId\":\"" ACCT "\"}", 1);
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_OPPORTUNITIES, OPP);
}

static void test_account_two_opportunities_one_collection(void **state) {
  plan_ok("{\"entity_id\":\"" ACCT "\",\"entity\":\"accounts\",\"associations\":{"
          "\"opportunities\":[{\"id\":\"" OPP "\"},{\"id\":\"" OPP2 "\"}]}}");
  assert_single_call(&u.plan, "PATCH", COMPOSITE,
                     "{\"allOrNone\":true,\"records\":[" REC(OPP, ACCT) "," REC(OPP2, ACCT) "]}",
                     2);
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_OPPORTUNITIES, OPP);
  assert_link(&u.plan.calls[0], 1, UCRM_KIND_OPPORTUNITIES, OPP2);
}

static void test_collection_split_at_200_records(void **state) {
  struct ubuf b;
  ubuf_init(&b, 1 << 16);
  ubuf_puts(&b, "{\"entity_id\":\"" ACCT "\",\"entity\":\"accounts\",\"associations\":{"
                "\"opportunities\":[");
  for (int i = 0; i < 201; i++)
    ubuf_printf(&b, "%s{\"id\":\"0065g000%010d\"}", i ? "," : "", i);
  ubuf_puts(&b, "]}}");
  plan_ok(ubuf_cstr(&b));
  ubuf_free(&b);

  assert_int_equal(u.plan.n, 2);
  assert_string_equal(u.plan.calls[0].path, COMPOSITE);
  assert_int_equal(u.plan.calls[0].nlinks, 200);
  assert_link(&u.plan.calls[0], 199, UCRM_KIND_OPPORTUNITIES, "0065g0000000000199");
  assert_call(&u.plan.calls[1], "PATCH", COMPOSITE,
              "{\"allOrNone\":true,\"records\":[" REC("0065g0000000000200", ACCT) "]}");
  assert_int_equal(u.plan.calls[1].nlinks, 1);
}

static void test_api_version_from_credentials(void **state) {
  struct ucrm_err perr;
  const char *body = "{\"entity_id\":\"" ACCT "\",\"entity\":\"accounts\",\"associations\":{"
                     "\"opportunities\":[{\"id\":\"" OPP "\"},{\"id\":\"" OPP2 "\"}]}}";
  memset(&u, 0, sizeof(u));
  unit_account(&u.acct, P, "https://acme.my.salesforce.com");
  u.acct.cred.api_version = (char *)"v59.0";
  assert_int_equal(ucrm_assoc_parse(body, strlen(body), &u.a, &perr), 0);
  assert_int_equal(P->plan(&u.a, &u.acct, &u.plan, &u.err), 0);
  assert_string_equal(u.plan.calls[0].path, "/services/data/v59.0/composite/sobjects");
}

static void test_fifteen_char_ids_accepted(void **state) {
  plan_ok("{\"entity_id\":\"0015g00000AbCdE\",\"entity\":\"accounts\",\"associations\":{"
          "\"opportunities\":[{\"id\":\"" OPP15 "\"}]}}");
  assert_call(&u.plan.calls[0], "PATCH", SOBJ OPP15, "{\"AccountId\":\"0015g00000AbCdE\"}");
}

/* ---- opportunities → organizations ---- */

static void test_opportunity_to_organization(void **state) {
  plan_ok("{\"entity_id\":\"" OPP "\",\"entity\":\"opportunities\",\"associations\":{"
          "\"organizations\":[{\"id\":\"" ACCT "\"}]}}");
  assert_single_call(&u.plan, "PATCH", SOBJ OPP, "{\"AccountId\":\"" ACCT "\"}", 1);
  assert_link(&u.plan.calls[0], 0, UCRM_KIND_ORGANIZATIONS, ACCT);
}

static void test_opportunity_two_organizations_refused(void **state) {
  assert_refused("{\"entity_id\":\"" OPP "\",\"entity\":\"opportunities\",\"associations\":{"
                 "\"organizations\":[{\"id\":\"" ACCT "\"},{\"id\":\"" ACCT2 "\"}]}}",
                 "associations.organizations holds 2 ids");
}

static void test_opportunity_to_leads_unsupported(void **state) {
  assert_refused("{\"entity_id\":\"" OPP "\",\"entity\":\"opportunities\",\"associations\":{"
                 "\"leads\":[{\"id\":\"00Q5g00000AbCdEAAV\"}]}}",
                 "unsupported_association: salesforce cannot link opportunities to leads");
  assert_refused("{\"entity_id\":\"" OPP "\",\"entity\":\"opportunities\",\"associations\":{"
                 "\"organizations\":[{\"id\":\"" ACCT "\"}],\"leads\":[{\"id\":\"" ACCT2 "\"}]}}",
                 "salesforce cannot link opportunities to leads");
}

/* ---- ids ---- */

static void test_bad_ids_refused(void **state) {
  static const char *const bad[] = {"001",
                                    "0015g00000AbCdEA",
                                    "0015g00000AbCdEAA",
                                    "0015g00000AbCdEAAVX",
                                    "0015g00000AbC-EAAV",
                                    "0015g00000AbC/EAAV",
                                    "0015g00000AbC?EAAV",
                                    "0015g0000%2fbCdEAV",
                                    "..",
                                    "0015g00000AbCd\xc3\xa9"};
  assert_each_refused("{\"entity_id\":\"%s\",\"entity\":\"accounts\","
                      "\"associations\":{\"opportunities\":[{\"id\":\"" OPP "\"}]}}",
                      bad, "entity_id must be a Salesforce id (15 or 18 letters and digits)");
}

static void test_bad_opportunity_id_refused(void **state) {
  assert_refused("{\"entity_id\":\"" ACCT "\",\"entity\":\"accounts\",\"associations\":{"
                 "\"opportunities\":[{\"id\":\"" OPP "\"},{\"id\":\"0065g00000XyZ1/AAB\"}]}}",
                 "associations.opportunities[1].id must be a Salesforce id");
  assert_refused("{\"entity_id\":\"" OPP "\",\"entity\":\"opportunities\",\"associations\":{"
                 "\"organizations\":[{\"id\":\"acme\"}]}}",
                 "associations.organizations[0].id must be a Salesforce id");
}

/* ---- remote_data ---- */

static void test_remote_data_merged_into_single_patch(void **state) {
  plan_ok("{\"entity_id\":\"" ACCT "\",\"entity\":\"accounts\",\"associations\":{"
          "\"opportunities\":[{\"id\":\"" OPP "\"}]},\"remote_data\":{\"StageName\":\"Won\"}}");
  assert_call(&u.plan.calls[0], "PATCH", SOBJ OPP,
              "{\"AccountId\":\"" ACCT "\",\"StageName\":\"Won\"}");
}

static void test_remote_data_merged_into_every_record(void **state) {
  plan_ok("{\"entity_id\":\"" ACCT "\",\"entity\":\"accounts\",\"associations\":{"
          "\"opportunities\":[{\"id\":\"" OPP "\"},{\"id\":\"" OPP2 "\"}]},"
          "\"remote_data\":{\"StageName\":\"Won\"}}");
  assert_call(&u.plan.calls[0], "PATCH", COMPOSITE,
              "{\"allOrNone\":true,\"records\":["
              "{\"attributes\":{\"type\":\"Opportunity\"},\"id\":\"" OPP "\",\"AccountId\":\"" ACCT
              "\",\"StageName\":\"Won\"},"
              "{\"attributes\":{\"type\":\"Opportunity\"},\"id\":\"" OPP2 "\",\"AccountId\":\"" ACCT
              "\",\"StageName\":\"Won\"}]}");
}

static void test_remote_data_merged_into_organization_patch(void **state) {
  plan_ok("{\"entity_id\":\"" OPP "\",\"entity\":\"opportunities\",\"associations\":{"
          "\"organizations\":[{\"id\":\"" ACCT "\"}]},\"remote_data\":{\"Amount\":1e400}}");
  assert_call(&u.plan.calls[0], "PATCH", SOBJ OPP, "{\"AccountId\":\"" ACCT "\",\"Amount\":1e400}");
}

/* ---- auth, verdict, rate limits ---- */

static void test_auth_header_bearer(void **state) {
  struct ucrm_account acct;
  unit_account(&acct, P, "https://acme.my.salesforce.com");
  acct.cred.access_token = (char *)"00Dxx!AQ4AQ";
  assert_auth_header(&acct, "Authorization: Bearer 00Dxx!AQ4AQ");
}

/* Plans nopps opportunities and gives the verdict on call 0's reply. */
static void verdict_on(int nopps, long status, const char *body_json, struct ucrm_verdict *v,
                       unsigned char *link_ok) {
  if (nopps == 1)
    plan_ok("{\"entity_id\":\"" ACCT "\",\"entity\":\"accounts\",\"associations\":{"
            "\"opportunities\":[{\"id\":\"" OPP "\"}]}}");
  else
    plan_ok("{\"entity_id\":\"" ACCT "\",\"entity\":\"accounts\",\"associations\":{"
            "\"opportunities\":[{\"id\":\"" OPP "\"},{\"id\":\"" OPP2 "\"}]}}");
  unit_verdict(P, &u.plan.calls[0], status, body_json, link_ok, v);
}

static void test_verdict_single_patch_204(void **state) {
  struct ucrm_verdict v;
  verdict_on(1, 204, NULL, &v, NULL);
  assert_true(v.ok);
  assert_false(v.per_link);
}

static void test_verdict_request_limit_exceeded_is_429(void **state) {
  struct ucrm_verdict v;
  verdict_on(1, 403,
             "[{\"message\":\"TotalRequests Limit exceeded.\",\"errorCode\":"
             "\"REQUEST_LIMIT_EXCEEDED\"}]",
             &v, NULL);
  assert_false(v.ok);
  assert_int_equal(v.status, 429);
  assert_false(v.refresh_token);
  assert_has(v.message, "REQUEST_LIMIT_EXCEEDED");
}

static void test_verdict_other_403_stays_403(void **state) {
  struct ucrm_verdict v;
  verdict_on(1, 403, "[{\"message\":\"no\",\"errorCode\":\"INSUFFICIENT_ACCESS\"}]", &v, NULL);
  assert_int_equal(v.status, 403);
}

static void test_verdict_invalid_session_asks_refresh(void **state) {
  struct ucrm_verdict v;
  verdict_on(1, 401,
             "[{\"message\":\"Session expired or invalid\",\"errorCode\":"
             "\"INVALID_SESSION_ID\"}]",
             &v, NULL);
  assert_false(v.ok);
  assert_int_equal(v.status, 401);
  assert_true(v.refresh_token);
  assert_string_equal(v.message,
                      "salesforce answered 401: INVALID_SESSION_ID: Session expired or invalid");
}

static void test_verdict_not_found(void **state) {
  struct ucrm_verdict v;
  verdict_on(1, 404,
             "[{\"errorCode\":\"NOT_FOUND\",\"message\":\"The requested resource does "
             "not exist\"}]",
             &v, NULL);
  assert_int_equal(v.status, 404);
  assert_false(v.refresh_token);
  assert_has(v.message, "NOT_FOUND");
}

static void test_verdict_server_error_retryable(void **state) {
  struct ucrm_verdict v;
  verdict_on(1, 503, NULL, &v, NULL);
  assert_int_equal(v.status, 502);
  assert_true(v.retryable);
}

static void test_verdict_collection_all_success(void **state) {
  struct ucrm_verdict v;
  unsigned char ok[2] = {9, 9};
  verdict_on(2, 200,
             "[{\"id\":\"" OPP "\",\"success\":true,\"errors\":[]},"
             "{\"id\":\"" OPP2 "\",\"success\":true,\"errors\":[]}]",
             &v, ok);
  assert_true(v.ok);
  assert_true(v.per_link);
  assert_int_equal(ok[0], 1);
  assert_int_equal(ok[1], 1);
}

static void test_verdict_collection_failed_record_not_ok(void **state) {
  struct ucrm_verdict v;
  unsigned char ok[2] = {9, 9};
  verdict_on(2, 200,
             "[{\"id\":\"" OPP "\",\"success\":false,\"errors\":[{\"statusCode\":"
             "\"ALL_OR_NONE_OPERATION_ROLLED_BACK\",\"message\":\"rolled back\"}]},"
             "{\"id\":\"" OPP2 "\",\"success\":false,\"errors\":[{\"statusCode\":"
             "\"ENTITY_IS_DELETED\",\"message\":\"entity is deleted\",\"fields\":[]}]}]",
             &v, ok);
  assert_false(v.ok);
  assert_int_equal(v.status, 422);
  assert_true(v.per_link);
  assert_int_equal(ok[0], 0);
  assert_int_equal(ok[1], 0);
  assert_has(v.message, "ENTITY_IS_DELETED: entity is deleted");
}

static void test_verdict_collection_partial_flags_per_link(void **state) {
  struct ucrm_verdict v;
  unsigned char ok[2] = {9, 9};
  verdict_on(2, 200,
             "[{\"id\":\"" OPP "\",\"success\":true,\"errors\":[]},"
             "{\"id\":\"" OPP2 "\",\"success\":false,\"errors\":[{\"statusCode\":"
             "\"INVALID_CROSS_REFERENCE_KEY\",\"message\":\"invalid id\"}]}]",
             &v, ok);
  assert_false(v.ok);
  assert_true(v.per_link);
  assert_int_equal(ok[0], 1);
  assert_int_equal(ok[1], 0);
  assert_has(v.message, "INVALID_CROSS_REFERENCE_KEY");
}

static void test_verdict_collection_malformed_reply_fails_all(void **state) {
  struct ucrm_verdict v;
  unsigned char ok[2] = {9, 9};
  verdict_on(2, 200, "[{\"id\":\"" OPP "\",\"success\":true}]", &v, ok);
  assert_false(v.ok);
  assert_int_equal(ok[0], 0);
  assert_int_equal(ok[1], 0);
  assert_has(v.message, "malformed result");
}

static void test_ratelimit_api_usage(void **state) {
  struct ucrm_ratelimit rl = {-1, -1, -1};
  P->ratelimit_header("sforce-limit-info", "api-usage=18/15000", &rl);
  assert_ratelimit(&rl, 15000, 14982, -1);

  P->ratelimit_header("sforce-limit-info", "api-usage=16000/15000; per-app-api-usage=1/2", &rl);
  assert_int_equal(rl.limit, 15000);
  assert_int_equal(rl.remaining, 0);
}

static void test_ratelimit_other_or_garbage_ignored(void **state) {
  struct ucrm_ratelimit rl = {-1, -1, -1};
  P->ratelimit_header("x-ratelimit-limit", "5", &rl);
  P->ratelimit_header("sforce-limit-info", "api-usage=abc", &rl);
  P->ratelimit_header("sforce-limit-info", "api-usage=5/0", &rl);
  assert_int_equal(rl.limit, -1);
  assert_int_equal(rl.remaining, -1);
}

int main(void) {
  unit_filters_from_env();
  const struct CMUnitTest tests[] = {
      UNIT_PLAN_TEST(test_account_one_opportunity_single_patch),
      UNIT_PLAN_TEST(test_account_two_opportunities_one_collection),
      UNIT_PLAN_TEST(test_collection_split_at_200_records),
      UNIT_PLAN_TEST(test_api_version_from_credentials),
      UNIT_PLAN_TEST(test_fifteen_char_ids_accepted),
      UNIT_PLAN_TEST(test_opportunity_to_organization),
      UNIT_PLAN_TEST(test_opportunity_two_organizations_refused),
      UNIT_PLAN_TEST(test_opportunity_to_leads_unsupported),
      UNIT_PLAN_TEST(test_bad_ids_refused),
      UNIT_PLAN_TEST(test_bad_opportunity_id_refused),
      UNIT_PLAN_TEST(test_remote_data_merged_into_single_patch),
      UNIT_PLAN_TEST(test_remote_data_merged_into_every_record),
      UNIT_PLAN_TEST(test_remote_data_merged_into_organization_patch),
      UNIT_PLAN_TEST(test_auth_header_bearer),
      UNIT_PLAN_TEST(test_verdict_single_patch_204),
      UNIT_PLAN_TEST(test_verdict_request_limit_exceeded_is_429),
      UNIT_PLAN_TEST(test_verdict_other_403_stays_403),
      UNIT_PLAN_TEST(test_verdict_invalid_session_asks_refresh),
      UNIT_PLAN_TEST(test_verdict_not_found),
      UNIT_PLAN_TEST(test_verdict_server_error_retryable),
      UNIT_PLAN_TEST(test_verdict_collection_all_success),
      UNIT_PLAN_TEST(test_verdict_collection_failed_record_not_ok),
      UNIT_PLAN_TEST(test_verdict_collection_partial_flags_per_link),
      UNIT_PLAN_TEST(test_verdict_collection_malformed_reply_fails_all),
      UNIT_PLAN_TEST(test_ratelimit_api_usage),
      UNIT_PLAN_TEST(test_ratelimit_other_or_garbage_ignored),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
