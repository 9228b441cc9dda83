/* Unit tests for the access-log escaper: whatever bytes a client sends, a JSON line stays valid
 * JSON in UTF-8 and a combined line stays printable ASCII on one line. And the access log on a
 * pipe that takes lines in part: what the reader gets is whole lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"
#include "log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *esc(const char *s, size_t len, size_t room, unsigned flags)
{
    static char out[4096];
    size_t n = ts_log_escape(out, room, s, len, flags);
    assert_true(n <= room);
    out[n] = '\0';
    return out;
}

#define JSON(lit)     esc((lit), sizeof(lit) - 1, 4000, TS_LOG_ESC_JSON)
#define COMBINED(lit) esc((lit), sizeof(lit) - 1, 4000, 0)

static void test_ascii(void **state)
{
    (void)state;
    assert_string_equal(JSON("Mozilla/5.0 (X11)"), "Mozilla/5.0 (X11)");
    assert_string_equal(JSON("say \"hi\" \\o/"), "say \\\"hi\\\" \\\\o/");
    assert_string_equal(JSON("a\nb\r\t\x01\x1f\x7f"),
                        "a\\u000ab\\u000d\\u0009\\u0001\\u001f\\u007f");
    assert_string_equal(JSON("nul\0x"), "nul\\u0000x");
    assert_string_equal(COMBINED("a\nb\"\\\x7f"), "a\\x0ab\\\"\\\\\\x7f");
    assert_string_equal(COMBINED("a b"), "a b");
    assert_string_equal(esc("a b", 3, 100, TS_LOG_ESC_SPACE), "a\\x20b");
}

static void test_valid_utf8_passes(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "caf\xc3\xa9",      /* U+00E9 */
        "\xc2\xa0",         /* U+00A0, the first after the C1 controls */
        "\xe0\xa0\x80",     /* U+0800, the shortest 3-byte form */
        "\xe2\x82\xac",     /* U+20AC */
        "\xed\x9f\xbf",     /* U+D7FF, just below the surrogates */
        "\xee\x80\x80",     /* U+E000, just above them */
        "\xef\xbf\xbd",     /* U+FFFD */
        "\xf0\x90\x80\x80", /* U+10000 */
        "\xf0\x9d\x84\x9e", /* U+1D11E */
        "\xf4\x8f\xbf\xbf", /* U+10FFFF, the last */
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_string_equal(esc(ok[i], strlen(ok[i]), 100, TS_LOG_ESC_JSON), ok[i]);
    /* the combined format stays ASCII */
    assert_string_equal(COMBINED("caf\xc3\xa9"), "caf\\xc3\\xa9");
}

static void test_invalid_utf8_escaped(void **state)
{
    (void)state;
    assert_string_equal(JSON("\xff"), "\\u00ff");
    assert_string_equal(JSON("\x80"), "\\u0080");                       /* lone continuation */
    assert_string_equal(JSON("\xc0\xaf"), "\\u00c0\\u00af");            /* overlong '/' */
    assert_string_equal(JSON("\xc1\xbf"), "\\u00c1\\u00bf");            /* overlong */
    assert_string_equal(JSON("\xe0\x80\xaf"), "\\u00e0\\u0080\\u00af"); /* overlong */
    assert_string_equal(JSON("\xe0\x9f\xbf"), "\\u00e0\\u009f\\u00bf"); /* overlong U+07FF */
    assert_string_equal(JSON("\xf0\x80\x80\xaf"), "\\u00f0\\u0080\\u0080\\u00af");
    assert_string_equal(JSON("\xf0\x8f\xbf\xbf"), "\\u00f0\\u008f\\u00bf\\u00bf");
    assert_string_equal(JSON("\xed\xa0\x80"), "\\u00ed\\u00a0\\u0080");            /* U+D800 */
    assert_string_equal(JSON("\xed\xbf\xbf"), "\\u00ed\\u00bf\\u00bf");            /* U+DFFF */
    assert_string_equal(JSON("\xf4\x90\x80\x80"), "\\u00f4\\u0090\\u0080\\u0080"); /* U+110000 */
    assert_string_equal(JSON("\xf5\x80\x80\x80"), "\\u00f5\\u0080\\u0080\\u0080");
    assert_string_equal(JSON("a\xe2\x82"), "a\\u00e2\\u0082"); /* cut short at the end */
    assert_string_equal(JSON("\xe2\x82"
                             "A"),
                        "\\u00e2\\u0082A");             /* cut short by ASCII */
    assert_string_equal(JSON("\xc3\""), "\\u00c3\\\""); /* a quote is no continuation */
    assert_string_equal(JSON("\xf0\x9d\x84"), "\\u00f0\\u009d\\u0084");
}

