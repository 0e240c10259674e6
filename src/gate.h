/*
 * gate.h: per-account fairness: at most max_inflight_per_account provider calls of one
 * account at once, the rest waiting in arrival order.
 *
 * A request takes a slot before each provider call and gives it back when the call ends, so
 * a long multi-call request does not hold an account while others wait. The queue has a cap;
 * a request that finds it full on its first call is refused (429), while a request already
 * under way always queues, since refusing it half-way would leave its links half-written.
 *
 * Ownership: a waiter is owned by the request that queued it and must stay alive until its
 * callback runs or it leaves. The gate state lives in ucrm_account.gate and goes with the
 * config.
 */
#ifndef UCRM_GATE_H
#define UCRM_GATE_H

#include "config.h"

typedef void (*ucrm_gate_cb)(void *data);

struct ucrm_gate_waiter {
  struct ucrm_gate_waiter *next;
  ucrm_gate_cb cb;
  void *data;
  int queued;
};

enum { UCRM_GATE_OPEN = 0, UCRM_GATE_QUEUED = 1, UCRM_GATE_FULL = -1 };

/*
 * Takes a slot now (UCRM_GATE_OPEN), queues the waiter (UCRM_GATE_QUEUED: its callback runs
 * when a slot is handed to it), or refuses (UCRM_GATE_FULL) when the queue is at its cap and
 * may_refuse is set.
 */
int ucrm_gate_enter(struct ucrm_account *acct, const struct ucrm_upstream_cfg *cfg,
                    struct ucrm_gate_waiter *w, int may_refuse);

/* Gives a slot back; the first waiter, if any, gets it and its callback runs now. */
void ucrm_gate_exit(struct ucrm_account *acct);

/* Leaves the queue without a slot (the request was aborted or timed out). */
void ucrm_gate_leave(struct ucrm_account *acct, struct ucrm_gate_waiter *w);

#endif
