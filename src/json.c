#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "common.h"

struct jv *jv_new(enum jv_type type) {
  struct jv *v = calloc(1, sizeof(*v));
  if (v != NULL)
    v->type = type;
  return v;
}

static char *jv_strndup(const char *s, size_t len) {
  char *p = malloc(len + 1);
  if (p == NULL)
    return NULL;
  memcpy(p, s, len);
  p[len] = '\0';
  return p;
}

static struct jv *jv_new_text(enum jv_type type, const char *s, size_t len) {
  struct jv *v = jv_new(type);
  if (v == NULL)
    return NULL;

  v->u.str.s = jv_strndup(s, len);
  if (v->u.str.s == NULL) {
    free(v);
    return NULL;
  }
  v->u.str.len = len;
  return v;
}

struct jv *jv_new_string(const char *s, size_t len) {
  return jv_new_text(JV_STRING, s, len);
}

size_t ucrm_utf8_sanitize(const unsigned char *s, size_t n, unsigned char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    unsigned char c = s[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    int ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; k++)
      ok = (s[i + k] & 0xC0) == 0x80;
    /* Reject overlong forms, surrogates and code points past U+10FFFF. */
    if (ok && len == 2)
      ok = c >= 0xC2;
    if (ok && len == 3)
      ok = !(c == 0xE0 && s[i + 1] < 0xA0) && !(c == 0xED && s[i + 1] >= 0xA0);
    if (ok && len == 4)
      ok = c <= 0xF4 && !(c == 0xF0 && s[i + 1] < 0x90) && !(c == 0xF4 && s[i + 1] >= 0x90);

    if (ok) {
      memcpy(out + o, s + i, len);
      o += len;
      i += len;
    } else {
      memcpy(out + o, "\xEF\xBF\xBD", 3);
      o += 3;
      i += 1;
    }
  }
  return o;
}

static int jv_ascii(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if ((unsigned char)s[i] >= 0x80)
      return 0;
  }
  return 1;
}

struct jv *jv_new_string_utf8(const char *s, size_t len) {
  if (jv_ascii(s, len))
    return jv_new_string(s, len); /* nothing to repair: skip the scratch copy */

  unsigned char *clean = malloc(len * 3 + 1);
  if (clean == NULL)
    return NULL;
  size_t n = ucrm_utf8_sanitize((const unsigned char *)s, len, clean);
  struct jv *v = jv_new_string((const char *)clean, n);
  free(clean);
  return v;
}

struct jv *jv_new_number(const char *text, size_t len) {
  return jv_new_text(JV_NUMBER, text, len);
}

struct jv *jv_new_int(long long n) {
  char tmp[32];
  int len = snprintf(tmp, sizeof(tmp), "%lld", n);
  return jv_new_number(tmp, (size_t)len);
}

void jv_free(struct jv *v) {
  if (v == NULL)
    return;

  switch (v->type) {
  case JV_STRING:
  case JV_NUMBER:
    free(v->u.str.s);
    break;
  case JV_ARRAY:
    for (size_t i = 0; i < v->u.arr.n; i++)
      jv_free(v->u.arr.items[i]);
    free(v->u.arr.items);
    break;
  case JV_OBJECT:
    for (size_t i = 0; i < v->u.obj.n; i++) {
      free(v->u.obj.m[i].key);
      jv_free(v->u.obj.m[i].val);
    }
    free(v->u.obj.m);
    break;
  default:
    break;
  }
  free(v);
}

static int jv_obj_set_n(struct jv *obj, const char *key, size_t klen, struct jv *val);

struct jv *jv_copy(const struct jv *v) {
  switch (v->type) {
  case JV_STRING:
  case JV_NUMBER:
    return jv_new_text(v->type, v->u.str.s, v->u.str.len);
  case JV_ARRAY: {
    struct jv *a = jv_new(JV_ARRAY);
    for (size_t i = 0; a != NULL && i < v->u.arr.n; i++) {
      if (jv_arr_push(a, jv_copy(v->u.arr.items[i])) != 0) {
        jv_free(a);
        return NULL;
      }
    }
    return a;
  }
  case JV_OBJECT: {
    struct jv *o = jv_new(JV_OBJECT);
    for (size_t i = 0; o != NULL && i < v->u.obj.n; i++) {
      const struct jv_member *m = &v->u.obj.m[i];
      /* By length: a key may hold a NUL ("a\u0000b") and must not collapse into "a". */
      if (jv_obj_set_n(o, m->key, m->klen, jv_copy(m->val)) != 0) {
        jv_free(o);
        return NULL;
      }
    }
    return o;
  }
  default:
    return jv_new(v->type);
  }
}

