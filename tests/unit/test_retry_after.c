/* Unit tests for ucrm_retry_after_ms (src/pipeline.c): Retry-After in seconds or as a date. */
#include "unit_helpers.h"

#include "pipeline.h"

/* "Tue, 23 May 2023 14:42:01 GMT", the example in Attio's rate-limit guide. */
#define ATTIO_DATE "Tue, 23 May 2023 14:42:01 GMT"
#define ATTIO_EPOCH 1684852921L

static void test_seconds(void **state) {
  assert_int_equal(ucrm_retry_after_ms("120", 0), 120000);
  assert_int_equal(ucrm_retry_after_ms("1", ATTIO_EPOCH), 1000);
  assert_int_equal(ucrm_retry_after_ms("0", 0), 0);
}

/* Found in review: a huge Retry-After was ignored, so the call was retried at once. A day or
 * more (or more than a long holds) now reads as "a day": past any request deadline. */
static void test_seconds_a_day_or_more_mean_not_now(void **state) {
  assert_int_equal(ucrm_retry_after_ms("86399", 0), 86399000L);
  assert_int_equal(ucrm_retry_after_ms("86400", 0), 86400000L);
  assert_int_equal(ucrm_retry_after_ms("99999999999999999999", 0), 86400000L);
}

static void test_negative_seconds_refused(void **state) {
  assert_int_equal(ucrm_retry_after_ms("-1", 0), -1);
}

static void test_http_date_in_future(void **state) {
  assert_int_equal(ucrm_retry_after_ms(ATTIO_DATE, ATTIO_EPOCH - 5), 5000);
  assert_int_equal(ucrm_retry_after_ms(ATTIO_DATE, ATTIO_EPOCH - 1), 1000);
}

static void test_http_date_now_or_past_is_zero(void **state) {
  assert_int_equal(ucrm_retry_after_ms(ATTIO_DATE, ATTIO_EPOCH), 0);
  assert_int_equal(ucrm_retry_after_ms(ATTIO_DATE, ATTIO_EPOCH + 3600), 0);
}

static void test_http_date_a_day_away_refused(void **state) {
  assert_int_equal(ucrm_retry_after_ms(ATTIO_DATE, ATTIO_EPOCH - 86400), -1);
}

static void test_garbage_refused(void **state) {
  assert_int_equal(ucrm_retry_after_ms(NULL, 0), -1);
  assert_int_equal(ucrm_retry_after_ms("", 0), -1);
  assert_int_equal(ucrm_retry_after_ms("soon", 0), -1);
  assert_int_equal(ucrm_retry_after_ms("12abc", 0), -1);
  assert_int_equal(ucrm_retry_after_ms("1.5", 0), -1);
  assert_int_equal(ucrm_retry_after_ms("Tue, 23 May 2023 14:42:01", 0), -1);
  assert_int_equal(ucrm_retry_after_ms("Tue, 23 May 2023 14:42:01 GMT junk", 0), -1);
  assert_int_equal(ucrm_retry_after_ms("2023-05-23T14:42:01Z", 0), -1);
}

int main(void) {
  unit_filters_from_env();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_seconds),
      cmocka_unit_test(test_seconds_a_day_or_more_mean_not_now),
      cmocka_unit_test(test_negative_seconds_refused),
      cmocka_unit_test(test_http_date_in_future),
      cmocka_unit_test(test_http_date_now_or_past_is_zero),
      cmocka_unit_test(test_http_date_a_day_away_refused),
      cmocka_unit_test(test_garbage_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
