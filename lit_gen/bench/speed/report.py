"""The speed benchmark's report: the targets (PASS / FAIL / SKIP / INFO) and the table."""

from __future__ import annotations

from lit_gen.bench.speed.settings import FID_SPEEDUP_TARGET, RATIO_TARGET, is_k_side


def summarize(result: dict) -> list[dict]:
    targets = []
    for row in result["train"]:
        targets.append({"check": f"train ratio {row['case']}", "value": row.get("ratio"),
                        "target": f">= {RATIO_TARGET}", "status": row["status"],
                        **({"reason": row["reason"]} if "reason" in row else {})})
    for row in result["fid"]:
        judged = row.get("judged_path")
        targets.append({"check": f"fid second-call speedup {row['extractor']}"
                        + (f" ({judged})" if judged else ""),
                        "value": row[judged]["speedup"] if judged else None,
                        "target": f">= {FID_SPEEDUP_TARGET}", "status": row["status"],
                        **({"reason": row["reason"]} if "reason" in row else {})})
    for row in result["process"]:
        targets.append({"check": f"whole-process ratio {row['experiment']}", "value": row["ratio"],
                        "target": f">= {RATIO_TARGET}", "status": row["status"]})
    for row in result["thread_policy"]:
        targets.append({"check": f"thread policy {row['experiment']} {row['side']} "
                                 "(busy x, side by side x)",
                        "value": [row["busy_ratio"], row["side_by_side_ratio"]],
                        "target": row["target"], "status": row["status"]})
    for row in result["data_paths"]:
        targets.append({"check": f"on_device vs dataloader {row['case']}", "value": row["speedup"],
                        "target": row["target"], "status": row["status"]})
    return targets


