/*
 * unicrm: a unified CRM association proxy.
 *
 *   unicrm --config FILE [--listen HOST:PORT] [--workers N] [--log-level LEVEL]
 *
 * With --workers N > 1 the parent forks N workers that share the port through SO_REUSEPORT,
 * restarts a worker that dies, and forwards SIGTERM, SIGINT and SIGHUP to them.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <uv.h>

#include "config.h"
#include "json.h"
#include "log.h"
#include "pipeline.h"
#include "server.h"
#include "upstream.h"

#define UCRM_MAX_WORKERS 64

struct opts {
  const char *config;
  const char *listen;
  int workers;
};

struct worker {
  struct ucrm_app app;
  struct opts opts;
  uv_signal_t sigterm, sigint, sighup;
  uv_timer_t drain_timer;
  int stopping;
};

static void usage(void) {
  fprintf(stderr, "usage: unicrm --config FILE [--listen HOST:PORT] [--workers N] "
                  "[--log-level debug|info|warn|error]\n");
}

static int parse_args(int argc, char **argv, struct opts *o) {
  o->workers = 1;
  /* Every option takes a value: read them in pairs. */
  for (int i = 1; i < argc; i += 2) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage();
      exit(0);
    }
    if (v == NULL)
      return -1;
    if (strcmp(a, "--config") == 0) {
      o->config = v;
    } else if (strcmp(a, "--listen") == 0) {
      o->listen = v;
    } else if (strcmp(a, "--workers") == 0) {
      o->workers = atoi(v);
      if (o->workers < 1 || o->workers > UCRM_MAX_WORKERS)
        return -1;
    } else if (strcmp(a, "--log-level") == 0) {
      enum ulog_level level;
      if (ulog_parse_level(v, &level) != 0)
        return -1;
      ulog_set_level(level);
    } else {
      return -1;
    }
  }
  return o->config != NULL ? 0 : -1;
}

static int load_config(const struct opts *o, struct ucrm_config **out) {
  char err[512];
  if (ucrm_config_load(o->config, out, err, sizeof(err)) != 0) {
    char q[600];
    ulog(ULOG_ERROR, "config", "msg=\"config rejected\" reason=%s", ulog_quote(q, sizeof(q), err));
    return -1;
  }

  if (o->listen != NULL) {
    char *host;
    int port;
    if (ucrm_config_parse_listen(o->listen, &host, &port) != 0) {
      ulog(ULOG_ERROR, "config", "msg=\"--listen must be HOST:PORT\"");
      ucrm_config_free(*out);
      return -1;
    }
    free((*out)->listen_host);
    (*out)->listen_host = host;
    (*out)->listen_port = port;
  }
  return 0;
}

/* ---- one worker: a loop, a server, an upstream engine ---- */

static void worker_shutdown(struct worker *w) {
  ulog_detach(); /* what the teardown logs goes out at once */
  /* Connections first (their jobs cancel their calls), then the engine and its pooled
   * sockets, whose poll handles would otherwise keep the loop alive. */
  srv_close(w->app.srv);
  up_engine_close(w->app.up);
  uv_close((uv_handle_t *)&w->drain_timer, NULL);
  uv_close((uv_handle_t *)&w->sigterm, NULL);
  uv_close((uv_handle_t *)&w->sigint, NULL);
  uv_close((uv_handle_t *)&w->sighup, NULL);
}

static void worker_drained(struct srv *s) {
  struct worker *w = uv_default_loop()->data;
  ulog(ULOG_INFO, "main", "msg=\"drained; exiting\"");
  worker_shutdown(w);
}

static void worker_drain_timeout(uv_timer_t *t) {
  struct worker *w = t->data;
  ulog(ULOG_WARN, "main", "msg=\"drain timeout; closing the remaining connections\" open=%d",
       srv_open_connections(w->app.srv));
  worker_shutdown(w);
}

static void worker_on_stop(uv_signal_t *h, int signum) {
  struct worker *w = h->data;
  if (w->stopping)
    return;
  w->stopping = 1;

  ulog(ULOG_INFO, "main", "msg=\"draining\" signal=%d in_flight=%d", signum, w->app.jobs);
  uv_timer_start(&w->drain_timer, worker_drain_timeout,
                 (uint64_t)w->app.cfg->limits.drain_timeout_ms, 0);
  srv_drain(w->app.srv, worker_drained);
}

