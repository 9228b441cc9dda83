/* Per-worker counters. Each is written only by its own worker (a relaxed load and store, no
 * lock prefix) and read by whichever thread serves /status, so totals are exact sums. */
#ifndef TS_STATS_H
#define TS_STATS_H

#include <stdatomic.h>
#include <stdint.h>

/* Why a handshake failed; keep in step with ts_stats_hs_fail_names. */
enum ts_hs_fail {
    TS_HS_FAIL_TIMEOUT,
    TS_HS_FAIL_PEER_CLOSED,
    TS_HS_FAIL_HTTP_ON_TLS_PORT,
    TS_HS_FAIL_PROTOCOL_VERSION,
    TS_HS_FAIL_NO_SHARED_CIPHER,
    TS_HS_FAIL_CLIENT_CERT,
    TS_HS_FAIL_BAD_MESSAGE,
    TS_HS_FAIL_OVERSIZED_CLIENT_HELLO,
    TS_HS_FAIL_OVERSIZED_CLIENT_CHAIN,
    TS_HS_FAIL_NO_APPLICATION_PROTOCOL, /* ALPN offered, none of it ours */
    TS_HS_FAIL_UNRECOGNIZED_NAME,       /* tls.strict_sni: SNI named no site */
    TS_HS_FAIL_PROXY_HEADER, /* a PROXY protocol header on a listener without proxy_protocol */
    TS_HS_FAIL_OTHER,
    TS_HS_FAIL_N
};

/* Post-handshake messages a client sent too many of without application data between them;
 * keep in step with ts_stats_flood_names. */
enum ts_flood {
    TS_FLOOD_KEY_UPDATE,    /* TLS 1.3 KeyUpdate */
    TS_FLOOD_RENEGOTIATION, /* TLS 1.2 ClientHello after the handshake (refused, still answered) */
    TS_FLOOD_N
};

/* Why an HTTP/2 connection was ended with GOAWAY for abuse; keep in step with
 * ts_stats_h2_flood_names. */
enum ts_h2_flood {
    TS_H2_FLOOD_RAPID_RESET,  /* streams opened and reset faster than the rate limit */
    TS_H2_FLOOD_CONTINUATION, /* a header block in too many CONTINUATION frames */
    TS_H2_FLOOD_SETTINGS,     /* too many settings in SETTINGS frames */
    TS_H2_FLOOD_CONTROL,      /* PING / SETTINGS frames whose ACKs pile up unread */
    TS_H2_FLOOD_IDLE_FRAMES,  /* PRIORITY, WINDOW_UPDATE, empty DATA... without a request */
    TS_H2_FLOOD_HEADER_LIST,  /* a header block decoding far past max_header_bytes (HPACK bomb) */
    TS_H2_FLOOD_N
};
/* Why a PROXY protocol listener closed a connection before the handshake; keep in step with
 * ts_stats_proxy_reject_names. */
enum ts_proxy_reject {
    TS_PROXY_REJECT_MALFORMED,   /* no header, a broken one, or the client closed mid-header */
    TS_PROXY_REJECT_NOT_ALLOWED, /* the socket's peer is not in proxy_protocol_from */
    TS_PROXY_REJECT_TIMEOUT,     /* no complete header within timeouts.handshake_s */
    TS_PROXY_REJECT_N
};

/* Which timer expired; keep in step with enum ts_timer_kind. */
enum { TS_STATS_TIMEOUT_N = 5 };

/* Client certificate outcome reasons; keep in step with ts_stats_cert_reason_names. */
enum ts_cert_reason {
    TS_CERT_OK,
    TS_CERT_NONE,
    TS_CERT_UNTRUSTED_ISSUER,
    TS_CERT_EXPIRED,
    TS_CERT_NOT_YET_VALID,
    TS_CERT_REVOKED,
    TS_CERT_WRONG_PURPOSE,
    TS_CERT_INVALID,
    TS_CERT_REASON_N
};

struct ts_stats {
    /* connections */
    _Atomic uint64_t accepted, active, idle, handshaking;
    _Atomic uint64_t closed_clean, closed_peer_eof, closed_timeout, closed_error;
    _Atomic uint64_t timeouts[TS_STATS_TIMEOUT_N];
    _Atomic uint64_t closed_flood[TS_FLOOD_N]; /* also counted in closed_error */
    /* requests */
    _Atomic uint64_t requests, in_flight, status_class[6]; /* [1]..[5] = 1xx..5xx */
    _Atomic uint64_t bytes_received, bytes_sent;
    /* TLS */
    _Atomic uint64_t hs_full, hs_resumed, hs_failed, hs_fail[TS_HS_FAIL_N];
    _Atomic uint64_t proto_tls12, proto_tls13;
    _Atomic uint64_t resumed_tls12_session_id, resumed_tls12_ticket, resumed_tls13_ticket;
    /* client certificates: outcome per handshake-verified connection, by reason */
    _Atomic uint64_t cert_verified, cert_absent, cert_rejected, cert_untrusted_accepted;
    _Atomic uint64_t cert_reason[TS_CERT_REASON_N];
    /* protocols: connections and requests per application protocol; HTTP/2 frames */
    _Atomic uint64_t conns_http11, conns_h2, requests_http11, requests_h2;
    _Atomic uint64_t h2_streams_open; /* gauge */
    _Atomic uint64_t h2_goaway_sent, h2_goaway_received, h2_rst_sent, h2_rst_received;
    _Atomic uint64_t h2_flood[TS_H2_FLOOD_N];
    /* PROXY protocol listeners: headers accepted, connections refused by reason */
    _Atomic uint64_t proxy_accepted, proxy_rejected[TS_PROXY_REJECT_N];
};

/* Per site (in cfg->sites order), per worker, written like struct ts_stats: requests, their
 * response body bytes, completed and failed handshakes, client-certificate outcomes. */
struct ts_site_stats {
    _Atomic uint64_t requests, bytes, handshakes, hs_failed;
    _Atomic uint64_t cert_verified, cert_absent, cert_rejected, cert_untrusted_accepted;
};

extern const char *const ts_stats_hs_fail_names[TS_HS_FAIL_N];
extern const char *const ts_stats_cert_reason_names[TS_CERT_REASON_N];
extern const char *const ts_stats_flood_names[TS_FLOOD_N];
extern const char *const ts_stats_h2_flood_names[TS_H2_FLOOD_N];
extern const char *const ts_stats_proxy_reject_names[TS_PROXY_REJECT_N];

static inline void ts_stat_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline void ts_stat_sub(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - n,
                          memory_order_relaxed);
}

static inline uint64_t ts_stat_get(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

#define TS_INC(w, field) ts_stat_add(&(w)->stats.field, 1)
#define TS_DEC(w, field) ts_stat_sub(&(w)->stats.field, 1)

#endif
