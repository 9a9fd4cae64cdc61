"""Statistics, targets, Markdown report and gnuplot chart for bench/compare.

Kept apart from the runner so that each file stays readable; see
bench/compare for what is measured and how.
"""

import os
import statistics
import subprocess
import sys


def log(msg):
    sys.stderr.write("compare: %s\n" % msg)
    sys.stderr.flush()


def summarize(scenarios, records):
    """Per (scenario, server): medians of the metric, CPU per op, p99."""
    out = {}
    for sc in scenarios:
        per = {}
        for server in sc.servers:
            runs = [r for r in records if r["scenario"] == sc.name and
                    r["server"] == server]
            ok = [r for r in runs if "error" not in r and
                  sc.metric.key in r]
            s = {"runs": len(runs), "ok": len(ok),
                 "errors": [r["error"] for r in runs if "error" in r],
                 "warnings": [r["warning"] for r in runs if "warning" in r]}
            if ok:
                vals = [float(r[sc.metric.key]) for r in ok]
                cpu = [float(r.get("server_cpu_us_per_op", 0)) for r in ok]
                s["median"] = statistics.median(vals)
                s["min"] = min(vals)
                s["max"] = max(vals)
                s["values"] = vals
                s["cpu_us_per_op"] = statistics.median(cpu)
                s["p99_us"] = statistics.median(
                    [float(r.get("p99_us", 0)) for r in ok])
                s["connections"] = ok[0].get("connections", sc.connections)
                if sc.mode == "udp":
                    s["lost"] = sum(int(r.get("lost", 0)) for r in ok)
                res = [float(r["resumed_pct"]) for r in ok
                       if "resumed_pct" in r]
                if res:
                    s["resumed_pct"] = statistics.median(res)
            per[server] = s
        # Ratios are paired: ksockd/peer within each round (the runs a few
        # seconds apart), then the median over the rounds.  That cancels
        # what drifts between rounds on a shared machine.
        ok = lambda r: "error" not in r and sc.metric.key in r
        kruns = {r["round"]: r for r in records if r["scenario"] == sc.name
                 and r["server"] == "ksockd" and ok(r)}
        for server, s in per.items():
            if server == "ksockd":
                continue
            ratios, cpu_ratios = [], []
            for r in records:
                if r["scenario"] != sc.name or r["server"] != server or \
                        not ok(r) or r["round"] not in kruns:
                    continue
                k = kruns[r["round"]]
                if float(r[sc.metric.key]) > 0:
                    ratios.append(float(k[sc.metric.key]) /
                                  float(r[sc.metric.key]))
                if sc.metric.cpu_unit and \
                        float(r.get("server_cpu_us_per_op", 0)) > 0:
                    cpu_ratios.append(float(k["server_cpu_us_per_op"]) /
                                      float(r["server_cpu_us_per_op"]))
            if ratios:
                s["ratio"] = statistics.median(ratios)
                s["ratios"] = ratios
            if cpu_ratios:
                s["cpu_ratio"] = statistics.median(cpu_ratios)
                s["cpu_ratios"] = cpu_ratios
        out[sc.name] = per
    return out


def evaluate_targets(scenarios, summary):
    res = []
    for sc in scenarios:
        per = summary.get(sc.name, {})
        k = per.get("ksockd", {})
        for t in sc.targets:
            row = {"scenario": sc.name, "target": t.text, "bound": t.bound}
            if t.peer is None:
                row["what"] = "ksockd %s" % sc.metric.unit
                row["measured"] = k.get("median")
                ok = row["measured"] is not None and (
                    row["measured"] >= t.bound if sc.metric.higher_is_better
                    else row["measured"] <= t.bound)
            else:
                if t.peer == "best":
                    peers = [(s["median"], n) for n, s in per.items()
                             if n != "ksockd" and "median" in s]
                    best = (max(peers) if sc.metric.higher_is_better
                            else min(peers)) if peers else None
                    peer = best[1] if best else None
                    row["what"] = "ksockd/best peer (%s)" % peer
                else:
                    peer = t.peer
                    row["what"] = "ksockd/%s" % peer
                row["measured"] = per.get(peer, {}).get("ratio")
                ok = row["measured"] is not None and (
                    row["measured"] >= t.bound if sc.metric.higher_is_better
                    else row["measured"] <= t.bound)
                if peer is not None:
                    row["cpu_ratio"] = per.get(peer, {}).get("cpu_ratio")
            row["status"] = ("n/a" if row["measured"] is None else
                             "met" if ok else "missed")
            res.append(row)
    return res