static void worker_on_reload(uv_signal_t *h, int signum) {
  struct worker *w = h->data;
  struct ucrm_config *cfg;
  if (load_config(&w->opts, &cfg) != 0) {
    ulog(ULOG_WARN, "main", "msg=\"reload failed; keeping the running config\"");
    return;
  }

  /* Limits and accounts change at once; listen address and upstream pool need a restart. */
  const struct ucrm_config *old = w->app.cfg;
  const char *old_ca = old->upstream.ca_file ? old->upstream.ca_file : "";
  const char *new_ca = cfg->upstream.ca_file ? cfg->upstream.ca_file : "";
  if (strcmp(old->listen_host, cfg->listen_host) != 0 || old->listen_port != cfg->listen_port ||
      old->upstream.connect_timeout_ms != cfg->upstream.connect_timeout_ms ||
      old->upstream.max_host_connections != cfg->upstream.max_host_connections ||
      strcmp(old_ca, new_ca) != 0)
    ulog(ULOG_WARN, "main",
         "msg=\"listen, upstream.connect_timeout_ms, "
         "upstream.max_host_connections and upstream.ca_file change only "
         "on restart\"");
  srv_set_limits(w->app.srv, &cfg->limits);
  ucrm_app_set_config(&w->app, cfg);
  ulog(ULOG_INFO, "main", "msg=\"config reloaded\" accounts=%zu", cfg->naccounts);
}

static int worker_run(const struct opts *o, struct ucrm_config *cfg, int reuseport) {
  static struct worker w;
  uv_loop_t *loop = uv_default_loop();
  loop->data = &w;
  w.opts = *o;
  w.app.loop = loop;
  ucrm_app_set_config(&w.app, cfg);

  struct srv_opts so = {.limits = &cfg->limits,
                        .on_request = ucrm_app_on_request,
                        .on_complete = ucrm_app_on_complete,
                        .data = &w.app};
  if (up_engine_new(loop, &cfg->upstream, &w.app.up) != 0 || srv_new(loop, &so, &w.app.srv) != 0)
    return 1;

  int rc = srv_listen(w.app.srv, cfg->listen_host, cfg->listen_port, reuseport);
  if (rc != 0) {
    ulog(ULOG_ERROR, "main", "msg=\"cannot listen\" addr=%s:%d error=%s", cfg->listen_host,
         cfg->listen_port, uv_strerror(rc));
    return 1;
  }
  ulog(ULOG_INFO, "main", "msg=listening addr=%s:%d pid=%d accounts=%zu", cfg->listen_host,
       srv_port(w.app.srv), (int)getpid(), cfg->naccounts);

  uv_timer_init(loop, &w.drain_timer);
  w.drain_timer.data = &w;
  ulog_attach(loop); /* before the server starts any prepare handle of its own */
  uv_signal_t *sigs[] = {&w.sigterm, &w.sigint, &w.sighup};
  int nums[] = {SIGTERM, SIGINT, SIGHUP};
  for (int i = 0; i < 3; i++) {
    uv_signal_init(loop, sigs[i]);
    sigs[i]->data = &w;
    uv_signal_start(sigs[i], nums[i] == SIGHUP ? worker_on_reload : worker_on_stop, nums[i]);
  }

  uv_run(loop, UV_RUN_DEFAULT);
  srv_free(w.app.srv);
  jv_release();
  ucrm_app_release(&w.app);
  rc = uv_loop_close(loop);
  if (rc != 0)
    ulog(ULOG_WARN, "main", "msg=\"loop closed with handles open\" error=%s", uv_err_name(rc));
  return 0;
}

/* ---- the parent of several workers ---- */

#define UCRM_QUICK_DEATH_S 2 /* a worker dying this soon after start failed to start */
#define UCRM_QUICK_DEATHS_MAX 3

struct worker_slot {
  pid_t pid;
  time_t started;
  int quick_deaths;
};