static int jv_member_find(const struct jv *obj, const char *key, size_t klen) {
  for (size_t i = 0; i < obj->u.obj.n; i++) {
    const struct jv_member *m = &obj->u.obj.m[i];
    if (m->klen == klen && memcmp(m->key, key, klen) == 0)
      return (int)i;
  }
  return -1;
}

struct jv *jv_obj_get(const struct jv *obj, const char *key) {
  if (obj == NULL || obj->type != JV_OBJECT)
    return NULL;

  int i = jv_member_find(obj, key, strlen(key));
  return i < 0 ? NULL : obj->u.obj.m[i].val;
}

static int jv_obj_set_n(struct jv *obj, const char *key, size_t klen, struct jv *val) {
  if (val == NULL)
    return UCRM_ENOMEM;

  int i = jv_member_find(obj, key, klen);
  if (i >= 0) {
    jv_free(obj->u.obj.m[i].val);
    obj->u.obj.m[i].val = val;
    return 0;
  }

  if (obj->u.obj.n == obj->u.obj.cap) {
    size_t cap = obj->u.obj.cap ? obj->u.obj.cap * 2 : 4;
    struct jv_member *m = realloc(obj->u.obj.m, cap * sizeof(*m));
    if (m == NULL) {
      jv_free(val);
      return UCRM_ENOMEM;
    }
    obj->u.obj.m = m;
    obj->u.obj.cap = cap;
  }

  char *k = jv_strndup(key, klen);
  if (k == NULL) {
    jv_free(val);
    return UCRM_ENOMEM;
  }
  obj->u.obj.m[obj->u.obj.n++] = (struct jv_member){k, klen, val};
  return 0;
}

int jv_obj_set(struct jv *obj, const char *key, struct jv *val) {
  return jv_obj_set_n(obj, key, strlen(key), val);
}

int jv_arr_push(struct jv *arr, struct jv *val) {
  if (val == NULL)
    return UCRM_ENOMEM;

  if (arr->u.arr.n == arr->u.arr.cap) {
    size_t cap = arr->u.arr.cap ? arr->u.arr.cap * 2 : 4;
    struct jv **items = realloc(arr->u.arr.items, cap * sizeof(*items));
    if (items == NULL) {
      jv_free(val);
      return UCRM_ENOMEM;
    }
    arr->u.arr.items = items;
    arr->u.arr.cap = cap;
  }
  arr->u.arr.items[arr->u.arr.n++] = val;
  return 0;
}

void jv_obj_delete_path(struct jv *obj, const char *path) {
  if (obj == NULL)
    return;

  /* Arrays are transparent: the path applies to each of their elements. */
  if (obj->type == JV_ARRAY) {
    for (size_t i = 0; i < obj->u.arr.n; i++)
      jv_obj_delete_path(obj->u.arr.items[i], path);
    return;
  }
  if (obj->type != JV_OBJECT)
    return;

  const char *dot = strchr(path, '.');
  size_t klen = dot != NULL ? (size_t)(dot - path) : strlen(path);
  int i = jv_member_find(obj, path, klen);
  if (i < 0)
    return;

  if (dot != NULL) {
    jv_obj_delete_path(obj->u.obj.m[i].val, dot + 1);
    return;
  }

  free(obj->u.obj.m[i].key);
  jv_free(obj->u.obj.m[i].val);
  memmove(&obj->u.obj.m[i], &obj->u.obj.m[i + 1],
          (obj->u.obj.n - (size_t)i - 1) * sizeof(obj->u.obj.m[0]));
  obj->u.obj.n--;
}

