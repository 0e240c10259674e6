/* Unit tests for src/buf.c: the capped growable buffer. */
#include "unit_helpers.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"

static void test_empty_buffer_reads_as_empty_string(void **state) {
  struct ubuf b;
  ubuf_init(&b, 16);
  assert_string_equal(ubuf_cstr(&b), "");
  assert_int_equal(b.len, 0);
  ubuf_free(&b);
}

static void test_appends_concatenate(void **state) {
  struct ubuf b;
  ubuf_init(&b, 1024);
  assert_int_equal(ubuf_puts(&b, "ab"), 0);
  assert_int_equal(ubuf_putc(&b, 'c'), 0);
  assert_int_equal(ubuf_append(&b, "d\0e", 3), 0);
  assert_int_equal(ubuf_printf(&b, "%d-%s", 42, "x"), 0);
  assert_int_equal(b.len, 10);
  assert_memory_equal(b.data, "abcd\0e42-x", 10);
  assert_int_equal(b.data[b.len], '\0');
  ubuf_free(&b);
}

static void test_growth_past_initial_capacity(void **state) {
  struct ubuf b;
  ubuf_init(&b, 1 << 20);
  for (int i = 0; i < 1000; i++)
    assert_int_equal(ubuf_puts(&b, "0123456789"), 0);
  assert_int_equal(b.len, 10000);
  assert_memory_equal(b.data + 9990, "0123456789", 10);
  ubuf_free(&b);
}

static void test_cap_is_exact(void **state) {
  struct ubuf b;
  ubuf_init(&b, 4);
  assert_int_equal(ubuf_puts(&b, "abcd"), 0);
  assert_int_equal(ubuf_putc(&b, 'e'), UCRM_ETOOBIG);
  assert_string_equal(ubuf_cstr(&b), "abcd");
  assert_int_equal(b.len, 4);
  ubuf_free(&b);
}

static void test_failed_append_leaves_buffer_unchanged(void **state) {
  struct ubuf b;
  ubuf_init(&b, 8);
  assert_int_equal(ubuf_puts(&b, "abc"), 0);
  assert_int_equal(ubuf_puts(&b, "defghi"), UCRM_ETOOBIG);
  assert_int_equal(ubuf_printf(&b, "%s", "123456"), UCRM_ETOOBIG);
  assert_int_equal(ubuf_append(&b, "x", (size_t)-1), UCRM_ETOOBIG);
  assert_string_equal(ubuf_cstr(&b), "abc");
  assert_int_equal(b.len, 3);
  ubuf_free(&b);
}

static void test_pct_encodes_all_but_unreserved(void **state) {
  struct ubuf b;
  ubuf_init(&b, 1024);
  const char in[] = "aZ09-._~ /?#%&=+[]\x01\xff";
  assert_int_equal(ubuf_append_pct(&b, in, sizeof(in) - 1), 0);
  assert_string_equal(ubuf_cstr(&b), "aZ09-._~%20%2F%3F%23%25%26%3D%2B%5B%5D%01%FF");
  ubuf_free(&b);
}

static void test_pct_respects_cap(void **state) {
  struct ubuf b;
  ubuf_init(&b, 4);
  assert_int_equal(ubuf_append_pct(&b, "a/b", 3), UCRM_ETOOBIG);
  ubuf_free(&b);
}

static void test_consume_drops_prefix(void **state) {
  struct ubuf b;
  ubuf_init(&b, 64);
  ubuf_puts(&b, "hello world");
  ubuf_consume(&b, 6);
  assert_string_equal(ubuf_cstr(&b), "world");
  assert_int_equal(b.len, 5);
  ubuf_consume(&b, 99);
  assert_int_equal(b.len, 0);
  assert_string_equal(ubuf_cstr(&b), "");
  ubuf_free(&b);
}

static void test_reset_keeps_memory(void **state) {
  struct ubuf b;
  ubuf_init(&b, 64);
  ubuf_puts(&b, "abc");
  size_t cap = b.cap;
  ubuf_reset(&b);
  assert_int_equal(b.len, 0);
  assert_int_equal(b.cap, cap);
  assert_string_equal(ubuf_cstr(&b), "");
  ubuf_free(&b);
}

static void test_steal_hands_over_memory(void **state) {
  struct ubuf b;
  ubuf_init(&b, 64);
  ubuf_puts(&b, "abc");
  size_t len = 0;
  char *p = ubuf_steal(&b, &len);
  assert_string_equal(p, "abc");
  assert_int_equal(len, 3);
  assert_null(b.data);
  assert_int_equal(b.len, 0);
  assert_int_equal(ubuf_puts(&b, "new"), 0);
  assert_string_equal(ubuf_cstr(&b), "new");
  free(p);
  ubuf_free(&b);
}

int main(void) {
  unit_filters_from_env();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty_buffer_reads_as_empty_string),
      cmocka_unit_test(test_appends_concatenate),
      cmocka_unit_test(test_growth_past_initial_capacity),
      cmocka_unit_test(test_cap_is_exact),
      cmocka_unit_test(test_failed_append_leaves_buffer_unchanged),
      cmocka_unit_test(test_pct_encodes_all_but_unreserved),
      cmocka_unit_test(test_pct_respects_cap),
      cmocka_unit_test(test_consume_drops_prefix),
      cmocka_unit_test(test_reset_keeps_memory),
      cmocka_unit_test(test_steal_hands_over_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
