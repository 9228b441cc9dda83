/* Names of the counter categories, as they appear in /status, /metrics and logs. */
#include "stats.h"

const char *const ts_stats_hs_fail_names[TS_HS_FAIL_N] = {
    [TS_HS_FAIL_TIMEOUT] = "timeout",
    [TS_HS_FAIL_PEER_CLOSED] = "peer_closed",
    [TS_HS_FAIL_HTTP_ON_TLS_PORT] = "http_on_tls_port",
    [TS_HS_FAIL_PROTOCOL_VERSION] = "protocol_version",
    [TS_HS_FAIL_NO_SHARED_CIPHER] = "no_shared_cipher",
    [TS_HS_FAIL_CLIENT_CERT] = "client_certificate",
    [TS_HS_FAIL_BAD_MESSAGE] = "bad_message",
    [TS_HS_FAIL_OVERSIZED_CLIENT_HELLO] = "oversized_client_hello",
    [TS_HS_FAIL_OVERSIZED_CLIENT_CHAIN] = "oversized_client_chain",
    [TS_HS_FAIL_NO_APPLICATION_PROTOCOL] = "no_application_protocol",
    [TS_HS_FAIL_UNRECOGNIZED_NAME] = "unrecognized_name",
    [TS_HS_FAIL_PROXY_HEADER] = "proxy_protocol_header",
    [TS_HS_FAIL_OTHER] = "other",
};

const char *const ts_stats_cert_reason_names[TS_CERT_REASON_N] = {
    [TS_CERT_OK] = "verified",
    [TS_CERT_NONE] = "no_certificate",
    [TS_CERT_UNTRUSTED_ISSUER] = "untrusted_issuer",
    [TS_CERT_EXPIRED] = "expired",
    [TS_CERT_NOT_YET_VALID] = "not_yet_valid",
    [TS_CERT_REVOKED] = "revoked",
    [TS_CERT_WRONG_PURPOSE] = "wrong_purpose",
    [TS_CERT_INVALID] = "invalid",
};

const char *const ts_stats_flood_names[TS_FLOOD_N] = {
    [TS_FLOOD_KEY_UPDATE] = "key_update",
    [TS_FLOOD_RENEGOTIATION] = "renegotiation",
};

const char *const ts_stats_h2_flood_names[TS_H2_FLOOD_N] = {
    [TS_H2_FLOOD_RAPID_RESET] = "rapid_reset", [TS_H2_FLOOD_CONTINUATION] = "continuation",
    [TS_H2_FLOOD_SETTINGS] = "settings",       [TS_H2_FLOOD_CONTROL] = "control_frames",
    [TS_H2_FLOOD_IDLE_FRAMES] = "idle_frames", [TS_H2_FLOOD_HEADER_LIST] = "header_list",
};

const char *const ts_stats_proxy_reject_names[TS_PROXY_REJECT_N] = {
    [TS_PROXY_REJECT_MALFORMED] = "malformed",
    [TS_PROXY_REJECT_NOT_ALLOWED] = "not_allowed",
    [TS_PROXY_REJECT_TIMEOUT] = "timeout",
};
