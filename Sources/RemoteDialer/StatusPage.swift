import HTTP

/// `GET /status`: one self-contained HTML page (no external assets) that fills itself from the
/// admin API every 2 s: clients with a sparkline of their last minute, peers, totals, version.
/// Everything from the network is inserted as text nodes, never as markup. Behind `-admin-tokens`
/// it asks for the token once (kept in sessionStorage) and sends it as Bearer.
public enum StatusPage {
    public static let path = "/status"

    public static func respond(_ exchange: HTTPServerExchange) {
        exchange.respond(.ok, headers: ["Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store",
                                        "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"],
                         body: html)
    }

    static let html = """
    <!doctype html>
    <html lang="en"><head><meta charset="utf-8"><title>remotedialer status</title>
    <style>
    body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
    h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
    table { border-collapse: collapse; } th, td { padding: .25em .7em; text-align: left; border-bottom: 1px solid #ddd; }
    th { background: #f3f3f3; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
    .muted { color: #777; } .bad { color: #b00; } svg polyline { fill: none; stroke: #2a6fdb; stroke-width: 1.5; }
    </style></head>
    <body>
    <h1>remotedialer <span id="server" class="muted"></span></h1>
    <p id="state" class="muted">loading…</p>
    <form id="login" hidden>Admin token: <input id="token" type="password"> <button>Use</button></form>
    <h2>Totals</h2><p id="totals"></p>
    <h2>Clients</h2>
    <table><thead><tr><th>id</th><th>sessions</th><th>remote addresses</th><th>connected since</th><th>open connections</th>
    <th>bytes to client</th><th>bytes from client</th><th>rate (to / from)</th><th>last minute</th></tr></thead><tbody id="clients"></tbody></table>
    <h2>Peers</h2>
    <table><thead><tr><th>id</th><th>URL</th><th>link</th><th>clients announced</th></tr></thead><tbody id="peers"></tbody></table>
    <p class="muted">Refreshes every 2 s from <a href="/api/clients">/api/clients</a> and <a href="/api/peers">/api/peers</a>. <span id="version"></span></p>
    <script>
    "use strict";
    const $ = (id) => document.getElementById(id);
    const bytes = (n) => { const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0; while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; } return (i ? n.toFixed(1) : n) + " " + u[i]; };
    const cell = (row, text, numeric) => { const td = row.insertCell(); td.textContent = text; if (numeric) td.className = "n"; return td; };
    function sparkline(recent) {
      // The server leaves out the idle seconds before a client's first traffic.
      const history = Array(Math.max(0, 60 - recent.length)).fill(0).concat(recent);
      const ns = "http://www.w3.org/2000/svg", w = 120, h = 24, svg = document.createElementNS(ns, "svg");
      svg.setAttribute("width", w); svg.setAttribute("height", h); svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
      const max = Math.max(1, ...history), line = document.createElementNS(ns, "polyline");
      line.setAttribute("points", history.map((v, i) => `${(w * (i + 60 - history.length) / 59).toFixed(1)},${(h - 1 - (h - 2) * v / max).toFixed(1)}`).join(" "));
      svg.appendChild(line); return svg;
    }
    async function api(path) {
      const token = sessionStorage.getItem("adminToken");
      const answer = await fetch(path, { headers: token ? { Authorization: "Bearer " + token } : {}, cache: "no-store" });
      if (answer.status === 401) { $("login").hidden = false; throw new Error("admin token required"); }
      if (!answer.ok) throw new Error(path + ": " + answer.status);
      return answer.json();
    }
    async function refresh() {
      try {
        const [status, peers] = await Promise.all([api("/api/clients"), api("/api/peers")]);
        $("server").textContent = status.listenAddress;
        $("version").textContent = status.version;
        $("state").textContent = (status.draining ? "draining" : "serving") + " · updated " + new Date().toLocaleTimeString();
        $("state").className = status.draining ? "bad" : "muted";
        const t = status.totals;
        $("totals").textContent = `${t.clients} clients, ${t.sessions} sessions, ${t.connections} open connections; ` +
          `${bytes(t.bytesToClients)} to clients, ${bytes(t.bytesFromClients)} from clients; now ${bytes(t.rateToClients)}/s to, ${bytes(t.rateFromClients)}/s from`;
        const clients = $("clients"); clients.replaceChildren();
        for (const c of status.clients) {
          const row = clients.insertRow(); row.id = "client-" + c.id;
          cell(row, c.id); cell(row, c.sessions, true); cell(row, c.remoteAddresses.join(", "));
          cell(row, new Date(c.connectedSince * 1000).toLocaleString()); cell(row, c.connections, true);
          cell(row, bytes(c.bytesToClient), true); cell(row, bytes(c.bytesFromClient), true);
          cell(row, `${bytes(c.rateToClient)}/s / ${bytes(c.rateFromClient)}/s`, true);
          row.insertCell().appendChild(sparkline(c.history));
        }
        const peerRows = $("peers"); peerRows.replaceChildren();
        for (const p of peers.peers) {
          const row = peerRows.insertRow();
          cell(row, p.id); cell(row, p.url); cell(row, p.state + (p.inbound ? " (and inbound)" : "")); cell(row, p.announced.join(", "));
        }
      } catch (error) {
        $("state").textContent = String(error.message || error); $("state").className = "bad";
      }
    }
    $("login").addEventListener("submit", (event) => { event.preventDefault(); sessionStorage.setItem("adminToken", $("token").value); $("login").hidden = true; refresh(); });
    refresh();
    setInterval(refresh, 2000);
    </script>
    </body></html>
    """
}
