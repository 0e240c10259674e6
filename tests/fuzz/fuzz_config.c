/*
 * fuzz_config.c: ucrm_config_parse on any document.
 *
 * A config error is printed at start-up and on SIGHUP, so it must never show a credential:
 * neither the value of an "env:NAME" variable nor a secret written in the file itself. The
 * environment holds FUZZ_SECRET, which the seeds name as env:FUZZ_SECRET. An accepted config
 * must be usable: accounts sorted, unique and found by id, base URLs without a trailing '/'.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz_util.h"
#include "json.h"

#define FUZZ_SECRET_VALUE "topsecretvalue"
#define FUZZ_MAX_SECRETS 64

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  setenv("FUZZ_SECRET", FUZZ_SECRET_VALUE, 1);
  return 0;
}

/* api_version and token_url are settings, not secrets; every other credential is. */
static int is_secret_key(const char *key) {
  return strcmp(key, "api_version") != 0 && strcmp(key, "token_url") != 0;
}

struct fuzz_secrets {
  struct jv *v[FUZZ_MAX_SECRETS]; /* credential values written literally, not env: */
  size_t n;
};

static void collect_secrets(struct jv *v, struct fuzz_secrets *sec) {
  if (v->type == JV_ARRAY) {
    for (size_t i = 0; i < v->u.arr.n; i++)
      collect_secrets(v->u.arr.items[i], sec);
  }
  if (v->type != JV_OBJECT)
    return;

  for (size_t i = 0; i < v->u.obj.n; i++) {
    struct jv_member *m = &v->u.obj.m[i];
    if (strcmp(m->key, "credentials") != 0 || m->val->type != JV_OBJECT) {
      collect_secrets(m->val, sec);
      continue;
    }
    for (size_t j = 0; j < m->val->u.obj.n && sec->n < FUZZ_MAX_SECRETS; j++) {
      struct jv_member *c = &m->val->u.obj.m[j];
      if (c->val->type == JV_STRING && is_secret_key(c->key) &&
          strncmp(c->val->u.str.s, "env:", 4) != 0 && c->val->u.str.len > 0)
        sec->v[sec->n++] = c->val;
    }
  }
}

/*
 * Rewrites a secret in place, same length, every letter and digit changed: the validity of the
 * value stays the same (no control byte appears or goes, and it cannot become "env:...").
 */
static void scramble(char *s, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z'))
      s[i] = s[i] == 'X' ? 'Y' : 'X';
    else if (s[i] >= '0' && s[i] <= '9')
      s[i] = s[i] == '7' ? '8' : '7';
  }
}

static void parse_error_of(const char *doc, size_t len, char *err, size_t errlen) {
  struct ucrm_config *cfg = NULL;
  err[0] = '\0';
  if (ucrm_config_parse(doc, len, &cfg, err, errlen) == 0)
    ucrm_config_free(cfg);
}

/*
 * A message that quotes a secret is a leak only if the quote follows the secret's value:
 * the same document with the value changed must then lose it. A secret that also spells a
 * word of the message ("salesforce") or another string of the document keeps appearing.
 */
static void check_env_secret(const uint8_t *data, size_t size, const char *err) {
  if (strstr(err, FUZZ_SECRET_VALUE) == NULL)
    return;

  char other[512];
  setenv("FUZZ_SECRET", "XXXXXXXXXXXXXX", 1);
  parse_error_of((const char *)data, size, other, sizeof(other));
  setenv("FUZZ_SECRET", FUZZ_SECRET_VALUE, 1);
  if (strstr(other, FUZZ_SECRET_VALUE) == NULL)
    fuzz_fail("config error shows the value of FUZZ_SECRET: %s", err);
}

static void check_literal_secrets(const uint8_t *data, size_t size, const char *err) {
  struct jv *root = NULL;
  char jerr[128];
  if (jv_parse((const char *)data, size, JV_MAX_DEPTH, &root, jerr, sizeof(jerr)) != 0)
    return;

  struct fuzz_secrets sec = {.n = 0};
  collect_secrets(root, &sec);
  int quoted = 0;
  for (size_t i = 0; i < sec.n && !quoted; i++)
    quoted = strstr(err, sec.v[i]->u.str.s) != NULL;

  char *plain = quoted ? jv_dump(root, NULL) : NULL;
  char *secrets[FUZZ_MAX_SECRETS];
  for (size_t i = 0; plain != NULL && i < sec.n; i++) {
    if ((secrets[i] = strdup(sec.v[i]->u.str.s)) == NULL)
      abort();
    scramble(sec.v[i]->u.str.s, sec.v[i]->u.str.len);
  }
  char *scrambled = plain != NULL ? jv_dump(root, NULL) : NULL;

  if (plain != NULL && scrambled != NULL) {
    char before[512], after[512];
    parse_error_of(plain, strlen(plain), before, sizeof(before));
    parse_error_of(scrambled, strlen(scrambled), after, sizeof(after));
    for (size_t i = 0; i < sec.n; i++) {
      if (strstr(before, secrets[i]) != NULL && strstr(after, secrets[i]) == NULL)
        fuzz_fail("config error shows the credential '%s': %s", secrets[i], before);
    }
  }
  for (size_t i = 0; plain != NULL && i < sec.n; i++)
    free(secrets[i]);
  free(plain);
  free(scrambled);
  jv_free(root);
}

static void check_config(const struct ucrm_config *cfg) {
  if (cfg->listen_host == NULL || cfg->listen_port < 0 || cfg->listen_port > 65535)
    fuzz_fail("an accepted config has no usable listen address");

  for (size_t i = 0; i < cfg->naccounts; i++) {
    const struct ucrm_account *a = &cfg->accounts[i];
    if (a->provider == NULL || a->base_url == NULL)
      fuzz_fail("account %s has no provider or no base_url", a->id);
    size_t n = strlen(a->base_url);
    if (n == 0 || a->base_url[n - 1] == '/')
      fuzz_fail("account %s has base_url '%s' with a trailing slash", a->id, a->base_url);
    if (i > 0 && strcmp(cfg->accounts[i - 1].id, a->id) >= 0)
      fuzz_fail("accounts are not sorted and unique at %s", a->id);
    if (ucrm_config_account(cfg, a->id) != a)
      fuzz_fail("account %s cannot be found by its id", a->id);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct ucrm_config *cfg = NULL;
  char err[512];
  err[0] = '\0';

  int rc = ucrm_config_parse((const char *)data, size, &cfg, err, sizeof(err));
  if (rc == 0) {
    if (cfg == NULL)
      fuzz_fail("a successful parse returned no config");
    check_config(cfg);
    ucrm_config_free(cfg);
    return 0;
  }

  if (cfg != NULL)
    fuzz_fail("a failed parse returned a config");
  if (memchr(err, '\0', sizeof(err)) == NULL)
    fuzz_fail("the error message is not terminated");
  check_env_secret(data, size, err);
  check_literal_secrets(data, size, err);
  return 0;
}
