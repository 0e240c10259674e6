/*
 * TLS to the provider: verification is on, so a certificate nobody vouches for is a 502
 * naming the problem; upstream.ca_file vouches for it. The provider here is openssl's own
 * s_server with a throw-away self-signed certificate.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define LEAD "adf21080-0e10-11eb-879b-05d71fb426ec"
#define BODY                                                                                       \
  "{\"entity\":\"leads\",\"entity_id\":\"" LEAD "\",\"associations\":"                             \
  "{\"contacts\":[{\"id\":\"9\"}]}}"

static char dir[64];
static int tls_port;
static pid_t server;

static int group_setup(void **state) {
  snprintf(dir, sizeof(dir), "/tmp/unicrm-tls-%d", (int)getpid());
  char cmd[512];
  snprintf(cmd, sizeof(cmd),
           "mkdir -p %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout %s/key.pem "
           "-out %s/cert.pem -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
           ">/dev/null 2>&1",
           dir, dir, dir);
  if (system(cmd) != 0)
    return -1;

  tls_port = h_free_port();
  server = fork();
  if (server == 0) {
    char accept[16], cert[128], key[128];
    snprintf(accept, sizeof(accept), "%d", tls_port);
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    freopen("/dev/null", "w", stdout);
    freopen("/dev/null", "w", stderr);
    execlp("openssl", "openssl", "s_server", "-accept", accept, "-cert", cert, "-key", key, "-www",
           "-quiet", (char *)NULL);
    _exit(127);
  }
  struct timespec ts = {0, 500 * 1000000L};
  nanosleep(&ts, NULL);
  return 0;
}

static int group_teardown(void **state) {
  kill(server, SIGTERM);
  waitpid(server, NULL, 0);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static void start(const char *ca_file) {
  char cfg[1024];
  snprintf(cfg, sizeof(cfg),
           "{\"listen\":\"127.0.0.1:0\",\"upstream\":{\"timeout_ms\":800,\"max_retries\":0,"
           "\"ca_file\":%s%s%s},\"integrated_accounts\":{\"" H_PIPEDRIVE "\":{"
           "\"provider\":\"pipedrive\",\"base_url\":\"https://127.0.0.1:%d\","
           "\"credentials\":{\"api_token\":\"tls-token\"}}}}",
           ca_file ? "\"" : "", ca_file ? ca_file : "null", ca_file ? "\"" : "", tls_port);
  assert_int_equal(h_unicrm_start_config(&g_fx.unicrm, cfg), 0);
}

static void test_untrusted_certificate_is_502(void **state) {
  start(NULL);
  struct h_resp r;
  h_associate(g_fx.unicrm.port, H_PIPEDRIVE, NULL, BODY, &r);
  yajl_val v = fx_expect_error(&r, 502);
  const char *msg = h_str(v, "message");
  assert_true(strstr(msg, "SSL") != NULL || strstr(msg, "certificate") != NULL);
  yajl_tree_free(v);
  h_resp_free(&r);
  assert_int_equal(h_stop(&g_fx.unicrm), 0);
}

static void test_ca_file_is_honoured(void **state) {
  char ca[128];
  snprintf(ca, sizeof(ca), "%s/cert.pem", dir);
  start(ca);
  struct h_resp r;
  h_associate(g_fx.unicrm.port, H_PIPEDRIVE, NULL, BODY, &r);
  /* The handshake now succeeds; s_server -www then never answers a PATCH, so the call times
   * out: whatever the status, it is no longer a certificate failure. */
  assert_null(strstr(r.body, "certificate"));
  assert_null(strstr(r.body, "SSL"));
  assert_true(r.status == 504 || r.status == 502 || r.status == 201);
  h_resp_free(&r);
  assert_int_equal(h_stop(&g_fx.unicrm), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_untrusted_certificate_is_502),
      cmocka_unit_test(test_ca_file_is_honoured),
  };
  return cmocka_run_group_tests_name("tls", tests, group_setup, group_teardown);
}
