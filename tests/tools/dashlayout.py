#!/usr/bin/python3
"""The dashboard's layout in headless Chromium, driven over the DevTools protocol (a WebSocket;
Debian's python3-websocket, hence /usr/bin/python3 in the shebang).

    dashlayout.py --chromium PATH --profile DIR --page NAME URL [--page NAME URL ...]
                  --widths 1280,1400,... [--narrow 800,...] [--height 900] [--spki HASH]
                  [--sites N] [--polls N] [--shots DIR [--all-shots]] [--timeout S]

One Chromium, one tab. For each page, at each width (then each --narrow width) the viewport is
set to that width (Emulation.setDeviceMetricsOverride: a desktop viewport, scale 1, scrollbars
as the platform draws them), the page is loaded, and the script waits until it has rendered its
data: body[data-state=live], at least --polls polls done (data-polls), and at least --sites rows
in the Sites table. That is a DOM state, watched by a MutationObserver in the page, bounded by
--timeout. Then it measures, in the page:

  scroll_width  document.documentElement.scrollWidth; inner_width window.innerWidth;
                client_width document.documentElement.clientWidth (innerWidth less a
                vertical scrollbar)
  cards         the visible elements with class "card" that were checked
  boxes         how many element boxes and text runs were compared with their card's box
  outside       every element box and every run of text (a text node's line boxes: text
                that spills out of its element does not widen the element's box) that is not
                inside its card's box, 1 px allowed: "card: what [field]: how far out"
  scrollers     elements in a card whose content is wider than they are (a table scrolling
                inside its card)
  crowded       neighbouring cells of a table row whose texts are less than 8 px apart (or
                overlap): columns that run into each other
  fields        how many [data-field] elements have a value (data-value set)
  requests_total  the text of #requests-total (how large the numbers on the page are)

At the --widths every descendant of a card counts, and a scroller is a fault. At the --narrow
widths a card may scroll a wide table inside itself (overflow-x auto): what lies inside such a
scroller is clipped by it and is not compared, the scroller itself is.

One JSON object per page and width on stdout ({"page": NAME, "width": W, "narrow": bool,
"rendered": bool, ...} with the lists above). With --shots a full-page PNG, DIR/NAME-WIDTH.png,
of each width where something was found (outside, scrollers at a --widths width, crowded, a
horizontal scroll), or of every width with --all-shots. Exit status 0 when every width was
measured, 2 when the browser or a page could not be driven (a reason on stderr)."""
import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import time

import websocket