def fmt(v, f="%.2f"):
    return "—" if v is None else f % v


def markdown(meta, scenarios, summary, targets, SERVERS):
    m = meta["machine"]
    v = meta["versions"]
    peers = [s for s in SERVERS if s != "ksockd" and any(
        s in sc.servers for sc in scenarios)]
    L = []
    L.append("# ksockd benchmarks: %s" % meta["date"])
    L.append("")
    L.append("- **Date**: %s (UTC)" % meta["date"])
    L.append("- **Machine**: %d CPUs (%s), Linux %s %s, %.1f GiB RAM, "
             "RLIMIT_NOFILE hard %s" % (m["cpus"], m["cpu_model"], m["kernel"],
                                         m["machine"], m["memory_gib"],
                                         m["nofile_hard"]))
    L.append("- **Software**: " + ", ".join(
        "%s %s" % (k, x) for k, x in sorted(v.items())))
    idle = [sc for sc in scenarios if sc.mode == "idle"]
    L.append("- **Method**: %d rounds of %.1f s runs after %.1f s warm-up%s"
             "; each run starts a fresh server on an "
             "ephemeral 127.0.0.1 port and drives it with `bench/ksock-bench` "
             "(one libev loop, one process); the servers alternate inside "
             "each round, their order rotating from round to round; all in "
             "the same session, the client on the same %d cores as the "
             "server. Figures are medians over the rounds (min–max shown); "
             "ratios are paired, ksockd/peer within a round, and the median "
             "of those is shown. "
             "Server CPU per operation = utime+stime of the server and its "
             "children during the measured period (`/proc/PID/stat`) / "
             "operations (per MB for stream): with client and server sharing "
             "the cores that is the stable figure." % (
                 meta["rounds"], meta["duration"], meta["warmup"],
                 " (idle: hold %.1f s, no warm-up)" % idle[0].duration
                 if idle else "", m["cpus"]))
    L.append("- **Reproduce**: `make bench` or `bench/compare` "
             "(`--quick` for a short run); this run: `%s`." % meta["command"])
    L.append("")

    L.append("## Summary: ksockd / peer")
    L.append("")
    L.append("Throughput ratio (ksockd / peer; for idle memory, KiB per "
             "connection, where lower is better), and in parentheses server "
             "CPU per operation (ksockd / peer: below 1 ksockd spends less).")
    L.append("")
    L.append("| scenario | ksockd | " + " | ".join(
        "vs %s" % p for p in peers) + " |")
    L.append("|---|---:|" + "---:|" * len(peers))
    for sc in scenarios:
        per = summary[sc.name]
        k = per.get("ksockd", {})
        cells = []
        for p in peers:
            s = per.get(p)
            if s is None or "ratio" not in s:
                cells.append("")
                continue
            c = "%.2fx" % s["ratio"]
            if "cpu_ratio" in s:
                c += " (cpu %.2fx)" % s["cpu_ratio"]
            cells.append(c)
        kv = (sc.metric.fmt % k["median"] + " " + sc.metric.unit
              if "median" in k else "failed")
        L.append("| %s | %s | %s |" % (sc.name, kv, " | ".join(cells)))
    L.append("")

    L.append("## Targets")
    L.append("")
    if not targets:
        L.append("None for these scenarios.")
    else:
        L.append("| target | scenario | measured | status |")
        L.append("|---|---|---:|---|")
    for t in targets:
        meas = fmt(t["measured"], "%.3f")
        if t["measured"] is not None and not t["what"].startswith("ksockd "):
            meas += "x (%s)" % t["what"]
        elif t["measured"] is not None:
            meas += " " + t["what"].split(" ", 1)[1]
        if t.get("cpu_ratio") is not None:
            meas += ", cpu/op %.2fx" % t["cpu_ratio"]
        L.append("| %s | %s | %s | **%s** |" % (t["target"], t["scenario"],
                                                meas, t["status"]))
    L.append("")

    L.append("## Scenarios")
    for sc in scenarios:
        per = summary[sc.name]
        mt = sc.metric
        conns = per.get("ksockd", {}).get("connections", sc.connections)
        L.append("")
        L.append("### %s: %s" % (sc.name, sc.title))
        L.append("")
        tls = getattr(sc, "tls_key", None) if sc.transport == "tls" \
            else None
        L.append("`ksock-bench %s` over %s. %s" % (
            " ".join([sc.mode, "-c", str(conns)] + sc.args + (
                ["--tls", "--ca", "CA", "--sni", "NAME", "--priority", "P"]
                if tls else [])),
            "TLS 1.3 with the %s certificate" % tls.upper() if tls
            else sc.transport,
            "Lower is better; ratio ksockd/peer < 1 means ksockd uses less "
            "memory per connection." if not mt.higher_is_better else
            "Higher is better; ratio ksockd/peer > 1 means ksockd is "
            "faster."))
        note = sc.note(sc) if callable(sc.note) else sc.note
        if note:
            L.append("")
            L.append(note)
        L.append("")
        lat = sc.mode in ("pingpong", "connect", "handshake", "udp")
        cpu = mt.cpu_unit is not None
        resumed = "--resume" in sc.args
        lost = sc.mode == "udp"
        head = ["server", "%s (median)" % mt.unit, "min–max"]
        if resumed:
            head.append("resumed %")
        if lost:
            head.append("lost")
        if lat:
            head.append("p99 µs")
        if cpu:
            head.append("server CPU %s" % mt.cpu_unit)
        head.append("ksockd/peer")
        if cpu:
            head.append("CPU ksockd/peer")
        L.append("| " + " | ".join(head) + " |")
        L.append("|---|" + "---:|" * (len(head) - 1))
        for server in sc.servers:
            s = per.get(server, {})
            if "median" not in s:
                row = [server, "failed (%d/%d runs)" % (s.get("ok", 0),
                                                        s.get("runs", 0))]
                row += [""] * (len(head) - 2)
            else:
                row = [server, mt.fmt % s["median"],
                       (mt.fmt + "–" + mt.fmt) % (s["min"], s["max"])]
                if resumed:
                    row.append("%.0f" % s["resumed_pct"]
                               if "resumed_pct" in s else "—")
                if lost:
                    row.append("%d" % s.get("lost", 0))
                if lat:
                    row.append("%.0f" % s["p99_us"])
                if cpu:
                    row.append("%.2f" % (s["cpu_us_per_op"] * mt.cpu_scale))
                row.append("%.2fx" % s["ratio"] if "ratio" in s else "—")
                if cpu:
                    row.append("%.2fx" % s["cpu_ratio"]
                               if "cpu_ratio" in s else "—")
                if s["errors"]:
                    row[1] += " (%d failed runs)" % len(s["errors"])
            L.append("| " + " | ".join(row) + " |")
        errs = [(server, e) for server in sc.servers
                for e in per.get(server, {}).get("errors", [])]
        for server, e in errs[:3]:
            L.append("")
            L.append("- %s: %s" % (server, e.splitlines()[0][:300]
                                    if e else "error"))
        for server in sc.servers:
            w = per.get(server, {}).get("warnings", [])
            if w:
                L.append("")
                L.append("- %s, %d of %d runs (not counted as failures): %s"
                         % (server, len(w), per[server]["runs"], w[0][:300]))
    L.append("")

    L.append("## Servers")
    L.append("")
    transports = sorted({sc.transport for sc in scenarios})
    for s in ["ksockd"] + peers:
        d = SERVERS[s].describe
        for t in transports:
            note = getattr(SERVERS[s], "notes", {}).get(t)
            if note and any(s in sc.servers for sc in scenarios
                            if sc.transport == t):
                d += ". Over %s: %s" % (t.upper(), note)
        L.append("- **%s**: %s" % (s, d))
    if meta.get("skipped"):
        L.append("")
        L.append("Skipped (not available): %s." % ", ".join(meta["skipped"]))
    L.append("")
    return "\n".join(L)


