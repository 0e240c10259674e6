/*
 * mock_json.c: the few yajl helpers the routes share (bounded parsing, emitting parsed values,
 * deep copies).
 */
#include <stdlib.h>
#include <string.h>

#include "mock.h"

/* Counts bracket depth outside strings; cheaper than parsing and bounds yajl_tree's recursion. */
static int mock_json_depth_ok(const char *t, size_t len) {
  int depth = 0;
  int in_str = 0;

  for (size_t i = 0; i < len; i++) {
    char c = t[i];

    if (in_str) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_str = 0;
      continue;
    }
    if (c == '"') {
      in_str = 1;
    } else if (c == '[' || c == '{') {
      if (++depth > MOCK_MAX_JSON_DEPTH)
        return 0;
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  return 1;
}

yajl_val mock_json_parse(const char *text, size_t len) {
  char err[128];

  if (text == NULL || len == 0)
    return NULL;

  /* yajl_tree_parse stops at the first NUL, so a NUL would hide trailing garbage. */
  if (memchr(text, '\0', len) != NULL || !mock_json_depth_ok(text, len))
    return NULL;
  return yajl_tree_parse(text, err, sizeof(err));
}

yajl_gen mock_gen_new(void) {
  yajl_gen g = yajl_gen_alloc(NULL);

  if (g == NULL) {
    mock_log("error", "msg=yajl_gen_alloc_failed");
    abort();
  }
  yajl_gen_config(g, yajl_gen_validate_utf8, 1);
  return g;
}

void mock_gen_strn(yajl_gen g, const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;

  if (yajl_gen_string(g, u, n) != yajl_gen_invalid_string)
    return;

  /*
   * Raw request bodies and headers may hold any bytes. yajl refuses invalid UTF-8 before it
   * writes anything, so a lossy ASCII copy can take its place and the output stays valid JSON.
   */
  unsigned char *copy = (unsigned char *)mock_xstrndup(s, n);
  for (size_t i = 0; i < n; i++) {
    if (copy[i] >= 0x80)
      copy[i] = '?';
  }
  yajl_gen_string(g, copy, n);
  free(copy);
}

void mock_gen_str(yajl_gen g, const char *s) {
  mock_gen_strn(g, s, strlen(s));
}

void mock_gen_int(yajl_gen g, long long v) {
  yajl_gen_integer(g, v);
}

static void mock_gen_object(yajl_gen g, yajl_val v) {
  yajl_gen_map_open(g);
  for (size_t i = 0; i < v->u.object.len; i++) {
    mock_gen_str(g, v->u.object.keys[i]);
    mock_gen_val(g, v->u.object.values[i]);
  }
  yajl_gen_map_close(g);
}

void mock_gen_val(yajl_gen g, yajl_val v) {
  if (v == NULL || YAJL_IS_NULL(v)) {
    yajl_gen_null(g);
  } else if (YAJL_IS_STRING(v)) {
    mock_gen_str(g, v->u.string);
  } else if (YAJL_IS_NUMBER(v)) {
    /* The digits come from yajl's own parser, so they are a valid JSON number. */
    yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
  } else if (YAJL_IS_TRUE(v)) {
    yajl_gen_bool(g, 1);
  } else if (YAJL_IS_FALSE(v)) {
    yajl_gen_bool(g, 0);
  } else if (YAJL_IS_OBJECT(v)) {
    mock_gen_object(g, v);
  } else if (YAJL_IS_ARRAY(v)) {
    yajl_gen_array_open(g);
    for (size_t i = 0; i < v->u.array.len; i++)
      mock_gen_val(g, v->u.array.values[i]);
    yajl_gen_array_close(g);
  }
}

void mock_gen_finish(yajl_gen g, struct mock_buf *out) {
  const unsigned char *text;
  size_t len;

  yajl_gen_get_buf(g, &text, &len);
  mock_buf_append(out, text, len);
  yajl_gen_free(g);
}

yajl_val mock_json_clone(yajl_val v) {
  struct mock_buf text;
  yajl_gen g = mock_gen_new();

  mock_buf_init(&text, SIZE_MAX);
  mock_gen_val(g, v);
  mock_gen_finish(g, &text);

  yajl_val copy = mock_json_parse(text.data, text.len);
  mock_buf_free(&text);
  return copy;
}

yajl_val mock_obj_get(yajl_val obj, const char *key) {
  if (obj == NULL || !YAJL_IS_OBJECT(obj))
    return NULL;
  for (size_t i = 0; i < obj->u.object.len; i++) {
    if (strcmp(obj->u.object.keys[i], key) == 0)
      return obj->u.object.values[i];
  }
  return NULL;
}