static pid_t spawn_worker(const struct opts *o, struct ucrm_config *cfg) {
  pid_t pid = fork();
  if (pid != 0)
    return pid;

  /* The parent waits for signals with them blocked; a worker handles them on its loop. */
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_UNBLOCK, &all, NULL);

  /* A restarted worker reads the file again, so it picks up reloads the parent forwarded. */
  struct ucrm_config *fresh;
  if (load_config(o, &fresh) == 0) {
    ucrm_config_free(cfg);
    cfg = fresh;
  }
  int rc = worker_run(o, cfg, 1);
  curl_global_cleanup();
  _exit(rc);
}

static void signal_all(struct worker_slot *w, int n, int signum) {
  for (int i = 0; i < n; i++) {
    if (w[i].pid > 0)
      kill(w[i].pid, signum);
  }
}

static int count_alive(const struct worker_slot *w, int n) {
  int alive = 0;
  for (int i = 0; i < n; i++)
    alive += w[i].pid > 0;
  return alive;
}

/* A worker ended: start it again, unless it keeps dying at start-up (a port in use, say). */
static int restart_worker(const struct opts *o, struct ucrm_config *cfg, struct worker_slot *w) {
  time_t now = time(NULL);
  w->quick_deaths = now - w->started < UCRM_QUICK_DEATH_S ? w->quick_deaths + 1 : 0;
  if (w->quick_deaths >= UCRM_QUICK_DEATHS_MAX) {
    ulog(ULOG_ERROR, "main", "msg=\"worker keeps failing at start-up; giving up\"");
    return -1;
  }
  ulog(ULOG_WARN, "main", "msg=\"worker died; restarting\" quick_deaths=%d", w->quick_deaths);
  if (w->quick_deaths > 0)
    sleep(1); /* signals stay pending meanwhile and are handled right after */
  w->started = time(NULL);
  w->pid = spawn_worker(o, cfg);
  return 0;
}

/* Reaps every worker that ended; returns -1 if one could not be restarted. */
static int reap_workers(const struct opts *o, struct ucrm_config *cfg, struct worker_slot *w,
                        int stopping) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    for (int i = 0; i < o->workers; i++) {
      if (w[i].pid != pid)
        continue;
      w[i].pid = 0;
      if (!stopping && restart_worker(o, cfg, &w[i]) != 0)
        return -1;
    }
  }
  return 0;
}

/*
 * The parent keeps every signal it cares about blocked and takes them one by one with
 * sigwaitinfo, so none can slip in between two checks.
 */
static int parent_run(const struct opts *o, struct ucrm_config *cfg) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigprocmask(SIG_BLOCK, &set, NULL);

  struct worker_slot w[UCRM_MAX_WORKERS] = {{0}};
  for (int i = 0; i < o->workers; i++) {
    w[i].started = time(NULL);
    w[i].pid = spawn_worker(o, cfg);
  }

  int stopping = 0, failed = 0;
  for (;;) {
    if (reap_workers(o, cfg, w, stopping) != 0) {
      failed = stopping = 1;
      signal_all(w, o->workers, SIGTERM);
    }
    if (count_alive(w, o->workers) == 0)
      break;

    int sig = sigwaitinfo(&set, NULL);
    if (sig == SIGTERM || sig == SIGINT) {
      stopping = 1;
      signal_all(w, o->workers, sig);
    } else if (sig == SIGHUP) {
      signal_all(w, o->workers, sig);
    }
  }
  ucrm_config_free(cfg);
  return failed;
}

/*
 * Started with stdin, stdout or stderr closed, the process would hand that number to the first
 * socket or epoll instance it opens, and log lines would be written into it. /dev/null takes
 * each closed one first: open gives the lowest free number, and the lower ones are open by then.
 */
static void keep_std_fds_open(void) {
  for (int fd = 0; fd <= 2; fd++) {
    if (fcntl(fd, F_GETFD) == -1 && errno == EBADF)
      (void)open("/dev/null", O_RDWR);
  }
}

int main(int argc, char **argv) {
  keep_std_fds_open();
  struct opts o = {0};
  if (parse_args(argc, argv, &o) != 0) {
    usage();
    return 2;
  }

  signal(SIGPIPE, SIG_IGN);
  srand((unsigned)time(NULL) ^ (unsigned)getpid());
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
    return 1;

  struct ucrm_config *cfg;
  if (load_config(&o, &cfg) != 0)
    return 1;

  int rc = o.workers > 1 ? parent_run(&o, cfg) : worker_run(&o, cfg, 0);
  curl_global_cleanup();
  return rc;
}
