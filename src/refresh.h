/*
 * refresh.h: one token refresh per account at a time.
 *
 * When a provider call finds its token expired, the request joins the account's refresh as a
 * waiter. The first waiter starts the refresh call; requests that arrive meanwhile join and
 * wait; when the call ends every waiter is called back with the outcome, in join order.
 *
 * Ownership: a waiter is owned by whoever joins (usually embedded in a request); it must stay
 * alive until its callback runs or it leaves with ucrm_refresh_leave. The per-account state
 * lives in ucrm_account.runtime and goes away with the config, cancelling a refresh still in
 * flight.
 */
#ifndef UCRM_REFRESH_H
#define UCRM_REFRESH_H

#include "config.h"
#include "upstream.h"

typedef void (*ucrm_refresh_cb)(void *data, int ok);

struct ucrm_refresh_waiter {
  struct ucrm_refresh_waiter *next;
  ucrm_refresh_cb cb;
  void *data;
  int waiting;
};

/* Whether the account can refresh its token at all. */
int ucrm_refresh_possible(const struct ucrm_account *acct);

/* Whether a refresh is in flight for the account (new calls should join it). */
int ucrm_refresh_busy(const struct ucrm_account *acct);

/* Joins (and if needed starts) the account's refresh. Returns 0, or a code if none could start. */
int ucrm_refresh_join(struct up_engine *up, struct ucrm_account *acct,
                      struct ucrm_refresh_waiter *w);

/* Leaves a refresh before it ends (the request was aborted); a no-op if not waiting. */
void ucrm_refresh_leave(struct ucrm_account *acct, struct ucrm_refresh_waiter *w);

/*
 * Successful refreshes so far. A call records it when it starts; a 401 on a call that started
 * before the latest refresh only needs a retry with the new token, not another refresh.
 */
long ucrm_refresh_generation(const struct ucrm_account *acct);

#endif
