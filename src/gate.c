#include "gate.h"

#include <stdlib.h>

#include "metrics.h"
#include "provider.h"

struct gate_state {
  int inflight;
  int queued;
  struct ucrm_gate_waiter *head, *tail;
};

static struct gate_state *gate_state(struct ucrm_account *acct) {
  if (acct->gate == NULL) {
    acct->gate = calloc(1, sizeof(struct gate_state));
    acct->gate_free = free;
  }
  return acct->gate;
}

int ucrm_gate_enter(struct ucrm_account *acct, const struct ucrm_upstream_cfg *cfg,
                    struct ucrm_gate_waiter *w, int may_refuse) {
  struct gate_state *g = gate_state(acct);
  if (g == NULL)
    return UCRM_GATE_FULL;

  if (g->inflight < cfg->max_inflight_per_account && g->head == NULL) {
    g->inflight++;
    um_inflight(acct->provider->name, 1);
    return UCRM_GATE_OPEN;
  }
  if (may_refuse && g->queued >= cfg->max_queue_per_account)
    return UCRM_GATE_FULL;

  w->next = NULL;
  w->queued = 1;
  if (g->tail != NULL)
    g->tail->next = w;
  else
    g->head = w;
  g->tail = w;
  g->queued++;
  um_queue(acct->provider->name, 1);
  return UCRM_GATE_QUEUED;
}

static void gate_unlink(struct gate_state *g, struct ucrm_gate_waiter *w, const char *provider) {
  struct ucrm_gate_waiter *prev = NULL;
  for (struct ucrm_gate_waiter *p = g->head; p != NULL; prev = p, p = p->next) {
    if (p != w)
      continue;
    if (prev != NULL)
      prev->next = w->next;
    else
      g->head = w->next;
    if (g->tail == w)
      g->tail = prev;
    break;
  }
  w->next = NULL;
  w->queued = 0;
  g->queued--;
  um_queue(provider, -1);
}

void ucrm_gate_exit(struct ucrm_account *acct) {
  struct gate_state *g = acct->gate;
  if (g == NULL || g->inflight == 0)
    return;

  struct ucrm_gate_waiter *w = g->head;
  if (w == NULL) {
    g->inflight--;
    um_inflight(acct->provider->name, -1);
    return;
  }

  /* The slot passes straight to the first waiter: in-flight count stays the same. */
  gate_unlink(g, w, acct->provider->name);
  w->cb(w->data);
}

void ucrm_gate_leave(struct ucrm_account *acct, struct ucrm_gate_waiter *w) {
  struct gate_state *g = acct->gate;
  if (g != NULL && w->queued)
    gate_unlink(g, w, acct->provider->name);
}