static void test_controls_beyond_ascii(void **state)
{
    (void)state;
    assert_string_equal(JSON("\xc2\x85"), "\\u0085");       /* NEL */
    assert_string_equal(JSON("\xc2\x9b[2J"), "\\u009b[2J"); /* CSI */
    assert_string_equal(JSON("a\xe2\x80\xa8"
                             "b\xe2\x80\xa9"),
                        "a\\u2028b\\u2029");
    assert_string_equal(JSON("\xe2\x80\xaa"), "\xe2\x80\xaa"); /* U+202A is text */
}

static void test_room(void **state)
{
    (void)state;
    /* never half an escape or half a character */
    assert_string_equal(esc("ab\x01", 3, 7, TS_LOG_ESC_JSON), "ab");
    assert_string_equal(esc("ab\x01", 3, 8, TS_LOG_ESC_JSON), "ab\\u0001");
    assert_string_equal(esc("a\"", 2, 2, TS_LOG_ESC_JSON), "a");
    assert_string_equal(esc("\xc3\xa9\xe2\x82\xac", 5, 4, TS_LOG_ESC_JSON), "\xc3\xa9");
    assert_string_equal(esc("\xf0\x9d\x84\x9e", 4, 3, TS_LOG_ESC_JSON), "");
    assert_string_equal(esc("a\x01", 2, 4, 0), "a");
    assert_string_equal(esc("abc", 3, 0, TS_LOG_ESC_JSON), "");
}

/* An independent strict check: is p[0..n) well-formed UTF-8 with no controls? */
static int valid_json_text(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = p[i], cp, len;
        if (c < 0x20 || c == 0x7f) return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0)
            cp = c & 0x1f, len = 2;
        else if ((c & 0xf0) == 0xe0)
            cp = c & 0x0f, len = 3;
        else if ((c & 0xf8) == 0xf0)
            cp = c & 0x07, len = 4;
        else
            return 0;
        if (i + len > n) return 0;
        for (unsigned k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        unsigned min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        if (cp < 0xa0) return 0; /* C1 controls are escaped */
        i += len;
    }
    return 1;
}

static void test_random_bytes(void **state)
{
    (void)state;
    unsigned seed = 12345;
    char in[64], out[400];
    for (int round = 0; round < 200000; round++) {
        size_t len = (size_t)(rand_r(&seed) % (int)sizeof(in));
        for (size_t i = 0; i < len; i++) {
            /* lean on the bytes that matter: lead bytes, continuations, quotes, controls */
            static const unsigned char pick[] = {0x80, 0xbf, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0,
                                                 0xf4, 0xf5, 0xff, '"',  '\\', 0x00, 0x1f, 'a'};
            in[i] = (char)(rand_r(&seed) & 1 ? pick[rand_r(&seed) % (int)sizeof(pick)]
                                             : rand_r(&seed) & 0xff);
        }
        size_t room = (size_t)(rand_r(&seed) % (int)sizeof(out));
        size_t n = ts_log_escape(out, room, in, len, TS_LOG_ESC_JSON);
        assert_true(n <= room);
        if (!valid_json_text((const unsigned char *)out, n))
            fail_msg("round %d: invalid output", round);
        /* the combined format: printable ASCII, and with the space flag no space either */
        size_t m = ts_log_escape(out, room, in, len, TS_LOG_ESC_SPACE);
        assert_true(m <= room);
        for (size_t i = 0; i < m; i++)
            if (out[i] <= 0x20 || out[i] >= 0x7f)
                fail_msg("round %d: byte %02x in combined", round, (unsigned char)out[i]);
        n = ts_log_escape(out, room, in, len, TS_LOG_ESC_JSON);
        /* every quote is escaped and no escape is cut: backslashes pair up, \u has 4 hex digits */
        for (size_t i = 0; i < n; i++) {
            if (out[i] == '"') fail_msg("round %d: bare quote", round);
            if (out[i] != '\\') continue;
            assert_true(i + 1 < n);
            if (out[i + 1] == 'u') {
                assert_true(i + 5 < n);
                i += 5;
            } else {
                assert_true(out[i + 1] == '"' || out[i + 1] == '\\');
                i++;
            }
        }
    }
}