MEASURE = r"""
(function (narrow) {
    const out = { inner_width: innerWidth, client_width: document.documentElement.clientWidth,
                  scroll_width: document.documentElement.scrollWidth, cards: 0, boxes: 0,
                  outside: [], scrollers: [], crowded: [], fields: 0 };
    const name = (e) => {
        let s = e.nodeType === Node.TEXT_NODE ? "text in " + name(e.parentElement) : e.tagName.toLowerCase();
        if (e.nodeType === Node.TEXT_NODE) return s;
        if (e.id) s += "#" + e.id;
        else if (typeof e.className === "string" && e.className.trim()) s += "." + e.className.trim().split(/\s+/).join(".");
        if (e.dataset && e.dataset.field && !e.id) s += "[" + e.dataset.field + "]";
        return s;
    };
    const cardName = (c) => c.id || (c.querySelector("h2, .label") || c).textContent.trim().split("\n")[0].slice(0, 40);
    const scrolls = (e) => /^(auto|scroll|hidden|clip)$/.test(getComputedStyle(e).overflowX);
    const rectsOf = (n) => {
        if (n.nodeType === Node.TEXT_NODE) {
            if (!n.data.trim()) return [];
            const r = document.createRange();
            r.selectNodeContents(n);
            return Array.from(r.getClientRects());
        }
        return n.getClientRects().length ? [n.getBoundingClientRect()] : [];
    };
    for (const card of document.querySelectorAll(".card")) {
        if (!card.getClientRects().length) continue; // hidden (the Sites card without sites)
        out.cards++;
        const c = card.getBoundingClientRect();
        const walk = document.createTreeWalker(card, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT);
        const inScroller = (n) => { // at a narrow width: clipped by a scroller, reached by scrolling it
            for (let e = n.parentElement; e && e !== card; e = e.parentElement) if (scrolls(e)) return true;
            return false;
        };
        for (let n = walk.nextNode(); n; n = walk.nextNode()) {
            if (narrow && inScroller(n)) continue;
            for (const r of rectsOf(n)) {
                if (r.width === 0 && r.height === 0) continue;
                out.boxes++;
                const far = Math.max(c.left - r.left, r.right - c.right, c.top - r.top, r.bottom - c.bottom);
                if (far > 1)
                    out.outside.push(cardName(card) + ": " + name(n) + " " + Math.round(r.left - c.left) + ".." +
                        Math.round(r.right - c.left) + " of 0.." + Math.round(c.width) + " px wide, " +
                        Math.round(r.top - c.top) + ".." + Math.round(r.bottom - c.top) + " of 0.." + Math.round(c.height) + " px high");
            }
            if (n.nodeType === Node.ELEMENT_NODE && n.tagName !== "CANVAS" && scrolls(n) && n.scrollWidth > n.clientWidth + 1)
                out.scrollers.push(cardName(card) + ": " + name(n) + " holds " + n.scrollWidth + " px in " + n.clientWidth);
        }
        // columns that run into each other: the texts of neighbouring cells of a row
        for (const tr of card.querySelectorAll("tr")) {
            let prev = null, prevCell = null;
            for (const cell of tr.cells) {
                const r = document.createRange();
                r.selectNodeContents(cell);
                const rs = Array.from(r.getClientRects()).filter((x) => x.width > 0);
                if (!rs.length) continue;
                const left = Math.min(...rs.map((x) => x.left)), right = Math.max(...rs.map((x) => x.right));
                if (prev !== null && left - prev < 8)
                    out.crowded.push(cardName(card) + ": " + name(prevCell) + " and " + name(cell) + " " +
                        (left < prev ? "overlap by " + Math.round(prev - left) : Math.round(left - prev) + " px apart"));
                prev = right;
                prevCell = cell;
            }
        }
    }
    out.fields = document.querySelectorAll("[data-field][data-value]").length;
    out.requests_total = (document.getElementById("requests-total") || {}).textContent;
    return JSON.stringify(out);
})
"""

WAIT = r"""
new Promise((resolve) => {
    const done = () => document.body && document.body.dataset.state === "live" &&
        Number(document.body.dataset.polls) >= %(polls)d &&
        document.querySelectorAll("#sites-table tbody tr").length >= %(sites)d;
    if (done()) return resolve(true);
    const mo = new MutationObserver(() => { if (done()) { mo.disconnect(); resolve(true); } });
    mo.observe(document.documentElement, { attributes: true, childList: true, subtree: true, characterData: true });
    setTimeout(() => { mo.disconnect(); resolve(done()); }, %(ms)d);
})
"""


class Fail(Exception):
    pass


class CDP:
    def __init__(self, url, timeout):
        self.ws = websocket.create_connection(url, timeout=timeout, suppress_origin=True)
        self.next_id = 0
        self.session = None

    def call(self, method, **params):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if self.session:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        while True:  # events (and answers to nothing we wait for) are skipped
            m = json.loads(self.ws.recv())
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise Fail("%s: %s" % (method, m["error"].get("message")))
                return m.get("result", {})

    def eval(self, expr, promise=False):
        r = self.call("Runtime.evaluate", expression=expr, awaitPromise=promise, returnByValue=True)
        if "exceptionDetails" in r:
            raise Fail("page script: %s" % r["exceptionDetails"].get("text"))
        return r["result"].get("value")