int jv_merge(struct jv *dst, const struct jv *src) {
  for (size_t i = 0; i < src->u.obj.n; i++) {
    const struct jv_member *m = &src->u.obj.m[i];
    int at = jv_member_find(dst, m->key, m->klen);
    struct jv *cur = at >= 0 ? dst->u.obj.m[at].val : NULL;

    if (cur != NULL && cur->type == JV_OBJECT && m->val->type == JV_OBJECT) {
      int rc = jv_merge(cur, m->val);
      if (rc != 0)
        return rc;
      continue;
    }

    int rc = jv_obj_set_n(dst, m->key, m->klen, jv_copy(m->val));
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* ---- parsing ---- */

/*
 * The parser keeps a stack of open containers; a value is attached to the container on top, or
 * becomes the root. A pending key waits for its value inside an object.
 */
struct jv_parser {
  struct jv *root;
  struct jv *stack[JV_MAX_DEPTH + 1];
  int depth;
  int max_depth;
  char *key;
  size_t klen;
  int too_deep;
  int oom;
  int lenient;   /* repair invalid UTF-8 in strings and keys, let repeated keys pass */
  int duplicate; /* strict input repeated a key */
};

static int jv_attach(struct jv_parser *p, struct jv *v) {
  if (v == NULL) {
    p->oom = 1;
    return 0;
  }

  if (p->depth == 0) {
    p->root = v;
    return 1;
  }

  struct jv *top = p->stack[p->depth - 1];
  int rc;
  if (top->type == JV_ARRAY) {
    rc = jv_arr_push(top, v);
  } else if (!p->lenient && jv_member_find(top, p->key, p->klen) >= 0) {
    /* A repeated key would let the last one win silently; strict input refuses it. */
    p->duplicate = 1;
    jv_free(v);
    return 0;
  } else {
    rc = jv_obj_set_n(top, p->key, p->klen, v);
    free(p->key);
    p->key = NULL;
  }
  if (rc != 0)
    p->oom = 1;
  return rc == 0;
}

static int jv_cb_null(void *ctx) {
  return jv_attach(ctx, jv_new(JV_NULL));
}

static int jv_cb_bool(void *ctx, int b) {
  return jv_attach(ctx, jv_new(b ? JV_TRUE : JV_FALSE));
}

static int jv_cb_number(void *ctx, const char *s, size_t len) {
  return jv_attach(ctx, jv_new_number(s, len));
}

static int jv_cb_string(void *ctx, const unsigned char *s, size_t len) {
  struct jv_parser *p = ctx;
  if (p->lenient)
    return jv_attach(ctx, jv_new_string_utf8((const char *)s, len));
  return jv_attach(ctx, jv_new_string((const char *)s, len));
}

static int jv_cb_key(void *ctx, const unsigned char *s, size_t len) {
  struct jv_parser *p = ctx;
  free(p->key);
  p->key = NULL;
  if (p->lenient && !jv_ascii((const char *)s, len)) {
    struct jv *clean = jv_new_string_utf8((const char *)s, len);
    if (clean != NULL) {
      p->key = clean->u.str.s;
      len = clean->u.str.len;
      clean->u.str.s = NULL;
      jv_free(clean);
    }
  } else {
    p->key = jv_strndup((const char *)s, len);
  }
  p->klen = len;
  if (p->key == NULL)
    p->oom = 1;
  return p->key != NULL;
}

static int jv_open(struct jv_parser *p, enum jv_type type) {
  if (p->depth >= p->max_depth) {
    p->too_deep = 1;
    return 0;
  }

  struct jv *v = jv_new(type);
  if (!jv_attach(p, v))
    return 0;
  p->stack[p->depth++] = v;
  return 1;
}

static int jv_cb_start_map(void *ctx) {
  return jv_open(ctx, JV_OBJECT);
}

static int jv_cb_start_array(void *ctx) {
  return jv_open(ctx, JV_ARRAY);
}

static int jv_cb_end(void *ctx) {
  struct jv_parser *p = ctx;
  p->depth--;
  return 1;
}

static const yajl_callbacks jv_callbacks = {
    .yajl_null = jv_cb_null,
    .yajl_boolean = jv_cb_bool,
    .yajl_number = jv_cb_number,
    .yajl_string = jv_cb_string,
    .yajl_start_map = jv_cb_start_map,
    .yajl_map_key = jv_cb_key,
    .yajl_end_map = jv_cb_end,
    .yajl_start_array = jv_cb_start_array,
    .yajl_end_array = jv_cb_end,
};

static void jv_parse_error(yajl_handle h, struct jv_parser *p, const char *buf, size_t len,
                           char *err, size_t errlen) {
  if (p->too_deep) {
    snprintf(err, errlen, "nesting deeper than %d levels", p->max_depth);
    return;
  }
  if (p->duplicate) {
    snprintf(err, errlen, "an object repeats a key");
    return;
  }
  if (p->oom) {
    snprintf(err, errlen, "out of memory");
    return;
  }

  /* yajl's verbose message quotes the input, which may hold secrets: use the short form. */
  unsigned char *msg = yajl_get_error(h, 0, (const unsigned char *)buf, len);
  snprintf(err, errlen, "%s at byte %zu", msg != NULL ? (const char *)msg : "invalid JSON",
           yajl_get_bytes_consumed(h));
  yajl_free_error(h, msg);
}

static int jv_parse_mode(const char *buf, size_t len, int max_depth, int lenient, struct jv **out,
                         char *err, size_t errlen) {
  struct jv_parser p = {.max_depth = max_depth > JV_MAX_DEPTH ? JV_MAX_DEPTH : max_depth,
                        .lenient = lenient};
  yajl_handle h = yajl_alloc(&jv_callbacks, NULL, &p);
  if (h == NULL)
    return UCRM_ENOMEM;
  if (lenient)
    yajl_config(h, yajl_dont_validate_strings, 1);

  yajl_status st = yajl_parse(h, (const unsigned char *)buf, len);
  if (st == yajl_status_ok)
    st = yajl_complete_parse(h);

  int rc = 0;
  if (st != yajl_status_ok || p.root == NULL) {
    if (p.root == NULL && st == yajl_status_ok)
      snprintf(err, errlen, "empty document");
    else
      jv_parse_error(h, &p, buf, len, err, errlen);
    jv_free(p.root);
    p.root = NULL;
    rc = p.oom ? UCRM_ENOMEM : UCRM_EINVAL;
  }

  free(p.key);
  yajl_free(h);
  *out = p.root;
  return rc;
}

int jv_parse(const char *buf, size_t len, int max_depth, struct jv **out, char *err,
             size_t errlen) {
  return jv_parse_mode(buf, len, max_depth, 0, out, err, errlen);
}

int jv_parse_lenient(const char *buf, size_t len, int max_depth, struct jv **out, char *err,
                     size_t errlen) {
  return jv_parse_mode(buf, len, max_depth, 1, out, err, errlen);
}

/* ---- generation ---- */

int jv_gen(yajl_gen g, const struct jv *v) {
  yajl_gen_status st = yajl_gen_status_ok;

  switch (v->type) {
  case JV_NULL:
    st = yajl_gen_null(g);
    break;
  case JV_FALSE:
  case JV_TRUE:
    st = yajl_gen_bool(g, v->type == JV_TRUE);
    break;
  case JV_NUMBER:
    /* Safe: the text came from yajl's own parser or from our integer formatting. */
    st = yajl_gen_number(g, v->u.str.s, v->u.str.len);
    break;
  case JV_STRING:
    st = yajl_gen_string(g, (const unsigned char *)v->u.str.s, v->u.str.len);
    break;
  case JV_ARRAY:
    st = yajl_gen_array_open(g);
    for (size_t i = 0; st == yajl_gen_status_ok && i < v->u.arr.n; i++)
      st = jv_gen(g, v->u.arr.items[i]) == 0 ? yajl_gen_status_ok : yajl_gen_in_error_state;
    if (st == yajl_gen_status_ok)
      st = yajl_gen_array_close(g);
    break;
  case JV_OBJECT:
    st = yajl_gen_map_open(g);
    for (size_t i = 0; st == yajl_gen_status_ok && i < v->u.obj.n; i++) {
      const struct jv_member *m = &v->u.obj.m[i];
      st = yajl_gen_string(g, (const unsigned char *)m->key, m->klen);
      if (st == yajl_gen_status_ok)
        st = jv_gen(g, m->val) == 0 ? yajl_gen_status_ok : yajl_gen_in_error_state;
    }
    if (st == yajl_gen_status_ok)
      st = yajl_gen_map_close(g);
    break;
  }
  return st == yajl_gen_status_ok ? 0 : -(int)st;
}

/*
 * One generator serves every dump of the process (it is single-threaded): allocating one per
 * call cost two allocations and a buffer each time. A generator grown past this keeps no
 * memory between dumps.
 */
#define JV_GEN_KEEP_BYTES 65536

static yajl_gen jv_cached_gen;

static yajl_gen jv_gen_get(void) {
  if (jv_cached_gen == NULL) {
    jv_cached_gen = yajl_gen_alloc(NULL);
    if (jv_cached_gen != NULL)
      yajl_gen_config(jv_cached_gen, yajl_gen_validate_utf8, 1);
  }
  return jv_cached_gen;
}

void jv_release(void) {
  if (jv_cached_gen != NULL)
    yajl_gen_free(jv_cached_gen);
  jv_cached_gen = NULL;
}

char *jv_dump(const struct jv *v, size_t *len) {
  yajl_gen g = jv_gen_get();
  if (g == NULL)
    return NULL;

  char *out = NULL;
  if (jv_gen(g, v) == 0) {
    const unsigned char *p;
    size_t n;
    yajl_gen_get_buf(g, &p, &n);
    out = jv_strndup((const char *)p, n);
    if (len != NULL)
      *len = n;
  }

  const unsigned char *p;
  size_t used;
  yajl_gen_get_buf(g, &p, &used);
  if (used > JV_GEN_KEEP_BYTES) {
    jv_release();
  } else {
    yajl_gen_reset(g, NULL);
    yajl_gen_clear(g);
  }
  return out;
}