/* One access-log line whose target is TARGET_LEN bytes of c, User-Agent and Referer 1000 each
 * when long: a line of about 5.3 KB, more than a pipe takes in one piece (PIPE_BUF). */
static void add_line(struct ts_access_log *log, char c, size_t target_len, bool long_headers)
{
    static char target[3000], header[1000];
    memset(target, c, sizeof(target));
    target[0] = '/';
    memset(header, 'h', sizeof(header));
    struct ts_access_entry e = {
        .remote = "127.0.0.1",
        .time = 1700000000,
        .method = "GET",
        .target = target,
        .target_len = target_len,
        .protocol = "HTTP/1.1",
        .status = 200,
        .bytes = 6,
        .referer = header,
        .referer_len = long_headers ? sizeof(header) : 0,
        .user_agent = header,
        .user_agent_len = long_headers ? sizeof(header) : 0,
    };
    ts_log_access(log, &e);
}

/* A named pipe of one page (4096 bytes) as the access log, read a little at a time, and two
 * buffers standing for two workers, each with lines longer than the pipe: a pipe takes such a
 * line in part, and the rest of it must go out before anything else. What the reader gets is
 * whole lines, each worker's in its order; lines the pipe cannot take yet wait, none is lost. */
static void test_access_pipe(void **state)
{
    (void)state;
    char dir[] = "/tmp/ts-test-log.XXXXXX", fifo[64], errlog[64], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(fifo, sizeof(fifo), "%s/access", dir);
    snprintf(errlog, sizeof(errlog), "%s/error", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    int rfd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* a reader, so the open succeeds */
    assert_true(rfd >= 0);
    struct ts_config cfg = {0};
    cfg.log.access = fifo;
    cfg.log.error = errlog;
    cfg.log.format = TS_LOG_FORMAT_JSON;
    cfg.log.level = TS_LOG_INFO;
    assert_int_equal(ts_log_open(&cfg, err, sizeof(err)), 0);
    assert_true(fcntl(rfd, F_SETPIPE_SZ, 4096) >= 0); /* ts_log_open grew it: shrink it again */

    static struct ts_access_log a, b;
    add_line(&a, 'a', 3000, true);
    add_line(&a, 'b', 10, false);
    add_line(&a, 'c', 3000, true);
    add_line(&b, 'x', 3000, true);
    add_line(&b, 'y', 20, false);
    add_line(&b, 'z', 2999, true);
    size_t want = a.len + b.len;

    static char out[65536];
    size_t got = 0;
    int waits = 0;
    for (int round = 0; round < 1000 && got < want; round++) {
        waits += ts_log_access_flush(round & 1 ? &b : &a);
        ssize_t r = read(rfd, out + got, 700); /* a reader slower than the writers */
        if (r > 0) got += (size_t)r;
    }
    assert_int_equal(got, want);
    assert_true(waits > 0); /* the pipe was full at times: lines waited rather than blocked */
    assert_int_equal(a.len + b.len, 0);
    assert_false(ts_log_access_flush(&a));

    /* whole lines, in each writer's order: a, b, c and x, y, z */
    const char *order[2] = {"abc", "xyz"};
    int next[2] = {0, 0}, lines = 0;
    for (char *p = out, *end = out + got; p < end; lines++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        assert_non_null(nl);
        assert_memory_equal(p, "{\"time\":\"", 9);
        assert_true(nl[-1] == '}');
        char *t = strstr(p, "\"target\":\"/");
        assert_true(t && t < nl);
        char c = t[11];
        int w = c >= 'x';
        assert_true(next[w] < 3 && c == order[w][next[w]]);
        next[w]++;
        size_t tlen = (size_t)(strchr(t + 10, '"') - (t + 10));
        assert_true(tlen == (c == 'b' ? 10 : c == 'y' ? 20 : c == 'z' ? 2999 : 3000));
        p = nl + 1;
    }
    assert_int_equal(lines, 6);

    ts_log_close();
    struct stat st;
    assert_int_equal(stat(errlog, &st), 0);
    assert_int_equal(st.st_size, 0); /* nothing lost, nothing to say */
    close(rfd);
    unlink(fifo);
    unlink(errlog);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ascii),
        cmocka_unit_test(test_valid_utf8_passes),
        cmocka_unit_test(test_invalid_utf8_escaped),
        cmocka_unit_test(test_controls_beyond_ascii),
        cmocka_unit_test(test_room),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_access_pipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
