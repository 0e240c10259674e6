#include "jstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

#include "json.h"

#define JSTREAM_MAX_DEPTH 120 /* below yajl_gen's fixed limit of 128 */
#define JSTREAM_FLUSH_AT 16384
#define JSTREAM_PATH_MAX 512

struct jstream {
  yajl_handle parser;
  yajl_gen gen;
  jstream_flush_cb flush;
  void *data;
  char *const *exclude;
  size_t nexclude;

  /* open containers: 1 for a map, 0 for an array */
  unsigned char is_map[JSTREAM_MAX_DEPTH + 1];
  unsigned char awaiting_value[JSTREAM_MAX_DEPTH + 1]; /* a map key was written */
  int depth;

  /* the dotted path of the current key; arrays are transparent, as in jv_obj_delete_path */
  char path[JSTREAM_PATH_MAX];
  size_t path_len[JSTREAM_MAX_DEPTH + 1]; /* JSTREAM_PATH_MAX: too long to match anything */

  int skip_depth; /* >0: dropping an excluded value that opened at this depth */
  int skip_next;  /* the next value is excluded */
  int failed;
  char why[96];
  unsigned char *scratch;
  size_t scratch_cap;
  int wrote; /* the generator has produced something */
};

static void js_flush(struct jstream *s, int force) {
  const unsigned char *p;
  size_t n;
  yajl_gen_get_buf(s->gen, &p, &n);
  if (n == 0 || (!force && n < JSTREAM_FLUSH_AT))
    return;
  s->flush(s->data, (const char *)p, n);
  yajl_gen_clear(s->gen);
}

static int js_fail(struct jstream *s, const char *why) {
  if (!s->failed)
    snprintf(s->why, sizeof(s->why), "%s", why);
  s->failed = 1;
  return 0;
}

/* Whether the value about to be written is dropped. */
static int js_skipping(struct jstream *s) {
  return s->skip_depth > 0 || s->skip_next;
}

/* A scalar has been written (or dropped) in the current container. */
static void js_after_value(struct jstream *s) {
  s->skip_next = 0;
  if (s->depth > 0)
    s->awaiting_value[s->depth] = 0;
}

static int js_check(struct jstream *s, yajl_gen_status st) {
  if (st != yajl_gen_status_ok)
    return js_fail(s, "the provider body could not be re-generated");
  s->wrote = 1;
  js_flush(s, 0);
  return 1;
}

static int js_scalar_done(struct jstream *s, yajl_gen_status st) {
  js_after_value(s);
  return js_check(s, st);
}

static int js_null(void *ctx) {
  struct jstream *s = ctx;
  return js_skipping(s) ? (js_after_value(s), 1) : js_scalar_done(s, yajl_gen_null(s->gen));
}

static int js_bool(void *ctx, int b) {
  struct jstream *s = ctx;
  return js_skipping(s) ? (js_after_value(s), 1) : js_scalar_done(s, yajl_gen_bool(s->gen, b));
}

static int js_number(void *ctx, const char *p, size_t n) {
  struct jstream *s = ctx;
  /* The text comes from yajl's own number scanner, so passing it through is safe. */
  return js_skipping(s) ? (js_after_value(s), 1) : js_scalar_done(s, yajl_gen_number(s->gen, p, n));
}

static const unsigned char *js_clean(struct jstream *s, const unsigned char *p, size_t *n) {
  if (s->scratch_cap < *n * 3 + 1) {
    unsigned char *grown = realloc(s->scratch, *n * 3 + 1);
    if (grown == NULL)
      return NULL;
    s->scratch = grown;
    s->scratch_cap = *n * 3 + 1;
  }
  *n = ucrm_utf8_sanitize(p, *n, s->scratch);
  return s->scratch;
}

static int js_string(void *ctx, const unsigned char *p, size_t n) {
  struct jstream *s = ctx;
  if (js_skipping(s)) {
    js_after_value(s);
    return 1;
  }
  const unsigned char *clean = js_clean(s, p, &n);
  if (clean == NULL)
    return js_fail(s, "out of memory");
  return js_scalar_done(s, yajl_gen_string(s->gen, clean, n));
}

static int js_excluded(const struct jstream *s) {
  for (size_t i = 0; i < s->nexclude; i++) {
    if (strcmp(s->exclude[i], s->path) == 0)
      return 1;
  }
  return 0;
}

static int js_key(void *ctx, const unsigned char *p, size_t n) {
  struct jstream *s = ctx;
  if (s->skip_depth > 0)
    return 1;

  /* Track "base.key.key"; a path too long for the buffer matches no exclusion. */
  size_t at = s->path_len[s->depth - 1];
  s->path_len[s->depth] = JSTREAM_PATH_MAX;
  if (at + 1 + n < sizeof(s->path)) {
    s->path[at] = '.';
    memcpy(s->path + at + 1, p, n);
    s->path[at + 1 + n] = '\0';
    s->path_len[s->depth] = at + 1 + n;
    if (memchr(p, '\0', n) == NULL && js_excluded(s)) {
      s->skip_next = 1;
      return 1;
    }
  }

  const unsigned char *clean = js_clean(s, p, &n);
  if (clean == NULL)
    return js_fail(s, "out of memory");
  s->awaiting_value[s->depth] = 1;
  return js_check(s, yajl_gen_string(s->gen, clean, n));
}