def format_report(result: dict) -> str:
    env = result["environment"]
    dev = env.get("gpu") or f"CPU {env['cpu']} ({env['cpu_threads']} threads)"
    st = result["settings"]
    lines = [f"lit_gen speed benchmark on {dev}; torch {env['torch']}, lightning {env['lightning']}",
             f"settings: batch {st['batch_size']}, {st['steps']} timed batches after "
             f"{st['warmup']}, median of {st['repeats']}, precision {st['precision']}, "
             f"{st['clock']} clock" + (f", nets {' '.join(st['net_overrides'])}"
                                       if st["net_overrides"] else ""), ""]
    if result["train"]:
        lines.append(f"{'training (real images/s)':<40}{'lit_gen':>10}{'L-bare':>10}{'plain':>10}"
                     f"{'ratio':>8}{'vs L':>8}{'L/plain':>8}{'ovh ms/b':>10}{'RSS MB':>9}  status")
        def fig(r: dict, side: str):
            v = r.get(side, {}).get("images_per_s")
            return "-" if v is None else v

        for r in result["train"]:
            rss = r.get("lit_gen", r.get("plain", {})).get("peak_rss_mb")
            lines.append(f"{r['case']:<40}{fig(r, 'lit_gen'):>10}{fig(r, 'lightning'):>10}"
                         f"{fig(r, 'plain'):>10}{r.get('ratio', '-'):>8}"
                         f"{r.get('ratio_vs_lightning', '-'):>8}{r.get('lightning_ratio', '-'):>8}"
                         f"{r.get('overhead_ms_per_batch', '-'):>10}"
                         f"{rss if rss is not None else '-':>9}  {r['status']}")
        lines.append("(ratio = lit_gen / plain, the target; vs L = lit_gen / the same step in a bare "
                     "LightningModule; L/plain = Lightning's own cost)")
        lines.append("")
    if result["process"]:
        lines.append(f"whole process ({st['clock']}-clock ms per step, start-up cancelled: N vs "
                     "3N epochs of `python -m lit_gen.fit` and of the plain script)")
        lines.append(f"{'experiment':<16}{'plain':>9}{'L-bare':>9}{'lit_gen':>9}{'ratio':>8}"
                     f"{'L/plain':>9}{'vs L':>8}{'in-epoch':>10}{'start-up s':>14}  status")
        for r in result["process"]:
            startup = f"{r['lit_gen']['startup_s']:.1f}/{r['plain']['startup_s']:.1f}"
            lines.append(f"{r['experiment']:<16}{r['plain']['ms_per_step']:>9.3f}"
                         f"{r['lightning']['ms_per_step']:>9.3f}{r['lit_gen']['ms_per_step']:>9.3f}"
                         f"{r['ratio']:>8.3f}{r['lightning_ratio']:>9.3f}"
                         f"{r['ratio_vs_lightning']:>8.3f}{r['in_epoch_ratio']:>10.3f}"
                         f"{startup:>14}  {r['status']}")
            for side, v in r.items():
                if is_k_side(side) or side == "lit_gen_before":
                    inside = (f", in-epoch x{v['in_epoch_ratio']}" if "in_epoch_ratio" in v
                              else "")
                    lines.append(f"  {side}: {v['ms_per_step']} ms/step, x{v['ratio']} of plain, "
                                 f"start-up {v['startup_s']} s{inside}")
            lines.append(f"  load average {r['load_avg']}")
        lines.append("(ratio = plain / lit_gen ms per step, the target; in-epoch = the same "
                     "inside the epoch; start-up = lit_gen / plain seconds)")
        lines.append("")
    if result["thread_policy"]:
        lines.append(f"{'thread policy (whole run, s)':<30}{'quiet':>8}{'busy':>8}{'x':>7}"
                     f"{'pair':>8}{'x':>7}  threads")
        for r in result["thread_policy"]:
            lines.append(f"{r['experiment'] + ' ' + r['side']:<30}{r['quiet_s']:>8}{r['busy_neighbour_s']:>8}"
                         f"{r['busy_ratio']:>7}{r['side_by_side_s']:>8}"
                         f"{r['side_by_side_ratio']:>7}  {r['threads'].get('intra_op_threads', '?')}"
                         f" ({r['threads'].get('source', 'torch default')}); load {r['load_avg']}")
        lines.append("")
    if result["data_paths"]:
        lines.append(f"{'data path (lit_gen images/s)':<40}{'loader':>10}{'device':>10}{'x':>8}")
        for r in result["data_paths"]:
            lines.append(f"{r['case']:<40}{r['dataloader_images_per_s']:>10}"
                         f"{r['on_device_images_per_s']:>10}{r['speedup']:>8}  {r['status']}")
        lines.append("")
    if result.get("fast_paths"):
        lines.append(f"{'fast path (lit_gen images/s)':<40}{'img/s':>10}{'x':>8}")
        for r in result["fast_paths"]:
            lines.append(f"{r['case'] + ' ' + r['switch']:<40}{r.get('images_per_s', '-'):>10}"
                         f"{r.get('speedup') or '-':>8}  {r['status']}")
        lines.append("")
    if result["fid"]:
        lines.append(f"{'FID (seconds, ' + st['clock'] + ' clock)':<40}{'first':>10}{'second':>10}{'x':>8}")
        for r in result["fid"]:
            for path in ("torch_fidelity", "lit_gen"):
                p = r.get(path, {})
                if "first_s" in p:
                    lines.append(f"{r['extractor'] + '/' + path:<40}{p['first_s']:>10}"
                                 f"{p['second_s']:>10}{p['speedup']:>8}")
                elif "reason" in p or "reason" in r:
                    lines.append(f"{r['extractor'] + '/' + path:<40}  SKIP: "
                                 f"{p.get('reason') or r.get('reason')}")
        lines.append(f"(FID on {result['settings']['fid_n']} generated vs "
                     f"{result['settings']['fid_real']} real images)")
        lines.append("")
    lines.append("targets:")
    for t in result["targets"]:
        value = "-" if t["value"] is None else t["value"]
        lines.append(f"  {t['status']:<5} {t['check']}: {value} (target {t['target']})"
                     + (f" [{t['reason']}]" if t.get("reason") else ""))
    return "\n".join(lines)