def chart(ctx, scenarios, summary, base, tmp, SERVERS):
    """latest.png: per scenario, ksockd's advantage over each peer (ratio
    oriented so that above 1 is better for ksockd) for the metric and for
    server CPU per op."""
    if ctx.gnuplot is None:
        log("gnuplot not found: no chart")
        return None
    peers = [s for s in SERVERS if s != "ksockd" and any(
        s in sc.servers for sc in scenarios)]
    dat = os.path.join(tmp, "chart.dat")
    cdat = os.path.join(tmp, "cpu.dat")
    with open(dat, "w") as f, open(cdat, "w") as g:
        f.write("scenario " + " ".join(peers) + "\n")
        g.write("scenario " + " ".join(peers) + "\n")
        for sc in scenarios:
            per = summary[sc.name]
            row, crow = [], []
            for p in peers:
                r = per.get(p, {}).get("ratio")
                if r is not None and not sc.metric.higher_is_better:
                    r = 1.0 / r if r > 0 else None
                row.append("%.4f" % r if r else "-")
                c = per.get(p, {}).get("cpu_ratio")
                crow.append("%.4f" % (1.0 / c) if c else "-")
            f.write("%s %s\n" % (sc.name, " ".join(row)))
            g.write("%s %s\n" % (sc.name, " ".join(crow)))
    png = base + ".png"
    n = len(peers)
    plots = lambda d: ", ".join(
        "'%s' using %d:xtic(1) title columnheader(%d)" % (d, i + 2, i + 2)
        for i in range(n))
    script = "\n".join([
        "set terminal pngcairo size 1100,800 font ',10'" if
        _has_cairo(ctx) else "set terminal png size 1100,800",
        "set output '%s'" % png,
        "set datafile missing '-'",
        "set style data histograms",
        "set style histogram clustered gap 1",
        "set style fill solid 0.8 border -1",
        "set key outside right top",
        "set grid ytics",
        "set yrange [0:*]",
        "set xtics rotate by -20",
        "set multiplot layout 2,1",
        "set title 'ksockd advantage: throughput ksockd/peer "
        "(idle memory: peer/ksockd); above 1 = ksockd better'",
        "plot %s, 1 with lines dt 2 lw 2 lc rgb 'black' title '1.0'" %
        plots(dat),
        "set title 'server CPU per operation: peer/ksockd; above 1 = "
        "ksockd spends less'",
        "plot %s, 1 with lines dt 2 lw 2 lc rgb 'black' title '1.0'" %
        plots(cdat),
        "unset multiplot",
    ])
    gp = os.path.join(tmp, "chart.gp")
    with open(gp, "w") as f:
        f.write(script + "\n")
    p = subprocess.run([ctx.gnuplot, gp], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    if p.returncode != 0 or not os.path.exists(png):
        log("gnuplot failed: %s" % p.stdout.decode("utf-8", "replace")[-500:])
        return None
    return png


def _has_cairo(ctx):
    p = subprocess.run([ctx.gnuplot, "-e", "set terminal"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    return b"pngcairo" in p.stdout


# ---- main ------------------------------------------------------------------------