def start(a):
    os.makedirs(a.profile, exist_ok=True)
    port_file = os.path.join(a.profile, "DevToolsActivePort")
    if os.path.exists(port_file):
        os.unlink(port_file)
    home = os.path.join(a.profile, "home")
    env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=home, XDG_CACHE_HOME=home)
    cmd = [a.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-dev-shm-usage", "--mute-audio", "--user-data-dir=" + a.profile,
           "--remote-debugging-port=0", "--host-resolver-rules=MAP localhost 127.0.0.1",
           "--window-size=%d,%d" % (max(a.widths + a.narrow), a.height)]
    if a.spki:
        cmd.append("--ignore-certificate-errors-spki-list=" + a.spki)
    cmd.append("about:blank")
    err = open(os.path.join(a.profile, "chromium.err"), "w")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=env, start_new_session=True)
    deadline = time.monotonic() + a.timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Fail("chromium exited with %d (see %s)" % (proc.returncode, err.name))
        try:
            with open(port_file) as f:
                port, path = f.read().split("\n")[:2]
            if port and path:
                return proc, "ws://127.0.0.1:%s%s" % (port, path)
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise Fail("chromium wrote no DevToolsActivePort in %g s" % a.timeout)


def measure(cdp, a, page, url, width, narrow):
    cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=a.height, deviceScaleFactor=1, mobile=False)
    cdp.call("Page.navigate", url=url)
    # the navigation replaces the document: wait for the new one before watching it
    deadline = time.monotonic() + a.timeout
    while cdp.eval("document.readyState === 'complete' && location.href === %s" % json.dumps(url)) is not True:
        if time.monotonic() > deadline:
            raise Fail("%d px: %s did not load" % (width, url))
        time.sleep(0.05)
    ready = cdp.eval(WAIT % {"polls": a.polls, "sites": a.sites, "ms": int(a.timeout * 1000)}, promise=True)
    m = json.loads(cdp.eval(MEASURE + "(%s)" % ("true" if narrow else "false")))
    m.update(page=page, width=width, narrow=narrow, rendered=bool(ready),
             polls=int(cdp.eval("Number(document.body.dataset.polls)") or 0),
             sites=cdp.eval("document.querySelectorAll('#sites-table tbody tr').length"))
    fault = m["outside"] or m["crowded"] or (m["scrollers"] and not narrow) or \
        m["scroll_width"] > min(m["inner_width"], m["client_width"])
    if a.shots and (fault or a.all_shots):
        lm = cdp.call("Page.getLayoutMetrics")
        size = lm.get("cssContentSize") or lm["contentSize"]
        shot = cdp.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                        clip={"x": 0, "y": 0, "width": max(width, size["width"]), "height": size["height"], "scale": 1})
        with open(os.path.join(a.shots, "%s-%d.png" % (page, width)), "wb") as f:
            f.write(base64.b64decode(shot["data"]))
    return m


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--chromium", required=True)
    p.add_argument("--profile", required=True, help="a directory of its own for Chromium's profile")
    p.add_argument("--page", nargs=2, action="append", required=True, metavar=("NAME", "URL"))
    p.add_argument("--widths", required=True)
    p.add_argument("--narrow", default="")
    p.add_argument("--height", type=int, default=900)
    p.add_argument("--spki", default="")
    p.add_argument("--sites", type=int, default=0)
    p.add_argument("--polls", type=int, default=2)
    p.add_argument("--shots", default="")
    p.add_argument("--all-shots", action="store_true")
    p.add_argument("--timeout", type=float, default=20)
    a = p.parse_args()
    a.widths = [int(w) for w in a.widths.split(",") if w]
    a.narrow = [int(w) for w in a.narrow.split(",") if w]
    if a.shots:
        os.makedirs(a.shots, exist_ok=True)
    proc = None
    # a timeout's TERM still takes Chromium (its own process group) down with this script
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))
    try:
        proc, browser_ws = start(a)
        cdp = CDP(browser_ws, a.timeout)
        target = cdp.call("Target.createTarget", url="about:blank")["targetId"]
        cdp.session = cdp.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        cdp.call("Page.enable")
        for name, url in a.page:
            for w in a.widths:
                print(json.dumps(measure(cdp, a, name, url, w, False)), flush=True)
            for w in a.narrow:
                print(json.dumps(measure(cdp, a, name, url, w, True)), flush=True)
        cdp.session = None
        try:
            cdp.call("Browser.close")
        except (Fail, OSError, websocket.WebSocketException):
            pass
        return 0
    except (Fail, OSError, ValueError, websocket.WebSocketException) as e:
        print("dashlayout: %s" % e, file=sys.stderr)
        return 2
    finally:
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # what is left of its own process group
            except ProcessLookupError:
                pass
            proc.wait()


if __name__ == "__main__":
    sys.exit(main())
