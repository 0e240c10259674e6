/*
 * provider.h: the table every CRM fills, and the plan it produces.
 *
 * A provider turns a validated unified request into a plan: the exact upstream calls, each
 * naming the links (kind, id) it writes. It also says how to authenticate, how to read a
 * reply (a 200 from Salesforce composite can still hold failed records) and how to map a
 * provider error onto our status. The core never names a provider; each providers/<name>.c
 * exports only its table.
 *
 * Ownership: a plan owns its paths and bodies; link ids point into the ucrm_assoc it was made
 * from, which must outlive the plan. ucrm_plan_free releases the plan.
 */
#ifndef UCRM_PROVIDER_H
#define UCRM_PROVIDER_H

#include <stddef.h>

#include "assoc.h"
#include "buf.h"
#include "common.h"
#include "config.h"
#include "json.h"

struct ucrm_link {
  enum ucrm_kind kind;
  const char *id;
};

enum ucrm_link_status { UCRM_LINK_NOT_ATTEMPTED, UCRM_LINK_APPLIED, UCRM_LINK_FAILED };

struct ucrm_call {
  const char *method; /* static string: "PATCH", "PUT" */
  char *path;         /* absolute path below base_url, ids already percent-encoded */
  char *body;         /* JSON, remote_data merged in */
  size_t body_len;
  struct ucrm_link *links;
  size_t nlinks;
  int reply_checked; /* the verdict reads the reply body (a 2xx may still hold failures) */
};

struct ucrm_plan {
  struct ucrm_call *calls;
  size_t n;
  char refusal[200]; /* set when remote_data tried to change a field that carries a link */
};

/* What a provider reply meant, per link of the call. */
struct ucrm_verdict {
  int ok;                 /* every link of the call was applied */
  int status;             /* when !ok: our status for the caller (e.g. 404, 429, 502) */
  char message[256];      /* when !ok: what went wrong, without secrets */
  unsigned char *link_ok; /* per link, 1 applied, 0 failed; room given by the caller */
  int per_link;           /* link_ok was filled; otherwise every link shares ok */
  int retryable;          /* a transient failure worth retrying (429, 5xx) */
  int refresh_token;      /* the access token expired; refresh and retry once */
};

/* Rate-limit facts from a reply, normalised; -1 when unknown. */
struct ucrm_ratelimit {
  long limit;
  long remaining;
  long reset;
};

struct ucrm_provider {
  const char *name;
  const char *default_base_url; /* NULL: base_url is required in the config */
  unsigned entities;            /* bit per enum ucrm_entity the provider supports */

  /* Checks the credentials an account was configured with; names the bad key in err. */
  int (*check_credentials)(const struct ucrm_credentials *c, const char *prefix, char *err,
                           size_t errlen);

  /*
   * Builds the calls for a request. Fails with err (400) for an unsupported pair, a
   * single-valued kind with 2+ ids, or an id that cannot be valid for the provider.
   */
  int (*plan)(const struct ucrm_assoc *a, const struct ucrm_account *acct, struct ucrm_plan *plan,
              struct ucrm_err *err);

  /* Appends the authentication header line ("Name: value") to out. */
  int (*auth_header)(const struct ucrm_account *acct, struct ubuf *out);

  /* Reads a finished reply (body may be NULL if not JSON) into a verdict. */
  void (*verdict)(const struct ucrm_call *call, long status, const struct jv *body,
                  struct ucrm_verdict *v);

  /* Reads one response header (name lower-cased) into rl; may be NULL. */
  void (*ratelimit_header)(const char *name, const char *value, struct ucrm_ratelimit *rl);

  /*
   * Token refresh, for providers whose tokens expire (NULL otherwise). refresh_request fills
   * the token endpoint URL and the form body, or fails if the account has no refresh
   * credentials; refresh_reply installs the new token from a 2xx reply.
   */
  int (*refresh_request)(const struct ucrm_account *acct, struct ubuf *url, struct ubuf *form);
  int (*refresh_reply)(struct ucrm_account *acct, const struct jv *body);
};

const struct ucrm_provider *ucrm_provider_find(const char *name);

extern const struct ucrm_provider ucrm_provider_attio;
extern const struct ucrm_provider ucrm_provider_close;
extern const struct ucrm_provider ucrm_provider_pipedrive;
extern const struct ucrm_provider ucrm_provider_salesforce;

/* ---- helpers shared by the provider files ---- */

/*
 * Appends a call to plan. path is copied; body is consumed (freed even on failure) after
 * remote_data, when not NULL, has been deep-merged into it.
 */
int ucrm_plan_add(struct ucrm_plan *plan, const char *method, const char *path, struct jv *body,
                  const struct jv *remote_data);

/*
 * Deep-merges remote_data into a write body, unless it would replace a value the body already
 * holds (the fields that carry the link): then plan->refusal names the field and the result is
 * UCRM_EINVAL. Objects still merge key by key.
 */
int ucrm_merge_remote(struct ucrm_plan *plan, struct jv *body, const struct jv *remote_data);

/* Adds a link to the last call of the plan. */
int ucrm_plan_link(struct ucrm_plan *plan, enum ucrm_kind kind, const char *id);

void ucrm_plan_free(struct ucrm_plan *plan);

/* Percent-encodes an id for a URL path; refuses "", ".", ".." and control bytes. */
int ucrm_path_id(struct ubuf *out, const char *id, struct ucrm_err *err, const char *what);

/* The generic mapping of a provider HTTP status onto ours (SPEC 3.5); keeps v->link_ok. */
void ucrm_verdict_from_status(long status, struct ucrm_verdict *v);

/* err for a pair the provider cannot write. */
int ucrm_unsupported(const char *provider, enum ucrm_entity e, enum ucrm_kind k,
                     struct ucrm_err *err);

/* err when a single-valued kind holds more than one id; 0 otherwise. */
int ucrm_single(const struct ucrm_assoc *a, enum ucrm_kind k, struct ucrm_err *err);

/* Whether s is a decimal integer from 1 to 2^63-1 without sign or leading zeros. */
int ucrm_is_positive_int(const char *s);

/* Copies the first message-like string of a provider error body into out. */
void ucrm_verdict_message(struct ucrm_verdict *v, const char *provider, long status,
                          const char *text);

/* Appends "Authorization: Bearer <token>". */
int ucrm_auth_bearer(struct ubuf *out, const char *token);

#endif