static int js_open(struct jstream *s, int map) {
  if (s->depth >= JSTREAM_MAX_DEPTH)
    return js_fail(s, "the provider body nests too deeply");

  int skip = js_skipping(s);
  s->skip_next = 0;
  s->depth++;
  s->is_map[s->depth] = (unsigned char)map;
  s->awaiting_value[s->depth] = 0;
  /* The container's own path is its key's: an array's elements share it. */
  s->path_len[s->depth] = s->path_len[s->depth - 1];
  if (s->path_len[s->depth] < JSTREAM_PATH_MAX)
    s->path[s->path_len[s->depth]] = '\0';
  if (skip) {
    if (s->skip_depth == 0)
      s->skip_depth = s->depth;
    return 1;
  }
  return js_check(s, map ? yajl_gen_map_open(s->gen) : yajl_gen_array_open(s->gen));
}

static int js_close(struct jstream *s) {
  int skipped = s->skip_depth > 0;
  if (s->skip_depth == s->depth)
    s->skip_depth = 0;

  int map = s->is_map[s->depth];
  s->depth--;
  js_after_value(s);
  if (skipped)
    return 1;
  return js_check(s, map ? yajl_gen_map_close(s->gen) : yajl_gen_array_close(s->gen));
}

static int js_start_map(void *ctx) {
  return js_open(ctx, 1);
}

static int js_start_array(void *ctx) {
  return js_open(ctx, 0);
}

static int js_end(void *ctx) {
  return js_close(ctx);
}

static const yajl_callbacks js_callbacks = {
    .yajl_null = js_null,
    .yajl_boolean = js_bool,
    .yajl_number = js_number,
    .yajl_string = js_string,
    .yajl_start_map = js_start_map,
    .yajl_map_key = js_key,
    .yajl_end_map = js_end,
    .yajl_start_array = js_start_array,
    .yajl_end_array = js_end,
};

struct jstream *jstream_new(const char *base, char *const *exclude, size_t nexclude,
                            jstream_flush_cb flush, void *data) {
  struct jstream *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return NULL;

  s->parser = yajl_alloc(&js_callbacks, NULL, s);
  s->gen = yajl_gen_alloc(NULL);
  if (s->parser == NULL || s->gen == NULL) {
    jstream_free(s);
    return NULL;
  }
  /* Strings are checked and repaired by us, so one bad byte does not lose the whole body. */
  yajl_config(s->parser, yajl_dont_validate_strings, 1);
  yajl_gen_config(s->gen, yajl_gen_validate_utf8, 1);

  s->flush = flush;
  s->data = data;
  s->exclude = exclude;
  s->nexclude = nexclude;
  snprintf(s->path, sizeof(s->path), "%s", base);
  s->path_len[0] = strlen(s->path);
  return s;
}

int jstream_feed(struct jstream *s, const char *p, size_t n) {
  if (s->failed)
    return -1;
  if (yajl_parse(s->parser, (const unsigned char *)p, n) != yajl_status_ok)
    js_fail(s, "the provider body is not valid JSON");
  return s->failed ? -1 : 0;
}

/*
 * Closes what is open so the output stays one JSON value, whatever the input did: a key
 * without its value gets null, and a document that produced nothing becomes null.
 */
static void js_seal(struct jstream *s) {
  if (!s->wrote) {
    yajl_gen_null(s->gen);
    return;
  }

  /* Levels inside an excluded value were never written. */
  int open = s->skip_depth > 0 ? s->skip_depth - 1 : s->depth;
  for (int d = open; d > 0; d--) {
    if (s->is_map[d] && s->awaiting_value[d])
      yajl_gen_null(s->gen);
    if (s->is_map[d])
      yajl_gen_map_close(s->gen);
    else
      yajl_gen_array_close(s->gen);
  }
  s->depth = 0;
  s->skip_depth = 0;
}

int jstream_finish(struct jstream *s, char *err, size_t errlen) {
  if (!s->failed && yajl_complete_parse(s->parser) != yajl_status_ok)
    js_fail(s, s->wrote ? "the provider body ended before the JSON did"
                        : "the provider body is empty or not JSON");
  if (!s->failed && !s->wrote)
    js_fail(s, "the provider body was empty");
  if (s->failed)
    js_seal(s);
  js_flush(s, 1);

  if (s->failed && err != NULL)
    snprintf(err, errlen, "%s", s->why);
  return s->failed ? -1 : 0;
}

void jstream_free(struct jstream *s) {
  if (s == NULL)
    return;
  if (s->parser != NULL)
    yajl_free(s->parser);
  if (s->gen != NULL)
    yajl_gen_free(s->gen);
  free(s->scratch);
  free(s);
}
