/* Client certificates at the HTTP level: the 403 answer that tells a client why its
 * certificate does not open a protected location. */
#ifndef TS_CLIENTAUTH_H
#define TS_CLIENTAUTH_H

struct ts_req;

/* Human sentence for a reason (enum ts_cert_reason). */
const char *ts_clientauth_message(int reason);

/* Answers 403 for a protected location the client's certificate does not open: HTML (the
 * site's errors/403.html template if present, else built in) or JSON when the client accepts
 * application/json. How much of the certificate is shown follows tls.client_cert_detail. */
void ts_clientauth_forbidden(struct ts_req *req);

#endif
